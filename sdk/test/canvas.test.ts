/**
 * The canvas on the in-memory broker and result backend (what users' own tests run on): chains,
 * groups, chords, links, chunks, and the errors a user meets when a chord cannot run.
 */
import { pino } from "pino";
import { afterEach, describe, expect, it } from "vitest";
import { z } from "zod";
import {
  type App,
  type CeleriacError,
  ChordError,
  chain,
  chord,
  chunks,
  createApp,
  defineTask,
  GroupResult,
  group,
  MemoryBackend,
  MemoryBroker,
  RemoteTaskError,
  signatureFromDict,
} from "../src/index.js";
import { startTestWorker, type TestWorker } from "../src/testing/index.js";

let running: TestWorker | undefined;
afterEach(async () => {
  await running?.stop();
  running = undefined;
});

async function failure(p: Promise<unknown>): Promise<Error> {
  try {
    await p;
  } catch (error) {
    return error as Error;
  }
  throw new Error("expected a failure");
}

/** An app with a few tasks, and what they were called with, in call order. */
function fixture() {
  const app = createApp();
  const calls: Array<{
    task: string;
    id: string;
    args: unknown[];
    parentId: string | null;
    rootId: string;
  }> = [];
  const seen =
    <A extends unknown[], R>(name: string, fn: (...args: A) => R) =>
    (
      ctx: { id: string; args: readonly unknown[]; parentId: string | null; rootId: string },
      ...args: A
    ) => {
      const { id, parentId, rootId } = ctx;
      calls.push({ task: name, id, args: [...ctx.args], parentId, rootId });
      return fn(...args);
    };
  const add = app.task(
    "c.add",
    seen("c.add", (x: number, y: number) => x + y),
  );
  const tsum = app.task(
    "c.tsum",
    seen("c.tsum", (xs: number[]) => xs.reduce((a, b) => a + b, 0)),
  );
  const fail = app.task(
    "c.fail",
    seen("c.fail", (message: string): number => {
      throw new Error(message);
    }),
  );
  const record = app.task(
    "c.record",
    seen("c.record", (...args: unknown[]) => args),
  );
  const wait = app.task("c.wait", async (_ctx, ms: number, value: number) => {
    await new Promise((r) => setTimeout(r, ms));
    return value;
  });
  // Refuses any argument but one string: sending it a number fails in the sender, not the worker.
  const strict = app.task(
    defineTask("c.strict", { schemas: { args: z.tuple([z.string()]) } }),
    seen("c.strict", (text: string) => text),
  );
  const lateAdd = app.task(
    "c.lateAdd",
    seen("c.lateAdd", (x: number, y: number) => x + y),
    { acksLate: true },
  );
  return { app, calls, add, tsum, fail, record, wait, strict, lateAdd };
}

/** A logger whose records the test can read. */
function captured() {
  const records: Array<Record<string, unknown>> = [];
  const logger = pino(
    { level: "info" },
    { write: (line: string) => records.push(JSON.parse(line) as Record<string, unknown>) },
  );
  return { logger, records };
}

async function started<T extends { app: App }>(
  f: T,
  options: Parameters<typeof startTestWorker>[1] = {},
): Promise<T> {
  running = await startTestWorker(f.app, options);
  return f;
}

/** Where a finished task's stored meta says it belongs. */
async function metaOf(app: App, id: string) {
  return (await app.connect()).backend!.get(id);
}

