/**
 * Unique tasks across workers and processes, whatever the broker: the lock lives in Redis and is
 * shared by every worker. Run against Redis and RabbitMQ by the files beside it.
 */
import { pino } from "pino";
import { afterEach, beforeAll, describe, expect, it } from "vitest";
import {
  type App,
  createApp,
  createBackend,
  createBroker,
  createWorker,
  LogReceiver,
  type LogRecord,
  type Task,
} from "../../sdk/src/index.js";
import { kill, startUntil } from "../helpers/processes.js";
import { uniqueName } from "../helpers/services.js";

export interface UniqueFixture {
  name: string;
  brokerUrl: string;
  /** Redis: where the locks live when the broker is not Redis. */
  backendUrl: string;
  setup(): Promise<void>;
}

const silent = pino({ level: "silent" });
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until(check: () => Promise<boolean>, timeoutMs: number, what: string) {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(25);
  }
}

interface Run {
  albumId: string;
  worker: string;
  start: number;
  end: number;
}

/** The most runs in progress at one instant. */
function maxConcurrent(runs: Run[]): number {
  const edges = runs.flatMap((r) => [
    [r.start, 1],
    [r.end, -1],
  ]);
  // At equal times an end comes first: touching runs do not overlap.
  edges.sort((a, b) => a[0]! - b[0]! || a[1]! - b[1]!);
  let now = 0;
  let max = 0;
  for (const [, d] of edges) {
    now += d!;
    max = Math.max(max, now);
  }
  return max;
}

