import { describe, expect, it } from "vitest";
import { createApp } from "../src/index.js";
import { startTestWorker } from "../src/testing/index.js";
import { parseRate, TokenBucket } from "../src/worker/rate-limit.js";

/** Tasks started per second, from the first start to the last. */
const rateOf = (starts: number[]) =>
  (starts.length - 1) / ((Math.max(...starts) - Math.min(...starts)) / 1000);

describe("rate limits", () => {
  it("parses Celery's rate strings", () => {
    expect(parseRate("10/s")).toBe(10);
    expect(parseRate("120/m")).toBe(2);
    expect(parseRate("3600/h")).toBe(1);
    expect(parseRate("5")).toBe(5);
    expect(parseRate(null)).toBe(0);
    expect(() => parseRate("fast")).toThrow(/Invalid rate limit string/);
  });

  it("refills a one-token bucket at the rate", () => {
    const bucket = new TokenBucket(10, 1, 0);
    expect(bucket.take(0)).toBe(0);
    expect(bucket.take(0)).toBe(100);
    expect(bucket.take(50)).toBe(50);
    expect(bucket.take(100)).toBe(0);
  });

  it("holds a task type to its rate on one worker without holding up other types", async () => {
    const app = createApp();
    const limited: number[] = [];
    const free: number[] = [];
    const slow = app.task("t.limited", () => void limited.push(Date.now()), { rateLimit: "20/s" });
    const fast = app.task("t.free", () => void free.push(Date.now()));
    const { drain, stop } = await startTestWorker(app, { concurrency: 4 });
    const started = Date.now();
    for (let i = 0; i < 30; i++) await slow.delay();
    for (let i = 0; i < 30; i++) await fast.delay();
    await drain({ timeout: 10_000 });
    expect(limited).toHaveLength(30);
    const rate = rateOf(limited);
    expect(rate).toBeGreaterThan(20 * 0.85);
    expect(rate).toBeLessThan(20 * 1.15);
    // The free type was not queued behind the limited one.
    expect(Math.max(...free) - started).toBeLessThan(500);
    await stop();
  });

  it("changes a rate limit at run time", async () => {
    const app = createApp();
    const starts: number[] = [];
    const t = app.task("t.tuned", () => void starts.push(Date.now()), { rateLimit: "1/s" });
    const { worker, drain, stop } = await startTestWorker(app);
    worker.setRateLimit("t.tuned", "50/s");
    for (let i = 0; i < 20; i++) await t.delay();
    await drain();
    expect(rateOf(starts)).toBeGreaterThan(50 * 0.8);
    await stop();
  });
});
