/**
 * Several server instances behind a load balancer, on one database and one Redis broker: a
 * subscription on one instance sees what another ingested (Redis pubsub), events every instance
 * receives (Redis broadcasts reach all) are written once, and a token revoked on one ends its
 * sessions on all.
 */
import { createApp, createWorker, type Worker } from "@celeriac/sdk";
import { pino } from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createTestDatabase, type TestDatabase } from "../helpers/postgres.js";
import { startTestServer, type TestServer } from "../helpers/server.js";
import { redisUrl, requireRedis, uniqueName } from "../helpers/services.js";
import { subscribe, subscribed, wsClient } from "../helpers/subscriptions.js";

const broker = redisUrl(0);
const queue = uniqueName("instances");
let database: TestDatabase;
let a: TestServer;
let b: TestServer;
let viewerOnly: TestServer;
let worker: Worker;
const app = createApp({ broker, resultBackend: broker, defaultQueue: queue });

beforeAll(async () => {
  await requireRedis();
  database = await createTestDatabase();
  const shared = { brokerUrl: broker, pubsubUrl: redisUrl(0), ingestFlushMs: 20 };
  a = await startTestServer(shared, { database });
  b = await startTestServer(shared, { database });
  // Serves subscriptions only: everything it streams was ingested by the others.
  viewerOnly = await startTestServer({ ...shared, ingest: false }, { database });
  app.task("tasks.add", (_ctx, x: number, y: number) => x + y);
  worker = await createWorker(app, {
    hostname: `${uniqueName("w")}@test`,
    queues: [queue],
    taskEvents: true,
    logger: pino({ level: "silent" }),
  });
  await worker.start();
});

afterAll(async () => {
  await worker?.stop();
  await app.close();
  for (const s of [viewerOnly, b, a]) await s?.close();
  await database?.drop();
});

describe("several server instances", () => {
  it("stream on one what another ingested, once, and write every event once", async () => {
    const client = wsClient(viewerOnly.server.url, viewerOnly.tokens.viewer);
    const sub = subscribe<{ taskEvents: { event: { type: string }; task: { id: string } } }>(
      client,
      `subscription { taskEvents(filter: { names: ["tasks.add"] }) { event { type } task { id state } } }`,
    );
    await subscribed(viewerOnly.server, 1);
    const results = await Promise.all(
      Array.from({ length: 20 }, (_, i) => app.sendTask("tasks.add", [i, i])),
    );
    for (const r of results) await r.get({ timeout: 10 });
    const last = results[results.length - 1]!;
    await sub.until(
      (v) => v.taskEvents.task.id === last.id && v.taskEvents.event.type === "task-succeeded",
    );
    await new Promise((r) => setTimeout(r, 500));
    const ids = new Set(results.map((r) => r.id));
    const streamed = sub.values.filter((v) => ids.has(v.taskEvents.task.id));
    // received, started, succeeded for each task (task-sent only with taskSendSentEvent), each once.
    const keys = streamed.map((v) => `${v.taskEvents.task.id}:${v.taskEvents.event.type}`);
    expect(new Set(keys).size).toBe(keys.length);
    expect(keys.filter((k) => k.endsWith("task-succeeded"))).toHaveLength(20);
    sub.close();
    await client.dispose();

    const rows = await a.server.db.query<{ n: string }>(
      "SELECT count(*) AS n FROM task_events WHERE task_id = ANY($1)",
      [[...ids]],
    );
    expect(Number(rows[0]?.n)).toBe(60);
    const done = await b.gql<{ tasks: { totalCount: number } }>(
      `{ tasks(filter: { names: ["tasks.add"], states: ["SUCCESS"] }) { totalCount } }`,
    );
    expect(done.data?.tasks.totalCount).toBe(20);
  });

  it("end a token's sessions on every instance when one revokes it", async () => {
    const { token, record } = await a.server.services.tokens.create("short-lived", "viewer");
    const client = wsClient(viewerOnly.server.url, token);
    const sub = subscribe(client, "subscription { workerEvents { type } }");
    await subscribed(viewerOnly.server, 1);
    await a.gql(`mutation ($id: ID!) { revokeApiToken(id: $id) { __typename } }`, {
      id: record.id,
    });
    await expect(sub.until(() => false, 5000)).rejects.toThrow(/4403 Forbidden/);
    await subscribed(viewerOnly.server, 0);
    await client.dispose();
  });
});
