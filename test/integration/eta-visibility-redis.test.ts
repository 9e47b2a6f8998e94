/**
 * An ETA task held by a worker longer than Redis's visibility timeout runs once: the worker keeps
 * the held message's visibility fresh, so no other worker's restore hands it out again (a known
 * Celery-on-Redis double run).
 */
import { pino } from "pino";
import { beforeAll, describe, expect, it } from "vitest";
import { createApp, createWorker } from "../../sdk/src/index.js";
import { redisUrl, requireRedis, uniqueName } from "../helpers/services.js";

describe("ETA tasks and the visibility timeout on Redis", () => {
  beforeAll(requireRedis);

  it("runs a task held past the visibility timeout exactly once", async () => {
    const queue = uniqueName("eta");
    // Not database 13: the fault suites there kill every worker connection and restore its unacked.
    const broker = `${redisUrl(15)}?visibility_timeout=2&restore_interval=0.5`;
    const runs: string[] = [];
    const apps = [0, 1].map((i) => {
      const app = createApp({ broker, resultBackend: redisUrl(15), defaultQueue: queue });
      app.task("eta.once", () => void runs.push(`worker${i}`));
      return app;
    });
    const workers = await Promise.all(
      apps.map((app, i) =>
        createWorker(app, {
          concurrency: 2,
          hostname: `eta${i}@test`,
          logger: pino({ level: "silent" }),
          control: false,
        }),
      ),
    );
    await Promise.all(workers.map((w) => w.start()));
    try {
      const r = await apps[0]!.sendTask("eta.once", [], {}, { countdown: 6 });
      await r.get({ timeout: 15 });
      // Well past a restore that would have handed the message out again.
      await new Promise((res) => setTimeout(res, 2500));
      expect(runs).toHaveLength(1);
    } finally {
      await Promise.all(workers.map((w) => w.stop({ force: true })));
      await Promise.all(apps.map((a) => a.close()));
    }
  }, 30_000);
});
