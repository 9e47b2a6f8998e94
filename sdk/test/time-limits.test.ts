import { afterEach, describe, expect, it } from "vitest";
import { createApp, SoftTimeLimitExceeded, TimeLimitExceeded } from "../src/index.js";
import { applyTask, startTestWorker, type TestWorker } from "../src/testing/index.js";

let running: TestWorker | undefined;
afterEach(async () => {
  await running?.stop();
  running = undefined;
});

const sleep = (ms: number, signal?: AbortSignal) =>
  new Promise<void>((resolve) => {
    const timer = setTimeout(resolve, ms);
    signal?.addEventListener(
      "abort",
      () => {
        clearTimeout(timer);
        resolve();
      },
      { once: true },
    );
  });

describe("time limits in the async pool", () => {
  it("aborts the signal at the soft limit and lets the task end its own way", async () => {
    const app = createApp();
    const task = app.task(
      "t.soft",
      async (ctx) => {
        await sleep(5000, ctx.signal);
        return ctx.signal.reason instanceof SoftTimeLimitExceeded ? "cleaned up" : "ran out";
      },
      { softTimeLimit: 0.1 },
    );
    expect(await applyTask(task, [])).toMatchObject({ kind: "success", result: "cleaned up" });
  });

  it("still stops a task at the hard limit when it carries on after its soft limit", async () => {
    const app = createApp();
    const task = app.task(
      "t.stubborn",
      async (ctx) => {
        await sleep(5000, ctx.signal); // soft limit: woken early…
        await sleep(5000); // …then ignores it
        return "never";
      },
      { softTimeLimit: 0.1, timeLimit: 0.3 },
    );
    const started = performance.now();
    const outcome = await applyTask(task, []);
    expect(outcome.kind).toBe("failure");
    expect((outcome as { error: unknown }).error).toBeInstanceOf(TimeLimitExceeded);
    expect(performance.now() - started).toBeLessThan(2000);
  });

  it("terminates a task on revoke after its soft limit fired", async () => {
    const app = createApp();
    const task = app.task(
      "t.revoked-late",
      async (ctx) => {
        await sleep(5000, ctx.signal);
        await sleep(5000);
      },
      { softTimeLimit: 0.05 },
    );
    running = await startTestWorker(app);
    const result = await task.delay();
    await sleep(300);
    running.worker.revoke([result.id], { terminate: true, signum: 15 });
    await expect(result.get({ timeout: 2 })).rejects.toMatchObject({ name: "TaskRevokedError" });
  });

  it("stops waiting for a hook that outlives the hard limit, and frees the slot", async () => {
    const app = createApp();
    const task = app.task("t.stuck-hook", () => "done", {
      timeLimit: 0.3,
      afterReturn: () => new Promise<void>(() => {}),
    });
    running = await startTestWorker(app, { concurrency: 1 });
    const first = await task.delay();
    // Stored before the hooks run, so the result is there while the hook hangs.
    expect(await first.get({ timeout: 2 })).toBe("done");
    const started = performance.now();
    await running.drain({ timeout: 3000 });
    expect(performance.now() - started).toBeLessThan(2000);
    expect(running.worker.active.size).toBe(0);
  });
});
