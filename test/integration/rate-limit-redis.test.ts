/**
 * A fleet-wide rate limit: two workers share one Redis token bucket, so together they start no
 * more than the limit (the figure: 100 tasks at "20/s", about 5 s, whoever runs them),
 * and a change broadcast at run time applies to the whole fleet, tasks already waiting included.
 */
import { pino } from "pino";
import { beforeAll, describe, expect, it } from "vitest";
import { createApp, createWorker } from "../../sdk/src/index.js";
import { redisUrl, requireRedis, uniqueName } from "../helpers/services.js";

/** Two workers of one task type with a fleet-wide limit, and the start time of every run. */
async function fleet(globalRateLimit: string | null, control = false) {
  const queue = uniqueName("rate");
  const task = uniqueName("t.rate");
  const starts: number[] = [];
  const apps = [0, 1].map(() => {
    const app = createApp({
      broker: redisUrl(9),
      resultBackend: redisUrl(9),
      defaultQueue: queue,
    });
    app.task(task, () => void starts.push(Date.now()), { globalRateLimit, ignoreResult: true });
    return app;
  });
  const workers = await Promise.all(
    apps.map((app, i) =>
      createWorker(app, {
        concurrency: 4,
        hostname: `${queue}-${i}@test`,
        logger: pino({ level: "silent" }),
        control,
      }),
    ),
  );
  await Promise.all(workers.map((w) => w.start()));
  return {
    task,
    starts,
    apps,
    workers,
    async close() {
      await Promise.all(workers.map((w) => w.stop()));
      await Promise.all(apps.map((a) => a.close()));
    },
  };
}

/** Starts per second over a stretch of runs: (runs - 1) / (last start - first start). */
const rateOf = (starts: number[]) =>
  (starts.length - 1) / ((Math.max(...starts) - Math.min(...starts)) / 1000);

async function until(done: () => boolean, ms: number) {
  const deadline = Date.now() + ms;
  while (!done() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 25));
}

describe("global rate limit on Redis", () => {
  beforeAll(requireRedis);

  it("holds two workers together to 20/s", async () => {
    const { task, starts, apps, workers, close } = await fleet("20/s");
    const n = 100;
    for (let i = 0; i < n; i++) await apps[0]!.sendTask(task);
    await until(() => starts.length >= n, 20_000);
    await close();
    expect(starts).toHaveLength(n);
    const rate = rateOf(starts);
    expect(rate).toBeGreaterThan(20 * 0.85);
    expect(rate).toBeLessThan(20 * 1.15);
    expect(workers.every((w) => w.processedTotal() > 0)).toBe(true);
  }, 30_000);

  it("changes the fleet's limit at run time, for the tasks already waiting too", async () => {
    const { task, starts, apps, workers, close } = await fleet("5/s", true);
    const [app] = apps;
    const n = 80;
    // Both workers answer: return with their replies rather than after the whole timeout.
    const everyWorker = { global: true, reply: true, timeout: 2, limit: 2 };
    try {
      for (let i = 0; i < n; i++) await app!.sendTask(task);
      await until(() => starts.length >= 5, 5000);
      // What the workers hold for a token is what they have reserved.
      const reserved = (await app!.control.inspect("reserved", { timeout: 1 })).flatMap((r) =>
        Object.values(r).flat(),
      );
      expect(reserved.length).toBeGreaterThan(0);

      const replies = await app!.control.rateLimit(task, "40/s", everyWorker);
      expect(replies.map((r) => Object.values(r)[0])).toEqual([
        { ok: "new rate limit set successfully" },
        { ok: "new rate limit set successfully" },
      ]);
      const raisedAt = Date.now();
      await until(() => starts.filter((t) => t > raisedAt).length >= 30, 10_000);
      const faster = starts.filter((t) => t > raisedAt).slice(0, 30);
      expect(faster).toHaveLength(30);
      expect(rateOf(faster)).toBeGreaterThan(40 * 0.8);
      expect(rateOf(faster)).toBeLessThan(40 * 1.15);

      // Slowed down, then removed: every task still waiting runs at once.
      await app!.control.rateLimit(task, "1/s", everyWorker);
      await new Promise((r) => setTimeout(r, 1500));
      const waiting = n - starts.length;
      expect(waiting).toBeGreaterThan(20);
      await app!.control.rateLimit(task, null, everyWorker);
      const removedAt = Date.now();
      await until(() => starts.length >= n, 5000);
      expect(starts).toHaveLength(n);
      expect(Math.max(...starts) - removedAt).toBeLessThan(1000);
      expect(workers.every((w) => w.processedTotal() > 0)).toBe(true);
    } finally {
      await close();
    }
  }, 40_000);
});
