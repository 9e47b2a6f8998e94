/**
 * Every kind of event our worker and producer publish, received over a real broker (Redis and
 * RabbitMQ) by an EventReceiver, with the fields Celery's monitors read (protocol doc 5.2, 5.3).
 */
import { randomUUID } from "node:crypto";
import { pino } from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  type CeleryEvent,
  ClusterState,
  createApp,
  createWorker,
  EventReceiver,
  Reject,
  TaskRevokedError,
  type Worker,
} from "../../sdk/src/index.js";
import {
  AMQP_URL,
  redisUrl,
  requireRabbitMQ,
  requireRedis,
  uniqueName,
} from "../helpers/services.js";

interface Fixture {
  name: string;
  broker: string;
  backend: string;
  setup(): Promise<void>;
}

async function until(check: () => Promise<boolean> | boolean, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > end) throw new Error("condition not met in time");
    await new Promise((r) => setTimeout(r, 20));
  }
}

async function failure(p: Promise<unknown>): Promise<Error> {
  try {
    await p;
  } catch (error) {
    return error as Error;
  }
  throw new Error("expected a failure");
}

function eventsSuite(fixture: Fixture) {
  describe(`events on ${fixture.name}`, () => {
    const queue = uniqueName("events");
    const hostname = `${queue}@test`;
    const app = createApp({
      broker: fixture.broker,
      resultBackend: fixture.backend,
      defaultQueue: queue,
    });
    // The producer is another process's app in real life: its own connection and node name.
    const producer = createApp({
      broker: fixture.broker,
      resultBackend: fixture.backend,
      defaultQueue: queue,
      taskSendSentEvent: true,
    });
    const events: CeleryEvent[] = [];
    const state = new ClusterState();
    let receiver: EventReceiver;
    let worker: Worker;

    app.task("ev.add", (_ctx, x: number, y: number) => x + y);
    app.task("ev.fail", (_ctx, message: string): never => {
      throw new Error(message);
    });
    app.task("ev.flaky", (ctx) => {
      if (ctx.retries === 0) ctx.retry({ countdown: 0.1, error: new Error("again") });
      return "ok";
    });
    app.task(
      "ev.reject",
      () => {
        throw new Reject("not for us", { requeue: false });
      },
      { acksLate: true },
    );
    app.task("ev.wait", async (ctx) => {
      await new Promise((_, reject) =>
        ctx.signal.addEventListener("abort", () => reject(ctx.signal.reason), { once: true }),
      );
    });

    /** The first event of a type, about a task (or from a worker), once it has arrived. */
    const eventOf = async (type: string, uuid?: string): Promise<CeleryEvent> => {
      const find = () =>
        events.find((e) => e.type === type && (uuid ? e.uuid === uuid : e.hostname === hostname));
      await until(() => find() !== undefined);
      return find()!;
    };

    beforeAll(async () => {
      await fixture.setup();
      const { broker } = await producer.connect();
      // Other suites' workers publish on the same broker: keep only this suite's.
      receiver = new EventReceiver(broker);
      receiver.on("event", (e) => {
        if (e.hostname === hostname || e.hostname === producer.nodename) {
          events.push(e);
          state.apply(e);
        }
      });
      await receiver.start();
      worker = await createWorker(app, {
        concurrency: 2,
        hostname,
        taskEvents: true,
        logger: pino({ level: "silent" }),
      });
      await worker.start();
    });

    afterAll(async () => {
      await worker?.stop({ force: true });
      await receiver?.stop();
      const { broker } = await producer.connect();
      await broker.deleteQueue(queue).catch(() => {});
      await app.close();
      await producer.close();
    });

    it("announces the worker with worker-online", async () => {
      expect(await eventOf("worker-online")).toMatchObject({
        freq: 2,
        active: 0,
        processed: 0,
        loadavg: [expect.any(Number), expect.any(Number), expect.any(Number)],
        sw_ident: "celeriac",
        sw_ver: expect.any(String),
        sw_sys: expect.any(String),
      });
      expect(state.isAlive(hostname)).toBe(true);
    });

    it("sends task-sent from a producer with taskSendSentEvent", async () => {
      const r = await producer.sendTask("ev.add", [1, 2]);
      expect(await r.get({ timeout: 10 })).toBe(3);
      const sent = await eventOf("task-sent", r.id);
      expect(sent).toMatchObject({
        hostname: producer.nodename,
        root_id: r.id,
        parent_id: null,
        name: "ev.add",
        args: "(1, 2)",
        kwargs: "{}",
        retries: 0,
        eta: null,
        expires: null,
        queue,
        exchange: "",
        routing_key: queue,
      });
      await eventOf("task-succeeded", r.id);
      expect(state.tasks.get(r.id)).toMatchObject({ state: "SUCCESS", name: "ev.add", hostname });
    });

    it("sends task-failed with the exception and its traceback", async () => {
      const r = await producer.sendTask("ev.fail", ["boom"]);
      await failure(r.get({ timeout: 10 }));
      const failed = await eventOf("task-failed", r.id);
      expect(failed).toMatchObject({ hostname, exception: "Error('boom')" });
      expect(failed.traceback).toEqual(expect.stringContaining("boom"));
      expect(state.tasks.get(r.id)?.state).toBe("FAILURE");
    });

    it("sends task-retried with the exception and its traceback", async () => {
      const r = await producer.sendTask("ev.flaky");
      expect(await r.get({ timeout: 10 })).toBe("ok");
      const retried = await eventOf("task-retried", r.id);
      expect(retried).toMatchObject({ hostname, exception: "Error('again')" });
      expect(retried.traceback).toEqual(expect.stringContaining("again"));
      await eventOf("task-succeeded", r.id);
      expect(state.tasks.get(r.id)?.state).toBe("SUCCESS");
    });

    it("sends task-revoked: terminated with its signal, expired, or revoked before it came", async () => {
      const running = await producer.sendTask("ev.wait");
      await until(() => worker.active.has(running.id));
      await producer.control.revoke(running.id, {
        terminate: true,
        signal: "SIGKILL",
        reply: true,
        destination: [hostname],
      });
      expect((await failure(running.get({ timeout: 10 }))).message).toBe("terminated");
      expect(await eventOf("task-revoked", running.id)).toMatchObject({
        hostname,
        terminated: true,
        signum: 9,
        expired: false,
      });

      const expired = await producer.sendTask(
        "ev.add",
        [1, 1],
        {},
        { expires: new Date(Date.now() - 1000) },
      );
      expect(await failure(expired.get({ timeout: 10 }))).toBeInstanceOf(TaskRevokedError);
      expect(await eventOf("task-revoked", expired.id)).toMatchObject({
        terminated: false,
        signum: null,
        expired: true,
      });

      const id = randomUUID();
      await producer.control.revoke(id, { reply: true, destination: [hostname] });
      const revoked = await producer.sendTask("ev.add", [1, 1], {}, { taskId: id });
      expect(await failure(revoked.get({ timeout: 10 }))).toBeInstanceOf(TaskRevokedError);
      expect(await eventOf("task-revoked", id)).toMatchObject({
        terminated: false,
        signum: null,
        expired: false,
      });
      for (const r of [running, expired, revoked])
        expect(state.tasks.get(r.id)?.state).toBe("REVOKED");
    });

    it("sends task-rejected with whether the message was requeued", async () => {
      const r = await producer.sendTask("ev.reject");
      expect(await eventOf("task-rejected", r.id)).toMatchObject({ hostname, requeue: false });
      // As in Celery's events.State, REJECTED ranks below STARTED: the state stays, the
      // rejection's fields are merged.
      expect(state.tasks.get(r.id)).toMatchObject({ state: "STARTED", fields: { requeue: false } });
    });

    it("gives every event Celery's common fields", () => {
      expect(events.filter((e) => e.hostname === hostname).map((e) => e.type)).toEqual(
        expect.arrayContaining([
          "worker-online",
          "task-received",
          "task-started",
          "task-succeeded",
          "task-failed",
          "task-retried",
          "task-revoked",
          "task-rejected",
        ]),
      );
      for (const e of events)
        expect(e).toMatchObject({
          pid: process.pid,
          utcoffset: Math.floor(new Date().getTimezoneOffset() / 60),
          clock: expect.any(Number),
          timestamp: expect.any(Number),
          local_received: expect.any(Number),
        });
    });

    it("says goodbye with worker-offline, and the worker is no longer alive", async () => {
      await worker.stop();
      expect(await eventOf("worker-offline")).toMatchObject({
        freq: 2,
        active: 0,
        processed: worker.processedTotal(),
        sw_ident: "celeriac",
      });
      expect(state.isAlive(hostname)).toBe(false);
    });
  });
}

eventsSuite({
  name: "Redis",
  broker: redisUrl(9),
  backend: redisUrl(9),
  setup: requireRedis,
});

eventsSuite({
  name: "RabbitMQ",
  broker: AMQP_URL,
  backend: redisUrl(9),
  setup: async () => {
    await requireRabbitMQ();
    await requireRedis();
  },
});
