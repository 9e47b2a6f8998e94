import { existsSync } from "node:fs";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { createApp, defineTask, type TaskContext } from "../src/index.js";
import { startTestWorker } from "../src/testing/index.js";

describe("middleware and hooks", () => {
  it("gives every task a temporary folder and always deletes it, whatever the outcome", async () => {
    const app = createApp();
    const folders: string[] = [];
    app.use(async (ctx, next) => {
      const dir = await mkdtemp(path.join(os.tmpdir(), `task-${ctx.id}-`));
      folders.push(dir);
      ctx.locals.dir = dir;
      try {
        return await next();
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
    });
    const write = app.task("t.write", async (ctx, fail: boolean) => {
      await writeFile(path.join(ctx.locals.dir as string, "out.txt"), "data");
      if (fail) throw new Error("failed after writing");
      return existsSync(path.join(ctx.locals.dir as string, "out.txt"));
    });
    const { stop } = await startTestWorker(app);
    expect(await (await write.delay(false)).get({ timeout: 5 })).toBe(true);
    await expect((await write.delay(true)).get({ timeout: 5 })).rejects.toThrow(
      "failed after writing",
    );
    expect(folders).toHaveLength(2);
    for (const dir of folders) expect(existsSync(dir)).toBe(false);
    await stop();
  });

  it("lets middleware see and change the outcome, outermost first", async () => {
    const app = createApp();
    const order: string[] = [];
    app.use(async (_ctx, next) => {
      order.push("outer in");
      const result = await next();
      order.push("outer out");
      return result;
    });
    app.use(async (_ctx, next) => {
      order.push("inner in");
      return ((await next()) as number) * 10;
    });
    const one = app.task("t.one", () => {
      order.push("handler");
      return 1;
    });
    const { stop } = await startTestWorker(app);
    expect(await (await one.delay()).get({ timeout: 5 })).toBe(10);
    expect(order).toEqual(["outer in", "inner in", "handler", "outer out"]);
    await stop();
  });

  it("runs per-task hooks, and a base task's hooks before the task's own", async () => {
    const app = createApp();
    const calls: string[] = [];
    const note = (what: string) => (ctx: TaskContext, value?: unknown) => {
      calls.push(`${what}:${ctx.name}:${value instanceof Error ? value.message : String(value)}`);
    };
    const base = app.base({
      maxRetries: 1,
      defaultRetryDelay: 0,
      onFailure: note("base-failure"),
      afterReturn: note("base-after"),
    });
    const ok = base.task("t.ok", () => 42, { onSuccess: note("success") });
    const bad = base.task("t.bad", (ctx) => ctx.retry({ error: new Error("nope"), countdown: 0 }), {
      onFailure: note("failure"),
      onRetry: note("retry"),
    });
    expect(app.registry.get("t.bad")?.options.maxRetries).toBe(1);
    const { stop, drain } = await startTestWorker(app);
    await (await ok.delay()).get({ timeout: 5 });
    await expect((await bad.delay()).get({ timeout: 5 })).rejects.toThrow("nope");
    await drain();
    expect(calls).toEqual([
      "success:t.ok:42",
      "base-after:t.ok:SUCCESS",
      "retry:t.bad:nope",
      "base-after:t.bad:RETRY",
      "base-failure:t.bad:nope",
      "failure:t.bad:nope",
      "base-after:t.bad:FAILURE",
    ]);
    await stop();
  });

  it("runs both a contract's hooks and those given to app.task, the contract's first", async () => {
    const app = createApp();
    const calls: string[] = [];
    const contract = defineTask<[], never>("t.contract", {
      maxRetries: 0,
      onFailure: () => void calls.push("contract-failure"),
      afterReturn: (_ctx, state) => void calls.push(`contract-after:${state}`),
    });
    const task = app.task(
      contract,
      () => {
        throw new Error("broken");
      },
      {
        onFailure: () => void calls.push("task-failure"),
        afterReturn: (_ctx, state) => void calls.push(`task-after:${state}`),
      },
    );
    expect(app.registry.get("t.contract")?.options.maxRetries).toBe(0);
    const { stop, drain } = await startTestWorker(app);
    await expect((await task.delay()).get({ timeout: 5 })).rejects.toThrow("broken");
    await drain();
    expect(calls).toEqual([
      "contract-failure",
      "task-failure",
      "contract-after:FAILURE",
      "task-after:FAILURE",
    ]);
    await stop();
  });

  it("calls the hooks once the task's state is stored, as Celery's tracer does", async () => {
    const app = createApp();
    const seen: string[] = [];
    const stored = (what: string) => async (ctx: TaskContext, state?: unknown) => {
      const now = await app.asyncResult(ctx.id).state();
      seen.push(`${what}${typeof state === "string" ? `(${state})` : ""}:${now}`);
    };
    const hooks = {
      onSuccess: stored("success"),
      onFailure: stored("failure"),
      onRetry: stored("retry"),
      afterReturn: stored("after"),
    };
    const ok = app.task("t.stored.ok", () => 1, hooks);
    const bad = app.task(
      "t.stored.bad",
      // The retry waits a little, so its run cannot store FAILURE before this run's hooks look.
      (ctx) => ctx.retry({ error: new Error("no"), countdown: 0.2 }),
      { ...hooks, maxRetries: 1 },
    );
    const { stop, drain } = await startTestWorker(app);
    await (await ok.delay()).get({ timeout: 5 });
    await expect((await bad.delay()).get({ timeout: 5 })).rejects.toThrow("no");
    await drain();
    expect(seen).toEqual([
      "success:SUCCESS",
      "after(SUCCESS):SUCCESS",
      "retry:RETRY",
      "after(RETRY):RETRY",
      "failure:FAILURE",
      "after(FAILURE):FAILURE",
    ]);
    await stop();
  });
});
