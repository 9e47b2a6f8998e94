/** The example `stats.album` (examples/tasks.ts): one album at a time, other albums meanwhile. */
import { describe, expect, it } from "vitest";
import { albumStats, app } from "../../examples/tasks.js";
import { startTestWorker } from "../../sdk/src/testing/index.js";

describe("the stats.album example", () => {
  it("computes one album once at a time and other albums meanwhile", async () => {
    const { stop } = await startTestWorker(app, { concurrency: 4 });
    try {
      const sent = await Promise.all([
        albumStats.delay("a1"),
        albumStats.delay("a1"),
        albumStats.delay("a2"),
      ]);
      const [x, y, other] = await Promise.all(sent.map((r) => r.get({ timeout: 10 })));
      const [first, second] = [x!, y!].sort((a, b) => a.startedAt - b.startedAt);
      expect(second!.startedAt).toBeGreaterThanOrEqual(first!.finishedAt);
      expect(other!.startedAt).toBeLessThan(first!.finishedAt);
      expect(other!.finishedAt).toBeGreaterThan(first!.startedAt);
    } finally {
      await stop();
    }
  });
});