describe("chains", () => {
  it("run each step with the previous result prepended, and give the last one's", async () => {
    const { add, calls } = await started(fixture());
    const r = await chain(add.s(1, 2), add.s(10), add.si(100, 200)).delay();
    expect(await r.get({ timeout: 5 })).toBe(300);
    expect(calls.map((c) => c.args)).toEqual([
      [1, 2],
      [3, 10],
      [100, 200],
    ]);
    // One workflow: the first step is the root of every step, each step the parent of the next.
    const [first, second, third] = calls;
    expect([first?.rootId, second?.rootId, third?.rootId]).toEqual([
      first?.id,
      first?.id,
      first?.id,
    ]);
    expect([first?.parentId, second?.parentId, third?.parentId]).toEqual([
      null,
      first?.id,
      second?.id,
    ]);
    expect(third?.id).toBe(r.id);
  });

  it("pipe like Celery's |, and take partial arguments when sent", async () => {
    const { add } = await started(fixture());
    const r = await add.s(5).pipe(add.s(1)).delay(10);
    expect(await r.get({ timeout: 5 })).toBe(16);
  });

  it("fail the rest of the chain when a step fails, so the chain's result does not wait forever", async () => {
    const { add, fail, calls } = await started(fixture());
    const r = await chain(add.s(1, 2), fail.si("broken"), add.s(1), add.s(1)).delay();
    const error = await failure(r.get({ timeout: 5 }));
    expect(error).toBeInstanceOf(RemoteTaskError);
    expect(error.message).toBe("broken");
    expect(calls.map((c) => c.task)).toEqual(["c.add", "c.fail"]);
  });

  it("upgrade a group followed by a task into a chord", async () => {
    const { add, tsum } = await started(fixture());
    const r = await chain(add.s(1, 2), group([add.s(1), add.s(2)]), tsum.s(), add.s(5)).delay();
    // add(1, 2) = 3; [3 + 1, 3 + 2] = [4, 5]; tsum = 9; + 5
    expect(await r.get({ timeout: 5 })).toBe(14);
  });
});

describe("groups", () => {
  it("give every member's result in order, and their states", async () => {
    const { wait, fail } = await started(fixture());
    const g = await group([wait.s(60, 1), wait.s(1, 2), wait.s(30, 3)]).delay();
    expect(await g.get({ timeout: 5 })).toEqual([1, 2, 3]);
    expect(await g.completedCount()).toBe(3);
    expect(await g.ready()).toBe(true);
    expect(await g.successful()).toBe(true);
    expect(await g.failed()).toBe(false);
    expect(g.results.map((r) => r.id)).toHaveLength(3);

    const bad = await group([wait.s(1, 1), fail.s("no")]).delay();
    expect((await failure(bad.join({ timeout: 5 }))).message).toBe("no");
    const values = await bad.join({ timeout: 5, propagate: false });
    expect(values[0]).toBe(1);
    expect(values[1]).toBeInstanceOf(RemoteTaskError);
    expect(await bad.failed()).toBe(true);
    expect(await bad.completedCount()).toBe(1);
  });

  it("are saved and restored by id", async () => {
    const { app, add } = await started(fixture());
    const g = await group([add.s(1, 1), add.s(2, 2)]).delay();
    await g.save();
    const restored = await GroupResult.restore<[number, number]>(g.id, app);
    expect(restored?.results.map((r) => r.id)).toEqual(g.results.map((r) => r.id));
    expect(await restored?.get({ timeout: 5 })).toEqual([2, 4]);
    await g.delete();
    expect(await GroupResult.restore(g.id, app)).toBeNull();
  });

  it("prepend partial arguments to every member", async () => {
    const { add } = await started(fixture());
    const g = await group([add.s(1), add.s(2)]).delay(10);
    expect(await g.get({ timeout: 5 })).toEqual([11, 12]);
  });
});

