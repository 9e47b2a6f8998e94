/**
 * Shipped logs travel on Celery's event exchange, so Python's event receiver sees them: it must
 * take them in stride (array bodies) and its `events.State`, which Flower is built on, must ignore
 * them rather than invent a task or a worker from them.
 */
import { beforeAll, describe, expect, it } from "vitest";
import { createApp, createWorker } from "../../sdk/src/index.js";
import { py, requirePythonCelery } from "../helpers/python.js";
import {
  AMQP_URL,
  redisUrl,
  requireRabbitMQ,
  requireRedis,
  uniqueName,
} from "../helpers/services.js";

interface Captured {
  events: Array<Record<string, unknown>>;
  workers: Record<string, unknown>;
  tasks: Record<string, unknown>;
}

const brokers = [
  { name: "Redis", url: redisUrl(2), require: requireRedis },
  { name: "RabbitMQ", url: AMQP_URL, require: requireRabbitMQ },
];

describe("shipped logs seen by Python Celery", () => {
  beforeAll(async () => {
    await requirePythonCelery();
    await requireRedis();
  });

  for (const broker of brokers) {
    it(`are received and ignored by Celery's events.State on ${broker.name}`, async () => {
      await broker.require();
      const queue = uniqueName("logs-py");
      const hostname = `${queue}@test`;
      const app = createApp({
        broker: broker.url,
        resultBackend: redisUrl(2),
        defaultQueue: queue,
      });
      const album = app.task(uniqueName("stats.album"), (ctx, albumId: string) => {
        ctx.logger.info({ albumId }, "computing album statistics");
        return albumId;
      });
      const capture = py<Captured>(
        { broker: broker.url, backend: redisUrl(2) },
        { op: "events", seconds: 6 },
      );
      // Python's receiver needs a moment to start listening.
      await new Promise((r) => setTimeout(r, 2500));
      const worker = await createWorker(app, {
        hostname,
        logLevel: "silent",
        shipLogs: true,
        withoutHeartbeat: true,
        control: false,
      });
      await worker.start();
      const result = await album.delay("a1");
      await result.get({ timeout: 10 });
      const seen = await capture;
      await worker.stop();
      await app.close();

      const ours = seen.events.filter((e) => e.hostname === hostname);
      expect(ours.length).toBeGreaterThan(0);
      expect(ours.every((e) => e.type === "celeriac-log")).toBe(true);
      expect(ours).toContainEqual(
        expect.objectContaining({ uuid: result.id, msg: "computing album statistics" }),
      );
      expect(Object.keys(seen.workers)).not.toContain(hostname);
      expect(Object.keys(seen.tasks)).not.toContain(result.id);
    }, 30_000);
  }
});
