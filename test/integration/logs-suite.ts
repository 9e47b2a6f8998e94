/**
 * Task logs in one place, whatever the broker: records written with `ctx.logger` (and the
 * worker's own) are shipped as `celeriac-log` events and read back with LogReceiver, and the
 * app's own destinations get them too. Run against Redis and RabbitMQ by the files beside it.
 */
import path from "node:path";
import { Writable } from "node:stream";
import { afterEach, beforeAll, describe, expect, it } from "vitest";
import {
  type App,
  type Broker,
  ClusterState,
  createApp,
  createWorker,
  EVENT_EXCHANGE,
  EventReceiver,
  LogReceiver,
  type LogRecord,
} from "../../sdk/src/index.js";
import { uniqueName } from "../helpers/services.js";
import { chatty, app as poolApp } from "./fixtures/logs-app.js";

export interface LogsFixture {
  name: string;
  brokerUrl: string;
  backendUrl: string;
  setup(): Promise<void>;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until(check: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

/** A destination that keeps what it is given, as a file or syslog transport would. */
function collector() {
  const lines: Array<Record<string, unknown>> = [];
  const stream = new Writable({
    write(chunk, _encoding, done) {
      for (const line of chunk.toString().split("\n")) if (line) lines.push(JSON.parse(line));
      done();
    },
  });
  return { stream, lines };
}

export function logsSuite(f: LogsFixture) {
  const cleanups: Array<() => Promise<void>> = [];
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c();
  });

  /** Receive every log record of the broker, from now on. */
  async function receive(broker: Broker) {
    const records: LogRecord[] = [];
    const receiver = new LogReceiver(broker);
    receiver.on("log", (r) => records.push(r));
    await receiver.start();
    cleanups.push(() => receiver.stop());
    return records;
  }

  async function startWorker(app: App, options: Parameters<typeof createWorker>[1]) {
    const worker = await createWorker(app, { logLevel: "silent", control: false, ...options });
    await worker.start();
    let stopped = false;
    cleanups.unshift(async () => {
      if (!stopped) await worker.stop({ force: true });
    });
    return {
      worker,
      stop: async () => {
        stopped = true;
        await worker.stop();
      },
    };
  }