describe("chords", () => {
  it("call the callback once, with the header's results in header order", async () => {
    const { wait, tsum, record, calls } = await started(fixture());
    const r = await chord([wait.s(50, 1), wait.s(1, 2), wait.s(25, 3)], record.s()).delay();
    expect(await r.get({ timeout: 5 })).toEqual([[1, 2, 3]]);
    expect(calls.filter((c) => c.task === "c.record")).toHaveLength(1);
    const summed = await chord([wait.s(5, 4), wait.s(1, 5)], tsum.s()).delay();
    expect(await summed.get({ timeout: 5 })).toBe(9);
  });

  it("never call the callback when a header task fails: it fails with ChordError and its errbacks run", async () => {
    const { add, fail, tsum, record, calls } = await started(fixture());
    const r = await chord(
      [add.s(1, 1), fail.s("header broke")],
      tsum.s().linkError(record.s("errback")),
    ).delay();
    const error = await failure(r.get({ timeout: 5 }));
    expect(error).toBeInstanceOf(ChordError);
    expect(error.message).toMatch(/^Dependency [0-9a-f-]{36} raised Error\('header broke'\)$/);
    await running!.drain();
    expect(calls.some((c) => c.task === "c.tsum")).toBe(false);
    expect(calls.find((c) => c.task === "c.record")?.args).toEqual([r.id, "errback"]);
  });

  it("accept a chain as callback, and chunks as header", async () => {
    const { add, tsum, record } = await started(fixture());
    const r = await chord([add.s(1, 1), add.s(2, 2)], tsum.s().pipe(add.s(100))).delay();
    expect(await r.get({ timeout: 5 })).toBe(106);
    const c = await chord(
      chunks(
        add,
        [
          [1, 1],
          [2, 2],
          [3, 3],
        ],
        2,
      ),
      record.s(),
    ).delay();
    expect(await c.get({ timeout: 5 })).toEqual([[[2, 4], [6]]]);
  });

  it("count a chain in the header once, when its last step is done", async () => {
    const { add, tsum } = await started(fixture());
    const r = await chord([add.s(2, 2), chain(add.s(1, 1), add.s(10))], tsum.s()).delay();
    expect(await r.get({ timeout: 5 })).toBe(16);
  });

  it("call the callback with [] when the header is empty", async () => {
    const { record } = await started(fixture());
    const r = await chord([], record.s()).delay();
    expect(await r.get({ timeout: 5 })).toEqual([[]]);
  });

  it("need a result backend with a chord counter, and send nothing otherwise", async () => {
    const { app, add, tsum } = fixture();
    const broker = new MemoryBroker(`memory://no-chords-${Math.random()}`);
    const plain = new MemoryBackend(`memory://no-chords-${Math.random()}`);
    const noCounter = Object.assign(Object.create(plain) as MemoryBackend, {
      capabilities: { notifies: true, distributed: false, chords: false },
    });
    app.configure({ broker, resultBackend: noCounter, defaultQueue: "q" });
    const error = (await failure(chord([add.s(1, 1)], tsum.s()).delay())) as CeleriacError;
    expect(error.code).toBe("CHORDS_UNSUPPORTED");
    expect(error.message).toContain("does not support chords");
    expect((await broker.inspectQueue("q"))?.messages ?? 0).toBe(0);
    await app.close();

    const { app: bare, add: add2, tsum: tsum2 } = fixture();
    bare.configure({ broker: new MemoryBroker("memory://no-backend"), resultBackend: null });
    const noBackend = (await failure(chord([add2.s(1, 1)], tsum2.s()).delay())) as CeleriacError;
    expect(noBackend.code).toBe("NO_BACKEND");
    await bare.close();
  });
});

describe("links", () => {
  it("send callbacks with the result, and errbacks with the failed task's id", async () => {
    const { add, fail, record, calls } = await started(fixture());
    const ok = await add.s(1, 2).link(record.s("linked")).delay();
    const bad = await fail.s("x").linkError(record.s("failed")).delay();
    await ok.get({ timeout: 5 });
    await failure(bad.get({ timeout: 5 }));
    await running!.drain();
    const recorded = calls.filter((c) => c.task === "c.record").map((c) => c.args);
    expect(recorded).toContainEqual([3, "linked"]);
    expect(recorded).toContainEqual([bad.id, "failed"]);
  });

  it("take links and errbacks as send options too", async () => {
    const { add, fail, record, calls } = await started(fixture());
    await add.applyAsync([2, 2], { link: record.s() });
    await fail.applyAsync(["y"], { linkError: record.si("err") });
    await running!.drain();
    const recorded = calls.filter((c) => c.task === "c.record").map((c) => c.args);
    expect(recorded).toContainEqual([4]);
    expect(recorded).toContainEqual(["err"]);
  });
});

