/**
 * The registry of what the fleet can run, kept from the workers' answers to `registered`: a
 * worker too busy to answer when it came online is asked again once it is seen alive, not at the
 * next periodic refresh (30 s later), and subscribers hear of the change.
 */
import { createApp } from "@celeriac/sdk";
import type { Client } from "graphql-ws";
import { afterAll, beforeAll, expect, it } from "vitest";
import { kill, type Started, startUntil } from "../helpers/processes.js";
import { startTestServer, type TestServer } from "../helpers/server.js";
import { redisUrl, requireRedis, uniqueName } from "../helpers/services.js";
import { subscribe, wsClient } from "../helpers/subscriptions.js";

const broker = redisUrl(5);
let t: TestServer;
let client: Client | undefined;
let worker: Started | undefined;

beforeAll(async () => {
  await requireRedis();
  t = await startTestServer({ brokerUrl: broker, ingestFlushMs: 10, controlTimeout: 0.5 });
});

afterAll(async () => {
  if (worker) await kill(worker.proc);
  await client?.dispose();
  await t?.close();
});

interface Registered {
  name: string;
  workers: string[];
}

it("asks a worker that was too busy to answer when it came online again once it heartbeats", async () => {
  const queue = uniqueName("registry");
  const hostname = `${queue}@test`;
  client = wsClient(t.server.url, t.tokens.viewer);
  const changes = subscribe<{ registeredTasksChanged: Registered[] }>(
    client,
    "subscription { registeredTasksChanged { name workers } }",
  );
  // Waiting before the worker starts: it takes this first, and its event loop is held for 3 s,
  // past the question the server asks when the worker comes online.
  const producer = createApp({ broker, resultBackend: null });
  await producer.sendTask("busy.block", [3000], {}, { queue });
  await producer.close();
  worker = await startUntil(
    "node",
    [
      ...["sdk/bin/celeriac.mjs", "worker", "--app", "test/server/fixtures/busy-app.ts"],
      ...["--broker", broker, "-Q", queue, "-c", "1", "-E", "--hostname", hostname],
    ],
    /ready/,
    { timeoutMs: 30_000 },
  );
  // Without asking again, the next answer would come with the periodic refresh, 30 s on.
  const change = await changes.until(
    (c) => c.registeredTasksChanged.some((r) => r.workers.includes(hostname)),
    15_000,
  );
  expect(change.registeredTasksChanged.filter((r) => r.workers.includes(hostname))).toEqual([
    { name: "busy.block", workers: [hostname] },
  ]);
  const listed = await t.gql<{ registeredTasks: Registered[] }>(
    "{ registeredTasks { name workers } }",
  );
  expect(listed.data?.registeredTasks).toContainEqual({ name: "busy.block", workers: [hostname] });
  changes.close();
});
