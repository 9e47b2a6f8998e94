/**
 * Unique tasks on the in-memory broker and lock store: the rules users rely on, whatever the
 * broker (the Redis and RabbitMQ suites check the same across processes).
 */
import { pino } from "pino";
import { afterEach, describe, expect, it } from "vitest";
import { type App, ChordError, chain, chord, createApp, type Task } from "../src/index.js";
import { lockKey, ruleOf, ruleOfMessage } from "../src/locks/options.js";
import { startTestWorker, type TestWorker } from "../src/testing/index.js";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until(check: () => boolean | Promise<boolean>, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error("condition not met in time");
    await sleep(5);
  }
}

interface Run {
  arg: unknown;
  start: number;
  end: number;
  retries: number;
}

/** A task that records when each run starts and ends, and can be held open until released. */
function recorder(app: App, name: string, options: Parameters<App["task"]>[2] = {}) {
  const runs: Run[] = [];
  const gates: Array<() => void> = [];
  const task = app.task(
    name,
    async (ctx, arg: unknown, ms = 30, hold = false) => {
      const run = { arg, start: performance.now(), end: Number.NaN, retries: ctx.retries };
      if (hold) await new Promise<void>((r) => gates.push(r));
      else await sleep(ms as number);
      run.end = performance.now();
      runs.push(run);
      if (arg === "boom") throw new Error("boom");
      return arg;
    },
    options,
  ) as Task<[unknown, number?, boolean?]>;
  const open = () => {
    for (const g of gates.splice(0)) g();
  };
  return { task, runs, open, held: () => gates.length };
}

/** A logger whose records the test can read. */
function captured() {
  const records: Array<Record<string, unknown>> = [];
  const logger = pino(
    { level: "info" },
    { write: (line: string) => records.push(JSON.parse(line)) },
  );
  return { logger, records };
}

/** Whether any two runs overlap in time. */
function overlaps(runs: Run[]): boolean {
  const sorted = [...runs].sort((a, b) => a.start - b.start);
  return sorted.some((r, i) => i > 0 && r.start < sorted[i - 1]!.end);
}

describe("unique task keys", () => {
  const rule = (by: Parameters<typeof ruleOf>[0]) => ruleOf(by)!;

  it("scope keys by task name, by arguments, or by a function", () => {
    expect(lockKey(rule({ by: "name" }), "stats.album", ["a1"], {})).toBe("stats.album");
    expect(lockKey(rule({ by: "args" }), "stats.album", ["a1"], {})).toBe('stats.album:["a1"]');
    expect(lockKey(rule(true), "stats.album", ["a1"], { full: true })).toBe(
      'stats.album:["a1"] {"full":true}',
    );
    expect(lockKey(rule({ by: (args) => `album-${args[0]}` }), "stats.album", ["a1"], {})).toBe(
      "stats.album:album-a1",
    );
  });

  it("treat keyword arguments in any order as the same, and hash huge arguments", () => {
    const r = rule({ by: "args" });
    expect(lockKey(r, "t", [], { a: 1, b: { y: 2, x: 1 } })).toBe(
      lockKey(r, "t", [], { b: { x: 1, y: 2 }, a: 1 }),
    );
    const key = lockKey(r, "t", ["x".repeat(1000)], {});
    expect(key).toMatch(/^t:sha256:[0-9a-f]{64}$/);
  });

  it("reject bad options where the task is defined", () => {
    const app = createApp();
    expect(() => app.task("t.bad", () => 1, { unique: { onConflict: "later" as "drop" } })).toThrow(
      /INVALID_OPTION|onConflict/,
    );
    expect(() => app.task("t.bad2", () => 1, { unique: { ttl: 0 } })).toThrow(/ttl/);
    expect(() => app.task("t.bad3", () => 1, { unique: { tll: 5 } as never })).toThrow(/tll/);
  });

  it("refuse a ttl under 1 s or too long for a renewal timer, and a retryCountdown under 0.1 s", async () => {
    const app = createApp();
    const define = (unique: object) => () => app.task(`t.${Math.random()}`, () => 1, { unique });
    expect(define({ ttl: 0.5 })).toThrow(/ttl/);
    // Renewed every third of the ttl: setInterval takes at most 2^31-1 ms.
    expect(define({ ttl: 7_000_000 })).toThrow(/ttl/);
    expect(define({ ttl: 6_000_000 })).not.toThrow();
    expect(define({ ttl: 1 })).not.toThrow();
    expect(define({ retryCountdown: 0.05 })).toThrow(/retryCountdown/);
    expect(define({ retryCountdown: 0.1 })).not.toThrow();
    // The same limits for a per-call rule, and for a header sent by anyone.
    const t = app.task("t.percall", () => 1);
    await expect(t.applyAsync([], { unique: { ttl: 0.2 } })).rejects.toThrow(/ttl/);
    expect(() =>
      ruleOfMessage({ by: "name", ttl: 0.2, on_conflict: "drop", retry_countdown: 5 }, undefined),
    ).toThrow(/ttl/);
    expect(() =>
      ruleOfMessage({ by: "name", ttl: 5, on_conflict: "drop", retry_countdown: 0 }, undefined),
    ).toThrow(/retry_countdown/);
  });
});