describe("tasks that ignore their results", () => {
  /** Celery's trace.py / Request.store_errors: an ignore_result task's errors are stored only with store_errors_even_if_ignored. */
  function quiet(options: { storeErrorsEvenIfIgnored?: boolean } = {}) {
    const f = fixture();
    const boom = f.app.task(
      "c.quietFail",
      (_ctx, message: string): number => {
        throw new Error(message);
      },
      { ignoreResult: true, ...options },
    );
    const again = f.app.task(
      "c.quietRetry",
      (ctx) => {
        if (ctx.retries === 0) ctx.retry({ countdown: 0, error: new Error("again") });
        return "done";
      },
      { ignoreResult: true, ...options },
    );
    const never = f.app.task("c.quietNever", () => "ran", { ignoreResult: true, ...options });
    return { ...f, boom, again, never };
  }

  it("store no FAILURE, RETRY or REVOKED, yet still send errbacks and count towards chords", async () => {
    const { app, boom, again, never, add, tsum, record, calls } = await started(quiet());
    const failed = await boom.s("x").linkError(record.s("errback")).delay();
    const retried = await again.delay();
    const expired = await never.applyAsync([], { expires: new Date(Date.now() - 1000) });
    const revokedId = crypto.randomUUID();
    running!.worker.revoke([revokedId]);
    const revoked = await never.applyAsync([], { taskId: revokedId });
    const inChain = await chain(boom.si("chain step"), add.s(1)).delay();
    const inChord = await chord([add.s(1, 1), boom.s("header")], tsum.s()).delay();
    // The chord still counts the failed header task: its callback fails instead of waiting forever.
    expect(await failure(inChord.get({ timeout: 5 }))).toBeInstanceOf(ChordError);
    await running!.drain();
    expect(calls.find((c) => c.task === "c.record")?.args).toEqual([failed.id, "errback"]);
    for (const r of [failed, retried, expired, revoked, inChain])
      expect([r.id, await r.state()]).toEqual([r.id, "PENDING"]);
    // A message's own ignore_result does not hide errors: only the task's option does (as Celery).
    const loud = await app.sendTask("c.fail", ["loud"], {}, { ignoreResult: true });
    expect(await failure(loud.get({ timeout: 5 }))).toBeInstanceOf(RemoteTaskError);
  });

  it("store them with storeErrorsEvenIfIgnored, and nothing on success", async () => {
    const { boom, again, never } = await started(quiet({ storeErrorsEvenIfIgnored: true }));
    const failed = await boom.delay("kept");
    expect((await failure(failed.get({ timeout: 5 }))).message).toBe("kept");
    const expired = await never.applyAsync([], { expires: new Date(Date.now() - 1000) });
    expect((await failure(expired.get({ timeout: 5 }))).message).toBe("expired");
    const retried = await again.delay();
    await running!.drain();
    // RETRY was stored by the first run; the successful second run stores nothing over it.
    expect(await retried.state()).toBe("RETRY");
  });

  it("refuse a storeErrorsEvenIfIgnored that is not a boolean", () => {
    const app = createApp();
    expect(() =>
      app.task("c.bad", () => 1, { storeErrorsEvenIfIgnored: "yes" as unknown as boolean }),
    ).toThrow(/storeErrorsEvenIfIgnored/);
  });
});

describe("chunks", () => {
  it("cut argument tuples into celery.starmap tasks, each calling the task per tuple", async () => {
    const { add, calls } = await started(fixture());
    const r = await add
      .chunks(
        Array.from({ length: 5 }, (_, i) => [i, i] as [number, number]),
        2,
      )
      .delay();
    expect(await r.get({ timeout: 5 })).toEqual([[0, 2], [4, 6], [8]]);
    expect(r.results).toHaveLength(3);
    expect(calls.filter((c) => c.task === "c.add")).toHaveLength(5);
  });

  it("refuse a chunk size that is not a positive integer", () => {
    const { add } = fixture();
    expect(() => chunks(add, [[1, 1]], 0)).toThrow(/positive chunk size/);
  });
});

describe("signatures by name and from dicts", () => {
  it("run a chain Python built, read from its dict", async () => {
    const { app } = await started(fixture());
    // `chain(add.s(1, 2), group(add.s(1), add.s(2)), tsum.s())` as Celery 5.2 embeds it.
    const sig = (task: string, args: unknown[]) => ({
      task,
      args,
      kwargs: {},
      options: {},
      subtask_type: null,
      immutable: false,
    });
    const dict = {
      task: "celery.chain",
      args: [],
      kwargs: {
        tasks: [
          sig("c.add", [1, 2]),
          {
            task: "celery.chord",
            args: [],
            kwargs: {
              kwargs: {},
              header: {
                task: "celery.group",
                args: [],
                kwargs: { tasks: [sig("c.add", [1]), sig("c.add", [2])] },
                options: {},
                subtask_type: "group",
                immutable: false,
              },
              body: sig("c.tsum", []),
            },
            options: {},
            subtask_type: "chord",
            immutable: false,
          },
        ],
      },
      options: {},
      subtask_type: "chain",
      immutable: false,
    };
    const r = await signatureFromDict(app, dict).delay();
    expect(await (r as { get(o: object): Promise<unknown> }).get({ timeout: 5 })).toBe(9);
  });

  it("send any task by name with app.signature", async () => {
    const f = await started(fixture());
    const r = await chain(f.add.s(1, 1), f.app.signature("c.add", [40])).delay();
    expect(await r.get({ timeout: 5 })).toBe(42);
  });
});

