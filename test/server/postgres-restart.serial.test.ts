/**
 * A Postgres restart in the middle of ingestion loses nothing on RabbitMQ: batches that cannot be
 * written are retried, and their events stay unacked on the durable queue until they are.
 * Serial: it restarts the machine's PostgreSQL, which every other suite uses.
 */
import { execFile } from "node:child_process";
import { readdirSync } from "node:fs";
import { promisify } from "node:util";
import { createApp, createWorker } from "@celeriac/sdk";
import { pino } from "pino";
import { afterAll, beforeAll, expect, it } from "vitest";
import { startTestServer, type TestServer } from "../helpers/server.js";
import {
  AMQP_URL,
  redisUrl,
  requirePostgres,
  requireRabbitMQ,
  requireRedis,
  uniqueName,
} from "../helpers/services.js";

const run = promisify(execFile);
const queue = uniqueName("pg-restart");
const eventQueue = uniqueName("celeriac.events");
let t: TestServer;

async function restartPostgres(): Promise<void> {
  const version = readdirSync("/etc/postgresql")[0]!;
  await run("pg_ctlcluster", [
    "--skip-systemctl-redirect",
    version,
    "main",
    "restart",
    "-m",
    "fast",
  ]);
}

beforeAll(async () => {
  await requirePostgres();
  await requireRabbitMQ();
  await requireRedis();
  t = await startTestServer({ brokerUrl: AMQP_URL, eventQueue, ingestFlushMs: 20 });
});

afterAll(async () => {
  await t?.server.app.connected.broker.deleteQueue(eventQueue).catch(() => {});
  await t?.close();
});

it("ingests every task although Postgres restarts in the middle", {
  timeout: 120_000,
}, async () => {
  const app = createApp({ broker: AMQP_URL, resultBackend: redisUrl(1), defaultQueue: queue });
  app.task("tasks.add", (_ctx, x: number, y: number) => x + y);
  const worker = await createWorker(app, {
    hostname: `${uniqueName("w")}@test`,
    queues: [queue],
    taskEvents: true,
    logger: pino({ level: "silent" }),
  });
  await worker.start();
  const ids: string[] = [];
  const sending = (async () => {
    for (let i = 0; i < 1000; i++) {
      ids.push((await app.sendTask("tasks.add", [i, 1])).id);
      if (i % 50 === 0) await new Promise((r) => setTimeout(r, 100));
    }
  })();
  await new Promise((r) => setTimeout(r, 800));
  await restartPostgres();
  await sending;
  const count = async () =>
    Number(
      (
        await t.server.db
          .query<{ n: string }>(
            "SELECT count(*) AS n FROM tasks WHERE id = ANY($1) AND state = 'SUCCESS'",
            [ids],
          )
          .catch(() => [{ n: "0" }])
      )[0]?.n,
    );
  const until = Date.now() + 60_000;
  while ((await count()) < ids.length && Date.now() < until)
    await new Promise((r) => setTimeout(r, 500));
  expect(await count()).toBe(1000);
  await worker.stop();
  await app.close();
});