describe("unique tasks on the memory broker", () => {
  let tw: TestWorker | undefined;
  afterEach(async () => {
    await tw?.stop();
    tw = undefined;
  });

  it("run concurrent calls with the same arguments one at a time, others in parallel", async () => {
    const app = createApp();
    const { task, runs } = recorder(app, "t.album", {
      unique: { by: "args", onConflict: "retry", retryCountdown: 0.1 },
    });
    tw = await startTestWorker(app, { concurrency: 8 });
    const results = await Promise.all([
      ...Array.from({ length: 6 }, () => task.delay("a1", 20)),
      task.delay("a2", 100),
      task.delay("a3", 100),
    ]);
    await Promise.all(results.map((r) => r.get({ timeout: 10 })));
    expect(runs).toHaveLength(8);
    expect(overlaps(runs.filter((r) => r.arg === "a1"))).toBe(false);
    expect(overlaps(runs.filter((r) => r.arg !== "a1"))).toBe(true);
  });

  it("drop: acks the duplicate and stores nothing; its result stays PENDING", async () => {
    const app = createApp();
    const { task, runs, open, held } = recorder(app, "t.drop", { unique: { by: "name" } });
    const { logger, records } = captured();
    tw = await startTestWorker(app, { logger });
    const first = await task.delay("x", 0, true);
    await until(() => held() === 1);
    const dup = await task.delay("y", 0, true);
    await until(() => records.some((r) => r.taskId === dup.id && r.onConflict === "drop"));
    const queue = tw.worker.queues[0]!;
    expect(await app.connected.broker.inspectQueue(queue)).toMatchObject({ messages: 0 });
    expect(await dup.state()).toBe("PENDING");
    expect(held()).toBe(1);
    open();
    expect(await first.get({ timeout: 5 })).toBe("x");
    expect(runs.map((r) => r.arg)).toEqual(["x"]);
  });

  it("fail: stores FAILURE with a UniqueConflictError naming the holder", async () => {
    const app = createApp();
    const { task, open, held } = recorder(app, "t.fail", { unique: { onConflict: "fail" } });
    tw = await startTestWorker(app);
    const first = await task.delay("x", 0, true);
    await until(() => held() === 1);
    const dup = await task.delay("x", 0, true);
    const error = await dup.get({ timeout: 5 }).catch((e: Error) => e);
    expect(error).toMatchObject({ name: "UniqueConflictError" });
    expect((error as Error).message).toContain(first.id);
    expect(await dup.state()).toBe("FAILURE");
    open();
    await first.get({ timeout: 5 });
  });

  it("retry: waits for the lock without using up maxRetries or counting as a retry", async () => {
    const app = createApp();
    const { task, runs, open, held } = recorder(app, "t.retry", {
      maxRetries: 0,
      unique: { by: "name", onConflict: "retry", retryCountdown: 0.1 },
    });
    tw = await startTestWorker(app);
    const first = await task.delay("x", 0, true);
    await until(() => held() === 1);
    const dup = await task.delay("x", 10);
    await until(async () => (await dup.state()) === "RETRY");
    await sleep(100); // several conflicts pass
    open();
    expect(await dup.get({ timeout: 5 })).toBe("x");
    await first.get({ timeout: 5 });
    expect(runs.map((r) => r.retries)).toEqual([0, 0]);
  });

  it("waits, never drops, when its own task id holds the lock (a worker died holding it)", async () => {
    const app = createApp();
    const { task, runs } = recorder(app, "t.orphan", {
      unique: { by: "name", ttl: 1, retryCountdown: 0.1 },
    });
    tw = await startTestWorker(app);
    const id = "7f1c9a52-0000-4000-8000-000000000001";
    const store = await app.locks.store();
    await store.acquire("t.orphan", { task: "t.orphan", taskId: id, worker: "dead@host" }, 300);
    const r = await task.applyAsync(["x", 0], { taskId: id });
    expect(await r.get({ timeout: 5 })).toBe("x");
    expect(runs).toHaveLength(1);
  });

  it("frees the lock before the result is visible, so a caller who waited can run the next", async () => {
    const app = createApp();
    const { task, runs } = recorder(app, "t.sequence", { unique: { by: "name" } });
    tw = await startTestWorker(app);
    for (let i = 0; i < 5; i++) expect(await (await task.delay(i, 0)).get({ timeout: 5 })).toBe(i);
    expect(runs).toHaveLength(5);
  });

  it("releases the lock whatever the outcome, and shows holders in app.locks", async () => {
    const app = createApp();
    const { task, open, held } = recorder(app, "t.locks", { unique: { ttl: 30 } });
    tw = await startTestWorker(app, { hostname: "locks@test" });
    const r = await task.delay("boom", 0, true);
    await until(() => held() === 1);
    const [lock] = await app.locks.list();
    expect(lock).toMatchObject({
      key: 't.locks:["boom",0,true]',
      task: "t.locks",
      taskId: r.id,
      worker: "locks@test",
    });
    expect(lock!.expiresAt.getTime() - lock!.acquiredAt.getTime()).toBeGreaterThan(29_000);
    open();
    await expect(r.get({ timeout: 5 })).rejects.toThrow("boom");
    expect(await app.locks.list()).toEqual([]);
  });

  it("lets an operator release a held lock, so another run starts at once", async () => {
    const app = createApp();
    const { task, open, held } = recorder(app, "t.release", { unique: { by: "name" } });
    tw = await startTestWorker(app);
    await task.delay(1, 0, true);
    await until(() => held() === 1);
    expect(await app.locks.release("t.release")).toBe(true);
    expect(await app.locks.release("t.release")).toBe(false);
    await task.delay(2, 0, true);
    await until(() => held() === 2);
    open();
    await tw.drain();
  });

  it("takes per-call rules from the message: off for one call, or on for a task without one", async () => {
    const app = createApp();
    const uniq = recorder(app, "t.percall.uniq", { unique: { by: "name" } });
    const plain = recorder(app, "t.percall.plain");
    tw = await startTestWorker(app, { concurrency: 8 });
    await Promise.all([
      uniq.task.applyAsync(["a", 0, true]),
      uniq.task.applyAsync(["b", 0, true], { unique: false }),
    ]);
    await until(() => uniq.held() === 2);
    uniq.open();
    const byFirstLetter = { by: (args: readonly unknown[]) => String(args[0]).slice(0, 1) };
    const sent = await Promise.all(
      ["apple", "avocado", "banana"].map((fruit) =>
        plain.task.applyAsync([fruit, 40], {
          unique: { ...byFirstLetter, onConflict: "fail" },
        }),
      ),
    );
    const outcomes = await Promise.all(
      sent.map((r) => r.get({ timeout: 5 }).catch((e: Error) => e.name)),
    );
    expect(outcomes.filter((o) => o === "UniqueConflictError")).toHaveLength(1);
    expect(outcomes).toContain("banana");
  });

  it("carries a signature's unique rule to the worker, and refuses a function `by` there", async () => {
    const app = createApp();
    const { task, runs, open, held } = recorder(app, "t.signature");
    tw = await startTestWorker(app);
    const unique = { by: "name", onConflict: "fail" } as const;
    const first = await task.s("x", 0, true).set({ unique }).applyAsync();
    await until(() => held() === 1);
    const dup = await app.signature("t.signature", ["y", 0], { unique }).delay();
    expect(await dup.get({ timeout: 5 }).catch((e: Error) => e.name)).toBe("UniqueConflictError");
    open();
    expect(await first.get({ timeout: 5 })).toBe("x");
    expect(runs.map((r) => r.arg)).toEqual(["x"]);
    // A function cannot travel in a signature, and the args it would see are not known yet.
    expect(() => task.s("x").set({ unique: { by: (args) => String(args[0]) } })).toThrow(
      /unique\.by.*function.*signature/s,
    );
  });

  it("fails, rather than drops, a conflicting chord header task or chain step, so the workflow ends", async () => {
    const app = createApp();
    const { task, open, held } = recorder(app, "t.inflow", { unique: { by: "name" } });
    const tsum = app.task("t.count", (_ctx, values: unknown[]) => values.length);
    const { logger, records } = captured();
    tw = await startTestWorker(app, { logger });
    const holder = await task.delay("held", 0, true);
    await until(() => held() === 1);
    const inChord = await chord([task.s("a", 0), tsum.s([])], tsum.s()).delay();
    expect(await inChord.get({ timeout: 5 }).catch((e: Error) => e)).toBeInstanceOf(ChordError);
    const inChain = await chain(task.s("b", 0), tsum.si([])).applyAsync();
    expect(await inChain.get({ timeout: 5 }).catch((e: Error) => e.name)).toBe(
      "UniqueConflictError",
    );
    expect(records.filter((r) => r.onConflict === "fail")).toHaveLength(2);
    // On its own, a conflicting run is still dropped.
    const alone = await task.delay("c", 0);
    await until(() => records.some((r) => r.taskId === alone.id && r.onConflict === "drop"));
    open();
    await holder.get({ timeout: 5 });
  });

  it("says plainly when an app has no lock store to share", async () => {
    const app = createApp({ broker: "amqp://guest:guest@127.0.0.1:5672//", resultBackend: null });
    await expect(app.locks.list()).rejects.toMatchObject({ code: "NO_LOCK_STORE" });
    await expect(app.locks.list()).rejects.toThrow(/locks.*redis:\/\//s);
    expect(() => createApp({ locks: "amqp://x" })).toThrow(/unsupported locks URL/);
  });
});