describe("what follows a stored result", () => {
  it("counts a chord part even when the header task's link cannot be sent", async () => {
    const { app, add, tsum, calls } = await started(fixture());
    // c.strict refuses the number it would be given: the link fails in the worker that sends it.
    const r = await chord(
      [add.s(1, 1).link(app.signature("c.strict")), add.s(2, 2)],
      tsum.s(),
    ).delay();
    expect(await r.get({ timeout: 5 })).toBe(6);
    await running!.drain();
    expect(calls.filter((c) => c.task === "c.add")).toHaveLength(2);
  });

  it("never requeues a late-acked task once its result is stored: the rest of the chain fails", async () => {
    const f = fixture();
    const { logger, records } = captured();
    const { app, lateAdd, record, calls } = await started(f, { logger });
    const r = await chain(
      lateAdd.s(1, 2),
      app.signature("c.strict"),
      app.signature<number>("c.add", [1]),
    )
      .linkError(record.s("chain failed"))
      .delay();
    const error = (await failure(r.get({ timeout: 5 }))) as RemoteTaskError;
    expect(error).toBeInstanceOf(RemoteTaskError);
    expect(error.message).toContain("c.strict");
    await running!.drain();
    const ran = calls.filter((c) => c.task === "c.lateAdd");
    expect(ran).toHaveLength(1);
    expect(await (await metaOf(app, ran[0]!.id))?.status).toBe("SUCCESS");
    // The errbacks are sent, with the id of the task whose followers failed (Celery's
    // mark_as_failure(request=...) of the task that could not send them).
    expect(calls.find((c) => c.task === "c.record")?.args).toEqual([ran[0]!.id, "chain failed"]);
    expect(calls.some((c) => c.task === "c.add" || c.task === "c.strict")).toBe(false);
    expect(
      records.find((l) => l.level === 50 && /could not send/.test(String(l.msg))),
    ).toMatchObject({ taskId: ran[0]!.id });
  });

  it("fails the rest of the chain of an early-acked task whose next step cannot be sent", async () => {
    const { app, add, calls } = await started(fixture());
    const r = await chain(
      add.s(1, 2),
      app.signature("c.strict"),
      app.signature<number>("c.add", [1]),
    ).delay();
    expect((await failure(r.get({ timeout: 5 }))).message).toContain("c.strict");
    await running!.drain();
    expect(calls.map((c) => c.task)).toEqual(["c.add"]);
  });
});

describe("a task abandoned at shutdown after its ack", () => {
  it("fails as Celery's mark_as_failure(request=...) does: chord counted, chain failed, errbacks sent", async () => {
    const f = fixture();
    const hang = f.app.task("c.hang", () => new Promise<number>(() => {}));
    const { app, add, tsum, record } = await started(f, { shutdownTimeout: 0.05 });
    const inChord = await chord([hang.s(), add.s(1, 1)], tsum.s()).delay();
    const inChain = await chain(hang.s(), add.s(1)).linkError(record.s("lost")).delay();
    const worker = running!.worker;
    await new Promise((r) => setTimeout(r, 100));
    const lost = [...worker.active.values()].map((a) => a.request);
    expect(lost.map((q) => q.name)).toEqual(["c.hang", "c.hang"]);
    await worker.stop();
    // The chord's callback is failed, not left waiting for a header task that will never end.
    const chordError = await failure(inChord.get({ timeout: 2 }));
    expect(chordError).toBeInstanceOf(ChordError);
    expect(chordError.message).toMatch(/raised WorkerLostError/);
    // The chain's last step is failed with the same error.
    expect((await failure(inChain.get({ timeout: 2 }))).name).toBe("WorkerLostError");
    // The lost tasks' own meta keeps their group and parent, as every other failure does.
    const header = lost.find((q) => q.headers.group)!;
    expect(await metaOf(app, header.id)).toMatchObject({
      status: "FAILURE",
      group_id: header.headers.group,
    });
    // The chain's errback was sent (no worker is left to run it: it waits in the queue).
    const { broker } = await app.connect();
    expect((await broker.inspectQueue("celery"))?.messages).toBeGreaterThanOrEqual(1);
  });
});

