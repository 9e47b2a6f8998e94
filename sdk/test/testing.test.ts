import { describe, expect, it } from "vitest";
import { createApp } from "../src/index.js";
import { applyTask, startTestWorker } from "../src/testing/index.js";

describe("@celeriac/sdk/testing", () => {
  it("runs a user's tasks on a private memory broker and drains", async () => {
    const app = createApp();
    const seen: number[] = [];
    const record = app.task("t.record", (_ctx, n: number) => {
      seen.push(n);
      return n;
    });
    const chained = app.task("t.fanout", async (_ctx, n: number) => {
      for (let i = 0; i < n; i++) await record.delay(i);
    });
    const { drain, stop } = await startTestWorker(app);
    await chained.delay(5);
    await drain();
    expect(seen.sort()).toEqual([0, 1, 2, 3, 4]);
    await stop();
  });

  it("applies a handler in-process and reports its outcome", async () => {
    const app = createApp({ broker: "memory://apply" });
    const div = app.task("t.div", (ctx, a: number, b: number) => {
      if (b === 0) ctx.retry({ countdown: 5, error: new RangeError("division by zero") });
      return a / b;
    });
    expect(await applyTask(div, [6, 3])).toMatchObject({ kind: "success", result: 2 });
    const retry = await applyTask(div, [1, 0]);
    expect(retry.kind).toBe("retry");
    const last = await applyTask(div, [1, 0], { retries: 3 });
    expect(last).toMatchObject({ kind: "failure" });
    expect(last.kind === "failure" && (last.error as Error).name).toBe("RangeError");
  });
});
