import { Redis } from "ioredis";
import { pino } from "pino";
import { beforeAll, describe, expect, it } from "vitest";
import { createApp, createWorker } from "../../sdk/src/index.js";
import { redisUrl, requireRedis, uniqueName } from "../helpers/services.js";
import { workerSuite } from "./worker-suite.js";

workerSuite("Redis", { brokerUrl: redisUrl(7), backendUrl: redisUrl(8), setup: requireRedis });

describe("warm shutdown on Redis", () => {
  beforeAll(requireRedis);

  it("puts held messages back where kombu restores them, next to be consumed", async () => {
    const queue = uniqueName("restore");
    const app = createApp({ broker: redisUrl(7), resultBackend: redisUrl(8), defaultQueue: queue });
    let release!: () => void;
    const blocked = new Promise<void>((r) => {
      release = r;
    });
    app.task("t.block", () => blocked);
    app.task("t.later", () => 1);
    const sent = [
      // Held as an ETA task, then one that runs (and blocks the only slot), then waiting ones.
      await app.sendTask("t.later", [], {}, { countdown: 60 }),
      await app.sendTask("t.block"),
      ...(await Promise.all(Array.from({ length: 10 }, () => app.sendTask("t.later")))),
    ].map((r) => r.id);
    const worker = await createWorker(app, {
      concurrency: 1,
      prefetchMultiplier: 4,
      logger: pino({ level: "silent" }),
      control: false,
      withoutHeartbeat: true,
    });
    await worker.start();
    const redis = new Redis(redisUrl(7));
    try {
      const deadline = Date.now() + 5000;
      while (!worker.active.has(sent[1]!) && Date.now() < deadline)
        await new Promise((r) => setTimeout(r, 20));
      await new Promise((r) => setTimeout(r, 300));
      const holding = new Set([...worker.scheduled.keys(), ...worker.reserved].map((r) => r.id));
      const held = sent.filter((id) => holding.has(id));
      const unfetched = sent.slice(2).filter((id) => !holding.has(id));
      expect(held.length).toBeGreaterThan(1);
      expect(unfetched.length).toBeGreaterThan(0);
      const stopping = worker.stop();
      release();
      await stopping;
      const all = held.length + unfetched.length;
      while ((await redis.llen(queue)) < all && Date.now() < deadline + 5000)
        await new Promise((r) => setTimeout(r, 20));
      // BRPOP takes from the right: read the list in the order it will be consumed.
      const entries = (await redis.lrange(queue, 0, -1))
        .reverse()
        .map((raw) => JSON.parse(raw) as { headers: { id: string; redelivered?: boolean } });
      // kombu's restore_unacked RPUSHes each unacked message in delivery order, so the held ones
      // come first (the last delivered first), before those never fetched.
      expect(entries.map((e) => e.headers.id)).toEqual([...[...held].reverse(), ...unfetched]);
      expect(entries.map((e) => e.headers.redelivered ?? false)).toEqual([
        ...held.map(() => true),
        ...unfetched.map(() => false),
      ]);
      const unacked = (await redis.hvals("unacked")).map(
        (v) => (JSON.parse(v) as [{ headers: { id: string } }])[0].headers.id,
      );
      expect(unacked.filter((id) => sent.includes(id))).toEqual([]);
    } finally {
      release();
      await worker.stop({ force: true });
      await app.close();
      await redis.del(queue);
      redis.disconnect();
    }
  });
});
