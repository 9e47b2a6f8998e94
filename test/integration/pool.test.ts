/**
 * The threads and processes pools: the same worker behaviours as the async pool, plus what only
 * isolation allows: a hard time limit that stops code that never yields, terminate, surviving a
 * crashed child, and recycling children by task count or memory.
 */
import path from "node:path";
import { Writable } from "node:stream";
import { pino } from "pino";
import { afterEach, describe, expect, it } from "vitest";
import { MemoryBackend } from "../../sdk/src/backends/memory/backend.js";
import { MemoryBroker } from "../../sdk/src/brokers/memory/broker.js";
import {
  createWorker,
  type RemoteTaskError,
  TaskRevokedError,
  TimeLimitExceeded,
  WorkerLostError,
} from "../../sdk/src/index.js";
import { redisUrl, requireRedis, uniqueName } from "../helpers/services.js";
import {
  add,
  app,
  crash,
  crashLate,
  declined,
  fanout,
  hooked,
  ignoring,
  leak,
  nap,
  rejecting,
  retrying,
  soft,
  spin,
  stuckHook,
} from "./fixtures/pool-app.js";

const appModule = path.resolve("test/integration/fixtures/pool-app.ts");

async function failure(p: Promise<unknown>): Promise<Error> {
  try {
    await p;
  } catch (error) {
    return error as Error;
  }
  throw new Error("expected a failure");
}