describe("chords whose header holds groups", () => {
  it("give the callback a chain-ending-in-a-group member's results nested, as Celery does", async () => {
    const { app, add, record } = await started(fixture());
    // Celery 5.2.6 saves such a header (RedisBackend.apply_chord) and joins it when the chord
    // completes: chord([add.s(1, 1), add.s(1, 1) | group(add.s(1), add.s(2))], echo.s())
    // gives the callback [2, [3, 4]].
    const r = await chord(
      [add.s(1, 1), chain(add.s(1, 1), group([add.s(1), add.s(2)]))],
      record.s(),
    ).delay();
    expect(await r.get({ timeout: 5 })).toEqual([[2, [3, 4]]]);
    await running!.drain();
    // The saved header is deleted once the callback is sent.
    const backend = (await app.connect()).backend!;
    const callback = await metaOf(app, r.id);
    const gid = (await metaOf(app, (await backend.get(r.id))!.parent_id as string))?.group_id;
    expect(callback?.status).toBe("SUCCESS");
    expect(gid).toBeTruthy();
    expect(await backend.restoreGroup!(gid as string)).toBeNull();
  });

  it("unroll nested groups in Celery's order (_freeze_unroll's extendleft)", async () => {
    const { add, record } = await started(fixture());
    // What Celery 5.2.6 gives for the same canvases (Python worker, see the interop suite).
    const r = await chord(
      [add.s(1, 1), group([add.s(2, 2), add.s(3, 3)]), add.s(4, 4)],
      record.s(),
    ).delay();
    expect(await r.get({ timeout: 5 })).toEqual([[2, 6, 4, 8]]);
    const deeper = await chord(
      [
        add.s(1, 1),
        group([add.s(2, 2), group([add.s(3, 3), add.s(5, 5)]), add.s(6, 6)]),
        add.s(4, 4),
      ],
      record.s(),
    ).delay();
    expect(await deeper.get({ timeout: 5 })).toEqual([[2, 12, 10, 6, 4, 8]]);
    const inChain = await chain(
      add.s(1, 1),
      group([add.s(1), group([add.s(2), add.s(3)]), add.s(4)]),
    ).delay();
    expect(await inChain.get({ timeout: 5 })).toEqual([3, 5, 4, 6]);
    // A group sent on its own keeps its order, as in Celery (it is not frozen first).
    const plain = await group([
      add.s(1, 1),
      group([add.s(2, 2), add.s(3, 3)]),
      add.s(4, 4),
    ]).delay();
    expect(await plain.get({ timeout: 5 })).toEqual([2, 4, 6, 8]);
  });
});

describe("a chord that fails", () => {
  it("clears its bookkeeping, fails each member of a group callback, and survives an errback that cannot be sent", async () => {
    const f = fixture();
    const { logger, records } = captured();
    const { app, add, fail, record, calls } = await started(f, { logger });
    const r = (await chord(
      [add.s(1, 1), fail.s("header broke")],
      group([record.s("a"), record.s("b")]),
    ).delay()) as unknown as GroupResult<unknown[]>;
    const error = await failure(r.get({ timeout: 5 }));
    expect(error).toBeInstanceOf(ChordError);
    for (const member of r.results)
      expect(await member.state(), `member ${member.id}`).toBe("FAILURE");
    await running!.drain();
    const failed = calls.find((c) => c.task === "c.fail")!;
    const backend = (await app.connect()).backend!;
    const gid = (await metaOf(app, failed.id))?.group_id as string;
    expect(gid).toBeTruthy();
    expect(await backend.chordParts!(gid)).toEqual([]);

    // An errback the worker cannot send (c.strict refuses a task id): logged, and the callback
    // is still stored as failed instead of the header task being requeued.
    const withBadErrback = await chord(
      [add.s(1, 1), fail.s("again")],
      record.s().linkError(app.signature("c.strict", [1, 2])),
    ).delay();
    expect(await failure(withBadErrback.get({ timeout: 5 }))).toBeInstanceOf(ChordError);
    await running!.drain();
    expect(records.some((l) => l.level === 50 && /errback/.test(String(l.msg)))).toBe(true);
  });
});
