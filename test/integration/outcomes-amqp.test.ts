/**
 * Outcomes that need a real broker: a rejected message goes to the queue's dead-letter exchange
 * (RabbitMQ), and a requeued one comes back.
 */
import { pino } from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createApp, createWorker, Reject } from "../../sdk/src/index.js";
import {
  AMQP_URL,
  redisUrl,
  requireRabbitMQ,
  requireRedis,
  uniqueName,
} from "../helpers/services.js";

describe("Reject on RabbitMQ", () => {
  const queue = uniqueName("orders");
  const dlx = `${queue}.dlx`;
  const dead = `${queue}.dead`;
  const app = createApp({
    broker: AMQP_URL,
    resultBackend: redisUrl(8),
    defaultQueue: queue,
    queues: { [queue]: { deadLetterExchange: dlx, deadLetterRoutingKey: dead } },
  });
  let attempts = 0;
  // Reject gives the message back to the broker, so it needs late acks (as in Celery).
  app.task(
    "orders.check",
    (_ctx, ok: boolean) => {
      if (!ok) throw new Reject("malformed order", { requeue: false });
      return "fine";
    },
    { acksLate: true },
  );
  app.task(
    "orders.flappy",
    (ctx) => {
      attempts++;
      if (!ctx.deliveryInfo.redelivered) throw new Reject("try elsewhere", { requeue: true });
      return "second delivery";
    },
    { acksLate: true },
  );

  beforeAll(async () => {
    await requireRabbitMQ();
    await requireRedis();
    const { broker } = await app.connect();
    await broker.declareQueue({
      name: dead,
      exchange: { name: dlx, type: "direct" },
      routingKey: dead,
    });
  });

  afterAll(async () => {
    const { broker } = await app.connect();
    for (const q of [queue, dead]) await broker.deleteQueue(q).catch(() => {});
    await broker.deleteQueue(dlx).catch(() => {});
    await app.close();
  });

  it("dead-letters a rejected message and requeues one rejected with requeue", async () => {
    const worker = await createWorker(app, {
      concurrency: 2,
      logger: pino({ level: "silent" }),
      control: false,
    });
    await worker.start();
    try {
      const bad = await app.sendTask("orders.check", [false]);
      const good = await app.sendTask<string>("orders.check", [true]);
      expect(await good.get({ timeout: 10 })).toBe("fine");
      const flappy = await app.sendTask<string>("orders.flappy");
      expect(await flappy.get({ timeout: 10 })).toBe("second delivery");
      expect(attempts).toBe(2);
      const { broker } = await app.connect();
      const deadline = Date.now() + 5000;
      while (((await broker.inspectQueue(dead))?.messages ?? 0) < 1 && Date.now() < deadline)
        await new Promise((r) => setTimeout(r, 50));
      expect((await broker.inspectQueue(dead))?.messages).toBe(1);
      // Rejected messages store no result.
      expect(await bad.state()).toBe("PENDING");
    } finally {
      await worker.stop();
    }
  });
});