export function uniqueSuite(f: UniqueFixture) {
  const cleanups: Array<() => Promise<void>> = [];
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c();
  });

  function app(queue: string): App {
    const a = createApp({ broker: f.brokerUrl, resultBackend: f.backendUrl, defaultQueue: queue });
    cleanups.push(() => a.close());
    return a;
  }

  /** Two workers (two apps, as two machines would have) running a recording album task. */
  async function fleet(workMs: number, unique: Parameters<App["task"]>[2]) {
    const queue = uniqueName("unique");
    const name = uniqueName("stats.album");
    const runs: Run[] = [];
    const tasks: Array<Task<[string], string>> = [];
    for (const i of [1, 2]) {
      const a = app(queue);
      tasks.push(
        a.task(
          name,
          async (ctx, albumId: string) => {
            const start = performance.now();
            await sleep(workMs);
            runs.push({ albumId, worker: ctx.hostname, start, end: performance.now() });
            return albumId;
          },
          unique,
        ),
      );
      const worker = await createWorker(a, {
        concurrency: 4,
        hostname: `${queue}-${i}@test`,
        logger: silent,
        control: false,
      });
      await worker.start();
      cleanups.unshift(() => worker.stop({ force: true }));
    }
    return { queue, name, runs, album: tasks[0]! };
  }

  describe(`unique tasks on ${f.name}`, () => {
    beforeAll(f.setup);

    it("runs 50 concurrent sends for one album one at a time, across two workers", async () => {
      const { runs, album } = await fleet(20, {
        unique: { by: "args", ttl: 10, onConflict: "retry", retryCountdown: 0.1 },
      });
      const sent = await Promise.all(Array.from({ length: 50 }, () => album.delay("a1")));
      const results = await Promise.all(sent.map((r) => r.get({ timeout: 50 })));
      expect(results).toEqual(Array(50).fill("a1"));
      expect(runs).toHaveLength(50);
      expect(maxConcurrent(runs)).toBe(1);
    }, 60_000);

    it("runs different albums in parallel", async () => {
      const { runs, album } = await fleet(500, { unique: { by: "args", onConflict: "fail" } });
      const sent = await Promise.all(["a1", "a2", "a3", "a4"].map((id) => album.delay(id)));
      await Promise.all(sent.map((r) => r.get({ timeout: 10 })));
      expect(maxConcurrent(runs)).toBe(4);
    });

    it("shows the holder to any app, and lets an operator free it for another run", async () => {
      const { queue, name, runs, album } = await fleet(1500, { unique: { by: "name" } });
      const operator = app(queue);
      const first = await album.delay("a1");
      await until(async () => (await operator.locks.get(name)) !== null, 5000, "the lock");
      const lock = (await operator.locks.list()).find((l) => l.key === name);
      expect(lock).toMatchObject({ task: name, taskId: first.id });
      expect(lock!.worker).toMatch(new RegExp(`^${queue}-[12]@test$`));
      expect(lock!.expiresAt.getTime()).toBeGreaterThan(Date.now());
      expect(await operator.locks.release(name)).toBe(true);
      const second = await album.delay("a2");
      await Promise.all([first.get({ timeout: 10 }), second.get({ timeout: 10 })]);
      expect(maxConcurrent(runs)).toBe(2);
      expect(await operator.locks.get(name)).toBeNull();
    });

    it("finds the lock store in a Redis broker or result backend given as an instance", async () => {
      const broker = f.brokerUrl.startsWith("redis")
        ? await createBroker(f.brokerUrl)
        : f.brokerUrl;
      const resultBackend = await createBackend(f.backendUrl);
      const queue = uniqueName("unique-instances");
      const a = createApp({ broker, resultBackend, defaultQueue: queue });
      cleanups.push(() => a.close());
      const name = uniqueName("stats.instances");
      a.task(
        name,
        async (_ctx, albumId: string) => {
          await sleep(1000);
          return albumId;
        },
        { unique: { by: "name" } },
      );
      const worker = await createWorker(a, { logger: silent, control: false });
      await worker.start();
      cleanups.unshift(() => worker.stop({ force: true }));
      const sent = await a.sendTask(name, ["a1"]);
      // The same Redis as an app given the URLs sees the lock.
      const byUrl = app(queue);
      await until(async () => (await byUrl.locks.get(name)) !== null, 5000, "the lock");
      expect(await byUrl.locks.get(name)).toMatchObject({ taskId: sent.id });
      expect(await sent.get({ timeout: 10 })).toBe("a1");
    });

    it("frees the lock of a SIGKILLed worker after its ttl, not before", async () => {
      const queue = uniqueName("unique-kill");
      const name = uniqueName("stats.album");
      const ttl = 2;
      const { proc } = await startUntil(
        "node",
        [
          "sdk/bin/celeriac.mjs",
          "worker",
          "--app",
          "test/integration/fixtures/unique-app.ts",
          "--broker",
          f.brokerUrl,
          "--result-backend",
          f.backendUrl,
          "-Q",
          queue,
          "-n",
          `${queue}@test`,
          "-c",
          "2",
          "--ship-logs",
        ],
        /ready/,
        { env: { UNIQUE_TASK: name, UNIQUE_TTL: String(ttl) }, timeoutMs: 30_000 },
      );
      cleanups.push(() => kill(proc));
      const producer = app(queue);
      const logs: LogRecord[] = [];
      const receiver = new LogReceiver((await producer.connect()).broker);
      receiver.on("log", (r) => logs.push(r));
      await receiver.start();
      cleanups.push(() => receiver.stop());
      const key = `${name}:["a1",60]`;
      const sent = await producer.sendTask(name, ["a1", 60]);
      await until(async () => (await producer.locks.get(key)) !== null, 10_000, "the lock");
      const taken = (await producer.locks.get(key))!;
      expect(taken).toMatchObject({ taskId: sent.id, worker: `${queue}@test` });
      // The worker process ships its task's records (`--ship-logs`): read here, in another process.
      await until(
        async () => logs.some((r) => r.taskId === sent.id),
        5000,
        "the worker's shipped record",
      );
      expect(logs.find((r) => r.taskId === sent.id)).toMatchObject({
        msg: "computing album statistics",
        worker: `${queue}@test`,
        pid: proc.pid,
        data: { albumId: "a1" },
      });

      // Running past its ttl, the holder keeps renewing it.
      await sleep(ttl * 1000 * 1.5);
      const renewed = await producer.locks.get(key);
      expect(renewed?.taskId).toBe(sent.id);
      expect(renewed!.expiresAt.getTime()).toBeGreaterThan(taken.expiresAt.getTime());

      await kill(proc, "SIGKILL");
      const killedAt = Date.now();
      expect(await producer.locks.get(key)).not.toBeNull();
      await until(
        async () => (await producer.locks.get(key)) === null,
        10_000,
        "the lock to expire",
      );
      const freedAfter = Date.now() - killedAt;
      // Renewed every third of the ttl, so it lived between 2/3 of the ttl and the ttl after the kill.
      expect(freedAfter).toBeGreaterThan(ttl * 1000 * 0.5);
      expect(freedAfter).toBeLessThan(ttl * 1000 + 750);

      // The same album runs again on another worker.
      const next = app(queue);
      next.task(name, (_ctx, albumId: string) => albumId, {
        unique: { by: "args", onConflict: "fail" },
      });
      const worker = await createWorker(next, { logger: silent, control: false });
      await worker.start();
      cleanups.unshift(() => worker.stop({ force: true }));
      expect(await (await producer.sendTask(name, ["a1", 60])).get({ timeout: 10 })).toBe("a1");
    }, 60_000);
  });
}
