/**
 * Nothing the fleet did is lost while the control plane is away: on RabbitMQ its durable event
 * queue keeps the events until it is back; on Redis, where events are fire-and-forget, tasks
 * left unfinished are brought up to date from the result backend.
 */
import { createApp, createWorker, type Worker } from "@celeriac/sdk";
import { pino } from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Reconciler } from "../../server/src/ingest/reconciler.js";
import { createTestDatabase, type TestDatabase } from "../helpers/postgres.js";
import { startTestServer } from "../helpers/server.js";
import {
  AMQP_URL,
  redisUrl,
  requireRabbitMQ,
  requireRedis,
  uniqueName,
} from "../helpers/services.js";

async function runTasks(broker: string, backend: string, n: number): Promise<string[]> {
  const queue = uniqueName("durable");
  const app = createApp({ broker, resultBackend: backend, defaultQueue: queue });
  app.task("tasks.add", (_ctx, x: number, y: number) => x + y);
  const worker: Worker = await createWorker(app, {
    hostname: `${uniqueName("w")}@test`,
    queues: [queue],
    taskEvents: true,
    logger: pino({ level: "silent" }),
  });
  await worker.start();
  const results = await Promise.all(
    Array.from({ length: n }, (_, i) => app.sendTask("tasks.add", [i, 1])),
  );
  for (const r of results) await r.get({ timeout: 20 });
  await worker.stop();
  await app.close();
  return results.map((r) => r.id);
}

const countDone = async (
  t: { server: { db: { query: <T>(q: string, p: unknown[]) => Promise<T[]> } } },
  ids: string[],
) =>
  Number(
    (
      await t.server.db.query<{ n: string }>(
        "SELECT count(*) AS n FROM tasks WHERE id = ANY($1) AND state = 'SUCCESS'",
        [ids],
      )
    )[0]?.n,
  );

describe("while the control plane is down", () => {
  let database: TestDatabase;
  beforeAll(async () => {
    database = await createTestDatabase();
  });
  afterAll(async () => {
    await database?.drop();
  });

  it("keeps events on RabbitMQ and ingests them when it is back", async () => {
    await requireRabbitMQ();
    await requireRedis();
    const eventQueue = uniqueName("celeriac.events");
    const config = { brokerUrl: AMQP_URL, resultBackendUrl: null, eventQueue, ingestFlushMs: 20 };
    // The first start declares the durable queue; then the server goes away.
    const first = await startTestServer(config, { database });
    await first.close();
    const ids = await runTasks(AMQP_URL, redisUrl(1), 200);
    const again = await startTestServer(config, { database });
    try {
      const until = Date.now() + 20_000;
      while ((await countDone(again, ids)) < ids.length && Date.now() < until)
        await new Promise((r) => setTimeout(r, 200));
      expect(await countDone(again, ids)).toBe(200);
    } finally {
      await again.server.app.connected.broker.deleteQueue(eventQueue).catch(() => {});
      await again.close();
    }
  });

  it("brings Redis tasks up to date from the result backend", async () => {
    await requireRedis();
    // A key prefix of its own: the other suites' workers on this database publish events this
    // server must not see (it would complete their tasks from the shared result backend too).
    const broker = `${redisUrl(1)}?global_keyprefix=durability-${uniqueName("t")}:`;
    const queue = uniqueName("nobody-consumes-this");
    const t = await startTestServer(
      { brokerUrl: broker, resultBackendUrl: broker, ingestFlushMs: 20 },
      { database },
    );
    try {
      // Known to the control plane as sent, then the server misses everything else.
      const sent = await Promise.all(
        Array.from({ length: 30 }, () =>
          t.gql<{ sendTask: { id: string } }>(
            `mutation ($q: String) { sendTask(input: { name: "tasks.add", args: [1, 2], queue: $q }) { ... on Task { id } } }`,
            { q: queue },
          ),
        ),
      );
      const ids = sent.map((s) => s.data!.sendTask.id);
      await t.server.ingestor!.stop();
      const backend = t.server.app.connected.backend!;
      for (const id of ids)
        await backend.store({
          task_id: id,
          status: "SUCCESS",
          result: 3,
          traceback: null,
          children: [],
          date_done: new Date().toISOString(),
        });
      const reconciler = new Reconciler(
        t.server.db,
        backend,
        t.server.ingestor!,
        pino({ level: "silent" }),
        {
          staleSeconds: 0,
        },
      );
      // The ingestor is stopped: reconciliation writes through its pipeline all the same.
      expect(await reconciler.run()).toBe(30);
      expect(await countDone(t, ids)).toBe(30);
      const task = await t.gql<{
        task: { timeline: Array<{ type: string; fields: Record<string, unknown> }> };
      }>(`query ($id: ID!) { task(id: $id) { timeline { type fields } } }`, { id: ids[0] });
      expect(task.data?.task.timeline.at(-1)).toMatchObject({
        type: "task-succeeded",
        fields: { reconciled: true },
      });
    } finally {
      await t.server.app.connected.broker.deleteQueue(queue).catch(() => {});
      await t.close();
    }
  });
});
