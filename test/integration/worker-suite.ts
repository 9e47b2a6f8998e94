/**
 * What a worker does, whatever the broker: run, store, hold, expire, reject, retry, revoke, shut
 * down. Run against every broker (memory, Redis, RabbitMQ) by the files beside it.
 */
import { pino } from "pino";
import { afterEach, beforeAll, describe, expect, it } from "vitest";
import {
  type App,
  createApp,
  createBroker,
  createWorker,
  NotRegistered,
  RemoteTaskError,
  type Task,
  TaskRevokedError,
  type Worker,
} from "../../sdk/src/index.js";
import { uniqueName } from "../helpers/services.js";

export interface WorkerSuiteFixture {
  brokerUrl: string;
  backendUrl: string;
  setup?(): Promise<void>;
}

const silent = pino({ level: "silent" });

/** The error a task's result re-throws; fails the test when it does not throw. */
async function failure(result: Promise<unknown>): Promise<RemoteTaskError> {
  try {
    await result;
  } catch (error) {
    return error as RemoteTaskError;
  }
  throw new Error("expected the task to fail");
}

export function workerSuite(name: string, fixture: WorkerSuiteFixture) {
  const cleanups: Array<() => Promise<void>> = [];
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c();
  });
  beforeAll(async () => {
    await fixture.setup?.();
  });

  /** An app and a worker on a queue of their own. */
  async function setup(
    configure: (app: App) => void,
    workerOptions: Parameters<typeof createWorker>[1] = {},
  ) {
    const queue = uniqueName("worker");
    const app = createApp({
      broker: fixture.brokerUrl,
      resultBackend: fixture.backendUrl,
      defaultQueue: queue,
    });
    configure(app);
    const worker = await createWorker(app, { concurrency: 4, logger: silent, ...workerOptions });
    await worker.start();
    cleanups.push(async () => {
      await worker.stop({ force: true });
      await app.close();
    });
    return { app, worker, queue };
  }

  describe(`worker on ${name}`, () => {
    it("runs a task and stores its result", async () => {
      let add!: Task<[number, number], number>;
      const { app } = await setup((app) => {
        add = app.task("t.add", (_ctx, x: number, y: number) => x + y);
      });
      const r = await add.delay(2, 3);
      expect(await r.get({ timeout: 5 })).toBe(5);
      expect(await r.state()).toBe("SUCCESS");
      expect(await r.successful()).toBe(true);
      expect(await r.ready()).toBe(true);
      await r.forget();
      expect(await r.state()).toBe("PENDING");
      void app;
    });

    it("re-throws a failure with its type, message and traceback", async () => {
      const { app } = await setup((app) => {
        app.task("t.fail", (_ctx, msg: string) => {
          throw new TypeError(msg);
        });
      });
      const r = await app.sendTask("t.fail", ["boom"]);
      const error = await failure(r.get({ timeout: 5 }));
      expect(error).toBeInstanceOf(RemoteTaskError);
      expect(error.name).toBe("TypeError");
      expect(error.message).toBe("boom");
      expect(error.remoteTraceback).toContain("TypeError: boom");
      expect(await r.failed()).toBe(true);
    });

    it("passes kwargs and a context with ids to the handler", async () => {
      const { app } = await setup((app) => {
        app.task("t.ctx", (ctx, a: number) => ({
          a,
          kwargs: ctx.kwargs,
          id: ctx.id,
          root: ctx.rootId,
          retries: ctx.retries,
          queue: ctx.deliveryInfo.queue,
          custom: ctx.headers.custom,
        }));
      });
      const r = await app.sendTask("t.ctx", [1], { k: "v" }, { headers: { custom: 42 } });
      expect(await r.get({ timeout: 5 })).toEqual({
        a: 1,
        kwargs: { k: "v" },
        id: r.id,
        root: r.id,
        retries: 0,
        queue: app.options.defaultQueue,
        custom: 42,
      });
    });

    it("sets parent and root ids on tasks sent from inside a task", async () => {
      const { app } = await setup((app) => {
        const child = app.task("t.child", (ctx) => ({ parent: ctx.parentId, root: ctx.rootId }));
        app.task("t.parent", async () => (await child.delay()).id);
      });
      const parent = await app.sendTask<string>("t.parent");
      const childId = await parent.get({ timeout: 5 });
      expect(await app.asyncResult(childId).get({ timeout: 5 })).toEqual({
        parent: parent.id,
        root: parent.id,
      });
    });

    it("holds countdown tasks until due without blocking others", async () => {
      const { app } = await setup(
        (app) => {
          app.task("t.now", () => Date.now());
        },
        { concurrency: 1, prefetchMultiplier: 1 },
      );
      const sent = Date.now();
      const later = await app.sendTask<number>("t.now", [], {}, { countdown: 1 });
      const now = await app.sendTask<number>("t.now");
      const nowRan = await now.get({ timeout: 5 });
      const laterRan = await later.get({ timeout: 5 });
      expect(nowRan - sent).toBeLessThan(500);
      expect(laterRan - sent).toBeGreaterThanOrEqual(990);
    });

    it("does not run expired messages and stores REVOKED", async () => {
      let runs = 0;
      const { app } = await setup((app) => {
        app.task("t.exp", () => runs++);
      });
      const r = await app.sendTask("t.exp", [], {}, { expires: new Date(Date.now() - 1000) });
      const error = await failure(r.get({ timeout: 5 }));
      expect(error).toBeInstanceOf(TaskRevokedError);
      expect(error.message).toBe("expired");
      expect(runs).toBe(0);
    });

    it("fails unknown tasks with NotRegistered and keeps running", async () => {
      const { app } = await setup((app) => {
        app.task("t.ok", () => "ok");
      });
      const unknown = await app.sendTask("t.nope");
      const error = await failure(unknown.get({ timeout: 5 }));
      expect(error).toBeInstanceOf(NotRegistered);
      expect(await (await app.sendTask("t.ok")).get({ timeout: 5 })).toBe("ok");
    });

    it("rejects malformed messages and keeps serving the others", async () => {
      const { app, queue } = await setup((app) => {
        app.task("t.ok", () => "ok");
      });
      const broker = await createBroker(fixture.brokerUrl);
      await broker.connect();
      cleanups.push(() => broker.close());
      const bad = (body: string, headers: Record<string, unknown>) =>
        broker.publish(
          {
            body: Buffer.from(body),
            contentType: "application/json",
            contentEncoding: "utf-8",
            headers,
            properties: {},
          },
          { exchange: "", routingKey: queue },
        );
      await bad("not json", { task: "t.ok", id: "x1" });
      await bad("[[1, 2], {}]", { task: "t.ok", id: "x2" }); // two elements: tolerated
      await bad('{"a": 1}', { task: "t.ok", id: "x3" });
      await bad("[1, 2, 3]", { task: "t.ok", id: "x4" });
      await broker.publish(
        {
          body: Buffer.from("x"),
          contentType: "application/x-python-serialize",
          contentEncoding: "binary",
          headers: { task: "t.ok", id: "x5" },
          properties: {},
        },
        { exchange: "", routingKey: queue },
      );
      expect(await (await app.sendTask("t.ok")).get({ timeout: 5 })).toBe("ok");
      expect(await app.asyncResult("x2").get({ timeout: 5 })).toBe("ok");
      expect((await broker.inspectQueue(queue))?.messages).toBe(0);
    });

    it("runs at most `concurrency` tasks at once", async () => {
      let running = 0;
      let peak = 0;
      const { app } = await setup(
        (app) => {
          app.task("t.slow", async () => {
            running++;
            peak = Math.max(peak, running);
            await new Promise((r) => setTimeout(r, 50));
            running--;
          });
        },
        { concurrency: 3 },
      );
      const results = await Promise.all(Array.from({ length: 12 }, () => app.sendTask("t.slow")));
      await Promise.all(results.map((r) => r.get({ timeout: 5 })));
      expect(peak).toBe(3);
    });

    it("retries a task as a new message with the same id until it succeeds", async () => {
      const { app } = await setup((app) => {
        app.task(
          "t.flaky",
          (ctx, failures: number) => {
            if (ctx.retries < failures) ctx.retry({ countdown: 0.05, error: new Error("again") });
            return `ok after ${ctx.retries} retries`;
          },
          { maxRetries: 5 },
        );
      });
      const r = await app.sendTask("t.flaky", [2]);
      expect(await r.get({ timeout: 5 })).toBe("ok after 2 retries");
    });

    it("fails with the original error past the last retry", async () => {
      let runs = 0;
      const { app } = await setup((app) => {
        app.task(
          "t.always",
          (ctx) => {
            runs++;
            ctx.retry({ countdown: 0.01, error: new RangeError("still broken") });
          },
          { maxRetries: 2 },
        );
      });
      const error = await failure((await app.sendTask("t.always")).get({ timeout: 5 }));
      expect(error.name).toBe("RangeError");
      expect(error.message).toBe("still broken");
      expect(runs).toBe(3);
    });

    it("revokes a waiting task and terminates a running one", async () => {
      const { app, worker } = await setup(
        (app) => {
          app.task("t.wait", async (ctx) => {
            await new Promise((_, reject) =>
              ctx.signal.addEventListener("abort", () => reject(ctx.signal.reason)),
            );
          });
        },
        { concurrency: 1 },
      );
      const running = await app.sendTask("t.wait");
      const waiting = await app.sendTask("t.wait");
      await new Promise((r) => setTimeout(r, 100));
      expect(worker.active.has(running.id)).toBe(true);
      worker.revoke([waiting.id]);
      expect(worker.revoke([running.id], { terminate: true })).toEqual([running.id]);
      const e1 = await failure(running.get({ timeout: 5 }));
      const e2 = await failure(waiting.get({ timeout: 5 }));
      expect(e1).toBeInstanceOf(TaskRevokedError);
      expect(e1.message).toBe("terminated");
      expect(e2.message).toBe("revoked");
    });

    it("gives back waiting messages on a warm shutdown and finishes running ones", async () => {
      const queue = uniqueName("worker");
      const app = createApp({
        broker: fixture.brokerUrl,
        resultBackend: fixture.backendUrl,
        defaultQueue: queue,
      });
      let finished = 0;
      app.task(
        "t.work",
        async () => {
          await new Promise((r) => setTimeout(r, 200));
          finished++;
        },
        { acksLate: true },
      );
      const worker: Worker = await createWorker(app, { concurrency: 1, logger: silent });
      await worker.start();
      for (let i = 0; i < 5; i++) await app.sendTask("t.work");
      await new Promise((r) => setTimeout(r, 50));
      await worker.stop();
      expect(finished).toBe(1);
      await app.close();
      const broker = await createBroker(fixture.brokerUrl);
      await broker.connect();
      expect((await broker.inspectQueue(queue))?.messages).toBe(4);
      await broker.purge(queue);
      await broker.close();
    });

    it("serves what arrives while it still sets up its queues, rejecting none of it", async () => {
      const queues = Array.from({ length: 6 }, () => uniqueName("worker"));
      const app = createApp({
        broker: fixture.brokerUrl,
        resultBackend: fixture.backendUrl,
        defaultQueue: queues[0]!,
      });
      app.task("t.redelivered", (ctx) => ctx.deliveryInfo.redelivered);
      // Waiting in the first queue: on RabbitMQ they arrive while the other queues are declared.
      const sent = await Promise.all(
        Array.from({ length: 20 }, () => app.sendTask<boolean>("t.redelivered")),
      );
      const worker = await createWorker(app, { concurrency: 4, logger: silent, queues });
      const received: string[] = [];
      worker.on("task", (e) => {
        if (e.type === "task-received") received.push(e.uuid);
      });
      await worker.start();
      cleanups.push(async () => {
        await worker.stop({ force: true });
        const { broker } = await app.connect();
        for (const q of queues) await broker.deleteQueue(q);
        await app.close();
      });
      const redelivered = await Promise.all(sent.map((r) => r.get({ timeout: 10 })));
      expect(redelivered).toEqual(sent.map(() => false));
      expect(received.sort()).toEqual(sent.map((r) => r.id).sort());
    });

    it("emits Celery's task events", async () => {
      const events: string[] = [];
      const { app, worker } = await setup((app) => {
        app.task("t.ev", () => 1);
      });
      worker.on("task", (e) => events.push(e.type));
      await (await app.sendTask("t.ev")).get({ timeout: 5 });
      await new Promise((r) => setTimeout(r, 20));
      expect(events).toEqual(["task-received", "task-started", "task-succeeded"]);
    });
  });
}
