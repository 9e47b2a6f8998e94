/**
 * Workflows on a real broker with the Redis result backend: chains, groups, chords (Celery's
 * chord counter in Redis), links and chunks, as users rely on them. Run for Redis and RabbitMQ
 * by the files beside it.
 */
import { Redis } from "ioredis";
import { pino } from "pino";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import {
  type App,
  ChordError,
  chain,
  chord,
  chunks,
  createApp,
  createWorker,
  GroupResult,
  group,
  RemoteTaskError,
  type Worker,
} from "../../sdk/src/index.js";
import { redisUrl, uniqueName } from "../helpers/services.js";

export interface CanvasSuiteFixture {
  name: string;
  brokerUrl: string;
  setup(): Promise<void>;
}

/** Results and chord counters live here, beside the Redis broker's keys when it is Redis. */
export const BACKEND_URL = redisUrl(6);

const silent = pino({ level: "silent" });

async function failure(p: Promise<unknown>): Promise<Error> {
  try {
    await p;
  } catch (error) {
    return error as Error;
  }
  throw new Error("expected a failure");
}

/** The tasks of the suite; each call is recorded (task, id, args, lineage) in call order. */
function defineTasks(app: App) {
  type Call = {
    task: string;
    id: string;
    args: unknown[];
    parentId: string | null;
    groupId: string | null;
  };
  const calls: Call[] = [];
  const record = (ctx: {
    name: string;
    id: string;
    args: readonly unknown[];
    parentId: string | null;
    groupId: string | null;
  }) => {
    const { name: task, id, parentId, groupId } = ctx;
    calls.push({ task, id, args: [...ctx.args], parentId, groupId });
  };
  const add = app.task("canvas.add", (ctx, x: number, y: number) => {
    record(ctx);
    return x + y;
  });
  const tsum = app.task("canvas.tsum", (ctx, xs: number[]) => {
    record(ctx);
    return xs.reduce((a, b) => a + b, 0);
  });
  const collect = app.task("canvas.collect", (ctx, ...args: unknown[]) => {
    record(ctx);
    return args;
  });
  const fail = app.task("canvas.fail", (ctx, message: string): number => {
    record(ctx);
    throw new Error(message);
  });
  // Finishes after `ms`: header tasks given decreasing delays finish in reverse order.
  const wait = app.task("canvas.wait", async (ctx, ms: number, value: number) => {
    await new Promise((r) => setTimeout(r, ms));
    record(ctx);
    return value;
  });
  return { calls, add, tsum, collect, fail, wait };
}