for (const pool of ["threads", "processes"] as const) {
  describe(`the ${pool} pool`, () => {
    let stop: (() => Promise<void>) | undefined;
    let logs = "";
    afterEach(async () => {
      await stop?.();
      stop = undefined;
    });

    async function start(
      options: { concurrency?: number; maxTasksPerChild?: number; maxMemoryPerChild?: number } = {},
    ) {
      const name = `pool-${pool}-${Math.random().toString(36).slice(2)}`;
      app.configure({
        broker: new MemoryBroker(`memory://${name}`),
        resultBackend: new MemoryBackend(`memory://${name}`),
      });
      logs = "";
      const sink = new Writable({
        write(chunk, _enc, done) {
          logs += chunk.toString();
          done();
        },
      });
      const worker = await createWorker(app, {
        pool,
        appModule,
        concurrency: 2,
        logger: pino({ level: "info" }, sink),
        ...options,
      });
      await worker.start();
      stop = async () => {
        await worker.stop({ force: true });
        await app.close();
      };
      return worker;
    }

    it("runs tasks in isolated children and stores results and users' errors", async () => {
      await start();
      const r = await add.delay(2, 3);
      const value = await r.get({ timeout: 10 });
      expect(value.sum).toBe(5);
      if (pool === "processes") expect(value.pid).not.toBe(process.pid);
      else expect(value.thread).toBeGreaterThan(0);
      const error = (await failure(
        (await declined.delay()).get({ timeout: 10 }),
      )) as RemoteTaskError;
      expect(error.name).toBe("PaymentDeclined");
      expect(error.message).toBe("card declined");
      expect(error.excModule).toBe("billing.errors");
      expect(error.remoteTraceback).toContain("PaymentDeclined: card declined");
    });

    it("applies retry, reject and ignore outcomes from a child", async () => {
      const worker = await start();
      const seen: Array<{ type: string; uuid?: string }> = [];
      worker.on("task", (e) => seen.push(e as { type: string; uuid?: string }));
      expect(await (await retrying.delay()).get({ timeout: 10 })).toBe("retried 1");
      const rejected = await rejecting.delay();
      const ignored = await ignoring.delay();
      const after = await add.delay(1, 1);
      await after.get({ timeout: 10 });
      const of = (id: string) => seen.filter((e) => e.uuid === id).map((e) => e.type);
      expect(of(rejected.id)).toContain("task-rejected");
      expect(await rejected.state()).toBe("PENDING");
      // Ignore: the run ends without an outcome event and without a stored state.
      expect(of(ignored.id)).toContain("task-started");
      expect(of(ignored.id).filter((t) => /succeeded|failed|rejected/.test(t))).toEqual([]);
      expect(await ignored.state()).toBe("PENDING");
    });

    it("runs up to its size at once", async () => {
      await start({ concurrency: 2 });
      const began = Date.now();
      const results = await Promise.all([
        nap.delay(400),
        nap.delay(400),
        nap.delay(400),
        nap.delay(400),
      ]);
      const where = await Promise.all(results.map((r) => r.get({ timeout: 10 })));
      const took = Date.now() - began;
      expect(took).toBeGreaterThanOrEqual(750);
      expect(took).toBeLessThan(1600);
      expect(new Set(where.map((w) => `${w.pid}.${w.thread}`)).size).toBe(2);
    });

    it("stops `while (true) {}` at the hard time limit, replaces the child and keeps serving", async () => {
      const worker = await start();
      const before = worker.stats().pool.processes;
      const r = await spin.applyAsync([], { timeLimit: 1 });
      const error = await failure(r.get({ timeout: 10 }));
      expect(error).toBeInstanceOf(TimeLimitExceeded);
      expect((await (await add.delay(1, 2)).get({ timeout: 10 })).sum).toBe(3);
      const deadline = Date.now() + 5000;
      while (
        before.every((id, i) => worker.stats().pool.processes[i] === id) &&
        Date.now() < deadline
      )
        await new Promise((r) => setTimeout(r, 20));
      expect(worker.stats().pool.processes).not.toEqual(before);
      expect(logs).toContain("stopping pool child");
    });

    it("aborts the task's signal at the soft time limit", async () => {
      await start();
      expect(await (await soft.applyAsync([], { softTimeLimit: 0.3 })).get({ timeout: 10 })).toBe(
        "soft limit: SoftTimeLimitExceeded",
      );
    });

    it("terminates a running task on revoke", async () => {
      const worker = await start();
      const r = await spin.delay();
      const deadline = Date.now() + 5000;
      while (!worker.active.has(r.id) && Date.now() < deadline)
        await new Promise((res) => setTimeout(res, 20));
      worker.revoke([r.id], { terminate: true, signum: 9 });
      const error = await failure(r.get({ timeout: 10 }));
      expect(error).toBeInstanceOf(TaskRevokedError);
      expect(error.message).toBe("terminated");
    });

    it("fails a task whose child died with WorkerLostError, and keeps serving", async () => {
      await start();
      const error = await failure((await crash.delay()).get({ timeout: 10 }));
      expect(error).toBeInstanceOf(WorkerLostError);
      expect(error.message).toContain("Worker exited prematurely");
      expect((await (await add.delay(2, 2)).get({ timeout: 10 })).sum).toBe(4);
    });

    it("requeues a late-acked task whose child died, with rejectOnWorkerLost", async () => {
      await start();
      expect(await (await crashLate.delay()).get({ timeout: 15 })).toBe("ran again");
    });

    it("replaces a child after maxTasksPerChild tasks, saying why", async () => {
      await start({ concurrency: 1, maxTasksPerChild: 2 });
      const ids = [];
      for (let i = 0; i < 4; i++) {
        const w = await (await add.delay(i, i)).get({ timeout: 10 });
        ids.push(pool === "processes" ? w.pid : w.thread);
      }
      expect(ids[0]).toBe(ids[1]);
      expect(ids[2]).toBe(ids[3]);
      expect(ids[2]).not.toBe(ids[1]);
      expect(logs).toContain("max-tasks-per-child 2");
    });

    it("replaces a child whose memory passed maxMemoryPerChild after its task", async () => {
      // A process measures its resident size (a fresh one is about 100 MiB here); a thread, its own heap.
      const [limitMiB, leakMiB] = pool === "processes" ? [200, 160] : [60, 80];
      await start({ concurrency: 1, maxMemoryPerChild: limitMiB * 1024 });
      const first = await (await leak.delay(leakMiB)).get({ timeout: 20 });
      const second = await (await add.delay(1, 1)).get({ timeout: 20 });
      expect(pool === "processes" ? second.pid : second.thread).not.toBe(
        pool === "processes" ? first.pid : first.thread,
      );
      expect(logs).toContain("max-memory-per-child");
    });

    it("sends tasks from a child through the worker's broker, not the module's default", async () => {
      await requireRedis();
      // The module's app has no broker of its own (memory): only the worker's settings lead to Redis.
      app.configure({
        broker: redisUrl(7),
        resultBackend: redisUrl(8),
        defaultQueue: uniqueName(`pool-fanout-${pool}`),
      });
      const worker = await createWorker(app, {
        pool,
        appModule,
        concurrency: 2,
        logger: pino({ level: "silent" }),
      });
      await worker.start();
      stop = async () => {
        await worker.stop({ force: true });
        await app.close();
      };
      const childId = await (await fanout.delay(41)).get({ timeout: 15 });
      expect((await app.asyncResult<{ sum: number }>(childId).get({ timeout: 15 })).sum).toBe(42);
    });

    it("stops a hook that outlives the hard time limit with its child, and keeps serving", async () => {
      await start({ concurrency: 1 });
      const stuck = await (await stuckHook.delay()).get({ timeout: 10 });
      // The outcome was stored before the hook ran; the hook holds the only child until the limit.
      const next = await (await add.delay(1, 1)).get({ timeout: 10 });
      expect(pool === "processes" ? next.pid : next.thread).not.toBe(
        pool === "processes" ? stuck.pid : stuck.thread,
      );
      expect(logs).toContain("stopping pool child");
    });

    it("runs a task's hooks in its child once the worker has stored the outcome", async () => {
      await requireRedis();
      // A Redis backend, so the child reads what the worker stored.
      app.configure({
        broker: new MemoryBroker(`memory://pool-hooks-${pool}-${Math.random()}`),
        resultBackend: redisUrl(8),
      });
      let out = "";
      const sink = new Writable({
        write(chunk, _enc, done) {
          out += chunk.toString();
          done();
        },
      });
      const worker = await createWorker(app, {
        pool,
        appModule,
        concurrency: 1,
        logger: pino({ level: "info" }, sink),
      });
      await worker.start();
      stop = async () => {
        await worker.stop({ force: true });
        await app.close();
      };
      expect(await (await hooked.delay(false)).get({ timeout: 15 })).toBe("hooked");
      await failure((await hooked.delay(true)).get({ timeout: 15 }));
      // One child: its second run starts only once the first run's hook is done.
      const ran = () =>
        out
          .split("\n")
          .filter((l) => l.includes('"hook ran"'))
          .map((l) => JSON.parse(l) as { hookState: string; storedState: string });
      const deadline = Date.now() + 10_000;
      while (ran().length < 2 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      expect(ran().map((r) => [r.hookState, r.storedState])).toEqual([
        ["SUCCESS", "SUCCESS"],
        ["FAILURE", "FAILURE"],
      ]);
    });
  });
}