  describe(`task logs on ${f.name}`, () => {
    beforeAll(f.setup);

    it("ships ctx.logger records with task id, name, worker and retries, secrets redacted", async () => {
      const queue = uniqueName("logs");
      const hostname = `${queue}@test`;
      const file = collector();
      const app = createApp({
        broker: f.brokerUrl,
        resultBackend: f.backendUrl,
        defaultQueue: queue,
        logDestinations: [{ stream: file.stream, level: "info" }],
      });
      cleanups.push(() => app.close());
      const name = uniqueName("stats.album");
      const album = app.task(
        name,
        (ctx, albumId: string) => {
          ctx.logger.info(
            { albumId, password: "hunter2", auth: { token: "abc" } },
            "computing album statistics",
          );
          ctx.logger.debug("below the shipping level");
          if (ctx.retries === 0) ctx.retry({ countdown: 0.05 });
          return albumId;
        },
        { maxRetries: 1 },
      );
      const records = await receive((await app.connect()).broker);
      const { stop } = await startWorker(app, { hostname, shipLogs: "info" });
      const result = await album.delay("a1");
      expect(await result.get({ timeout: 10 })).toBe("a1");

      const ours = () => records.filter((r) => r.taskId === result.id);
      const computing = () => ours().filter((r) => r.msg === "computing album statistics");
      await until(() => computing().length === 2, 5000, "both runs' records");
      expect(computing().map((r) => r.retries)).toEqual([0, 1]);
      for (const r of computing()) {
        expect(r).toMatchObject({ level: "info", task: name, worker: hostname, pid: process.pid });
        expect(r.data).toEqual({
          albumId: "a1",
          password: "[Redacted]",
          auth: { token: "[Redacted]" },
        });
        expect(Math.abs(r.time.getTime() - Date.now())).toBeLessThan(10_000);
      }
      // The worker's own records about the task join the task's: its retry, its success.
      await until(() => ours().some((r) => r.msg === "task succeeded"), 5000, "task succeeded");
      expect(ours().some((r) => r.msg === "below the shipping level")).toBe(false);

      // Worker-level records carry no task id.
      const ready = records.find((r) => r.msg === `${hostname} ready`);
      expect(ready).toMatchObject({ level: "info", worker: hostname });
      expect(ready?.taskId).toBeUndefined();
      await stop();
      await until(
        () => records.some((r) => r.msg === `${hostname} stopped`),
        5000,
        "the worker's last record",
      );

      // The app's own destination got the same records, redacted as well.
      const line = file.lines.find(
        (l) => l.taskId === result.id && l.msg === "computing album statistics",
      );
      expect(line).toMatchObject({
        worker: hostname,
        task: name,
        retries: 0,
        password: "[Redacted]",
      });
      expect(file.lines.some((l) => l.msg === `${hostname} ready`)).toBe(true);
    });

    it("publishes batches as celeriac-log events on celeryev, which task monitors ignore", async () => {
      const queue = uniqueName("logs");
      const hostname = `${queue}@test`;
      const app = createApp({
        broker: f.brokerUrl,
        resultBackend: f.backendUrl,
        defaultQueue: queue,
      });
      cleanups.push(() => app.close());
      const noisy = app.task(uniqueName("t.noisy"), (ctx, n: number) => {
        for (let i = 0; i < n; i++) ctx.logger.warn({ i }, "line");
      });
      const { broker } = await app.connect();
      const raw: Array<{ routingKey: string; body: unknown }> = [];
      const unsubscribe = await broker.subscribe(EVENT_EXCHANGE, "#", (d) => {
        if (d.message.headers.hostname === hostname)
          raw.push({ routingKey: d.routingKey, body: JSON.parse(d.message.body.toString()) });
      });
      cleanups.push(unsubscribe);
      const state = new ClusterState();
      const events = new EventReceiver(broker);
      events.on("event", (e) => {
        if (e.hostname === hostname && e.type === "celeriac-log") state.apply(e);
      });
      await events.start();
      cleanups.push(() => events.stop());
      await startWorker(app, { hostname, shipLogs: "warn", withoutHeartbeat: true });
      const r = await noisy.delay(50);
      await r.get({ timeout: 10 });
      const shipped = () =>
        raw.filter((m) => m.routingKey === "celeriac.log").flatMap((m) => m.body as object[]);
      await until(() => shipped().length >= 50, 5000, "50 records");
      const logMessages = raw.filter((m) => m.routingKey === "celeriac.log");
      // Batched: far fewer messages than records, each an array.
      expect(logMessages.every((m) => Array.isArray(m.body))).toBe(true);
      expect(logMessages.length).toBeLessThan(10);
      expect(shipped()[0]).toEqual({
        hostname,
        utcoffset: expect.any(Number),
        pid: process.pid,
        clock: expect.any(Number),
        level: "warn",
        msg: "line",
        uuid: r.id,
        name: noisy.name,
        retries: 0,
        data: { i: 0 },
        timestamp: expect.any(Number),
        type: "celeriac-log",
      });
      expect(state.tasks.size).toBe(0);
      expect(state.workers.size).toBe(0);
    });

    it("ships the records of tasks run in pool threads", async () => {
      const queue = uniqueName("logs");
      const hostname = `${queue}@test`;
      poolApp.configure({
        broker: f.brokerUrl,
        resultBackend: f.backendUrl,
        defaultQueue: queue,
      });
      cleanups.push(() => poolApp.close());
      const records = await receive((await poolApp.connect()).broker);
      await startWorker(poolApp, {
        hostname,
        shipLogs: true,
        pool: "threads",
        concurrency: 1,
        appModule: path.resolve("test/integration/fixtures/logs-app.ts"),
      });
      const result = await chatty.delay("a7");
      expect(await result.get({ timeout: 20 })).toBe("a7");
      await until(
        () => records.some((r) => r.taskId === result.id && r.msg === "computing album statistics"),
        5000,
        "the thread's record",
      );
      const record = records.find(
        (r) => r.taskId === result.id && r.msg === "computing album statistics",
      )!;
      expect(record).toMatchObject({ task: "logs.chatty", worker: hostname, retries: 0 });
      expect(record.data).toMatchObject({ albumId: "a7", password: "[Redacted]" });
    }, 30_000);

    it("gives pool children the lower of the worker's logLevel and shipLogs levels", async () => {
      const queue = uniqueName("logs");
      const hostname = `${queue}@test`;
      poolApp.configure({ broker: f.brokerUrl, resultBackend: f.backendUrl, defaultQueue: queue });
      cleanups.push(() => poolApp.close());
      const records = await receive((await poolApp.connect()).broker);
      // Standard output takes errors only, the broker info and above: the child sends info.
      const before = Date.now();
      await startWorker(poolApp, {
        hostname,
        logLevel: "error",
        shipLogs: "info",
        pool: "processes",
        concurrency: 1,
        appModule: path.resolve("test/integration/fixtures/logs-app.ts"),
      });
      const result = await chatty.delay("a8");
      expect(await result.get({ timeout: 20 })).toBe("a8");
      const shipped = () =>
        records.find((r) => r.taskId === result.id && r.msg === "computing album statistics");
      await until(() => shipped() !== undefined, 5000, "the child's record");
      // Written by the child process (its pid), at the time the child wrote it.
      expect(shipped()!.pid).not.toBe(process.pid);
      expect(shipped()!.time.getTime()).toBeGreaterThanOrEqual(before);
    }, 30_000);
  });
}