export function canvasSuite(fixture: CanvasSuiteFixture) {
  describe(`workflows on ${fixture.name}`, () => {
    const queue = uniqueName("canvas");
    const app = createApp({
      broker: fixture.brokerUrl,
      resultBackend: BACKEND_URL,
      defaultQueue: queue,
    });
    const tasks = defineTasks(app);
    const { add, tsum, collect, fail, wait } = tasks;
    const redis = new Redis(BACKEND_URL);
    const workers: Worker[] = [];

    const startWorker = async (concurrency: number) => {
      const worker = await createWorker(app, { concurrency, logger: silent });
      await worker.start();
      workers.push(worker);
      return worker;
    };

    beforeAll(async () => {
      await fixture.setup();
      await startWorker(4);
    });

    afterEach(() => {
      tasks.calls.length = 0;
    });

    afterAll(async () => {
      await Promise.all(workers.map((w) => w.stop({ force: true })));
      await app.connected.broker.deleteQueue(queue).catch(() => {});
      await app.close();
      redis.disconnect();
    });

    const callsOf = (task: string) => tasks.calls.filter((c) => c.task === task);
    /** Keys of a chord's counter still in Redis. */
    const counterKeys = (groupId: string) =>
      redis.keys(`celery-taskset-meta-${groupId}.*`).then((k) => k.sort());
    const until = async (check: () => Promise<boolean> | boolean, ms = 5000) => {
      const end = Date.now() + ms;
      while (!(await check())) {
        if (Date.now() > end) throw new Error("condition not met in time");
        await new Promise((r) => setTimeout(r, 20));
      }
    };

    it("runs a chain step by step, each step the child of the one before", async () => {
      const r = await chain(add.s(1, 2), add.s(10), add.si(100, 200), add.s(1)).delay();
      expect(await r.get({ timeout: 10 })).toBe(301);
      const steps = callsOf("canvas.add");
      expect(steps.map((s) => s.args)).toEqual([
        [1, 2],
        [3, 10],
        [100, 200],
        [300, 1],
      ]);
      expect(steps.slice(1).map((s) => s.parentId)).toEqual(steps.slice(0, -1).map((s) => s.id));
      expect(steps.at(-1)?.id).toBe(r.id);
    });

    it("fails the chain's result with the error of the step that failed", async () => {
      const r = await chain(add.s(1, 2), fail.si("step 2 broke"), add.s(1)).delay();
      const error = await failure(r.get({ timeout: 10 }));
      expect(error).toBeInstanceOf(RemoteTaskError);
      expect(error.message).toBe("step 2 broke");
      expect(callsOf("canvas.add")).toHaveLength(1);
    });

    it("runs a group and reads its results together, saved and restored by id", async () => {
      const g = await group([wait.s(80, 1), wait.s(40, 2), wait.s(1, 3)]).delay();
      expect(await g.join({ timeout: 10 })).toEqual([1, 2, 3]);
      expect(await g.completedCount()).toBe(3);
      expect([await g.ready(), await g.successful(), await g.failed()]).toEqual([
        true,
        true,
        false,
      ]);
      await g.save();
      // Celery's layout, so Python's GroupResult.restore(id) reads it.
      expect(JSON.parse((await redis.get(`celery-taskset-meta-${g.id}`)) ?? "null")).toEqual({
        result: [[g.id, null], g.results.map((r) => [[r.id, null], null])],
      });
      const other = createApp({ broker: "memory://", resultBackend: BACKEND_URL });
      const restored = await GroupResult.restore<number[]>(g.id, other);
      expect(await restored?.get({ timeout: 10 })).toEqual([1, 2, 3]);
      await other.close();
      await g.forget();
      expect(await redis.exists(`celery-taskset-meta-${g.id}`)).toBe(0);
    });

    it("calls a chord's callback once, with the results in header order, and clears its counter", async () => {
      const header = [5, 4, 3, 2, 1, 0].map((i) => wait.s(i * 30, i));
      const r = await chord(header, collect.s()).delay();
      expect(await r.get({ timeout: 10 })).toEqual([[5, 4, 3, 2, 1, 0]]);
      expect(callsOf("canvas.collect")).toHaveLength(1);
      // A header task sent it: the one that completed the count.
      const ran = callsOf("canvas.wait");
      expect(ran.map((c) => c.id)).toContain(callsOf("canvas.collect")[0]?.parentId);
      const groupId = ran[0]?.groupId;
      expect(groupId).toBeTruthy();
      await until(async () => (await counterKeys(groupId!)).length === 0);
    });

    it("keeps the chord's counter in Redis as Celery does while the header runs", async () => {
      const r = await chord([wait.s(1500, 1), add.s(1, 1)], tsum.s()).delay();
      await until(() => callsOf("canvas.add").length === 1);
      const groupId = callsOf("canvas.add")[0]?.groupId;
      await until(async () => (await redis.zcard(`celery-taskset-meta-${groupId}.j`)) === 1);
      expect(await redis.get(`celery-taskset-meta-${groupId}.s`)).toBe("2");
      const [member, score] = await redis.zrange(
        `celery-taskset-meta-${groupId}.j`,
        "0",
        "-1",
        "WITHSCORES",
      );
      expect(JSON.parse(member!)).toEqual([1, callsOf("canvas.add")[0]!.id, "SUCCESS", 2]);
      expect(score).toBe("1");
      expect(await redis.ttl(`celery-taskset-meta-${groupId}.j`)).toBeGreaterThan(86_000);
      expect(await r.get({ timeout: 10 })).toBe(3);
    });

    it("never runs a chord's callback when a header task fails: ChordError, and its errbacks run", async () => {
      const r = await chord(
        [add.s(1, 1), fail.s("header broke"), wait.s(100, 3)],
        tsum.s().linkError(collect.s("errback")),
      ).delay();
      const error = await failure(r.get({ timeout: 10 }));
      expect(error).toBeInstanceOf(ChordError);
      expect(error.message).toMatch(/^Dependency [0-9a-f-]{36} raised Error\('header broke'\)$/);
      await until(() => callsOf("canvas.collect").length === 1);
      expect(callsOf("canvas.collect")[0]?.args).toEqual([r.id, "errback"]);
      expect(callsOf("canvas.tsum")).toHaveLength(0);
      // After the whole header ran: every header task counted.
      expect(callsOf("canvas.wait")).toHaveLength(1);
    });

    it("clears a failed chord's counter too", async () => {
      const r = await chord([add.s(1, 1), fail.s("header broke")], tsum.s()).delay();
      expect(await failure(r.get({ timeout: 10 }))).toBeInstanceOf(ChordError);
      const groupId = callsOf("canvas.add")[0]?.groupId;
      expect(groupId).toBeTruthy();
      await until(async () => (await counterKeys(groupId!)).length === 0);
    });

    it("gives the callback a header member's group results nested, then deletes the saved header", async () => {
      // Celery 5.2.6 saves such a header in celery-taskset-meta-<id> (apply_chord) and joins it
      // when the chord completes: the callback gets [[3, 4]], not [3, 4].
      const r = await chord([chain(add.s(1, 1), group([add.s(1), add.s(2)]))], collect.s()).delay();
      expect(await r.get({ timeout: 10 })).toEqual([[[3, 4]]]);
      const groupId = callsOf("canvas.add").find((c) => c.groupId)?.groupId;
      expect(groupId).toBeTruthy();
      await until(async () => (await counterKeys(groupId!)).length === 0);
      expect(await redis.exists(`celery-taskset-meta-${groupId}`)).toBe(0);
    });

    it("holds no worker slot while a chord's header runs", async () => {
      const single = createApp({
        broker: fixture.brokerUrl,
        resultBackend: BACKEND_URL,
        defaultQueue: uniqueName("canvas-single"),
      });
      const t = defineTasks(single);
      const worker = await createWorker(single, { concurrency: 1, logger: silent });
      await worker.start();
      try {
        const r = await chord(
          Array.from({ length: 8 }, (_, i) => t.add.s(i, i)),
          t.tsum.s(),
        ).delay();
        expect(await r.get({ timeout: 10 })).toBe(56);
      } finally {
        await worker.stop({ force: true });
        await single.connected.broker.deleteQueue(single.options.defaultQueue).catch(() => {});
        await single.close();
      }
    });

    it("sends the callback exactly once when many workers finish header tasks at once", async () => {
      const extra = await Promise.all([startWorker(8), startWorker(8)]);
      try {
        const r = await chord(
          Array.from({ length: 60 }, (_, i) => add.s(i, 0)),
          tsum.s(),
        ).delay();
        expect(await r.get({ timeout: 20 })).toBe((59 * 60) / 2);
        await new Promise((resolve) => setTimeout(resolve, 300));
        expect(callsOf("canvas.tsum")).toHaveLength(1);
      } finally {
        for (const w of extra) {
          await w.stop({ force: true });
          workers.splice(workers.indexOf(w), 1);
        }
      }
    }, 30_000);

    it("runs chains with a chord inside, chords with a chain callback, and chunks", async () => {
      const inner = await chain(
        add.s(1, 2),
        group([add.s(1), add.s(2)]),
        tsum.s(),
        add.s(5),
      ).delay();
      expect(await inner.get({ timeout: 10 })).toBe(14);
      const piped = await chord([add.s(1, 1), add.s(2, 2)], tsum.s().pipe(add.s(100))).delay();
      expect(await piped.get({ timeout: 10 })).toBe(106);
      const parts = await chord(
        chunks(
          add,
          Array.from({ length: 7 }, (_, i) => [i, 1] as [number, number]),
          3,
        ),
        collect.s(),
      ).delay();
      expect(await parts.get({ timeout: 10 })).toEqual([[[1, 2, 3], [4, 5, 6], [7]]]);
    });

    it("sends links with the result and errbacks with the failed task's id", async () => {
      const ok = await add.s(2, 2).link(collect.s("linked")).delay();
      const bad = await fail.s("nope").linkError(collect.s("failed")).delay();
      await ok.get({ timeout: 10 });
      await failure(bad.get({ timeout: 10 }));
      await until(() => callsOf("canvas.collect").length === 2);
      expect(callsOf("canvas.collect").map((c) => c.args)).toEqual(
        expect.arrayContaining([
          [4, "linked"],
          [bad.id, "failed"],
        ]),
      );
    });
  });
}
