/**
 * Ingestion on a real broker: our workers' and a Python Celery worker's events become task
 * history in Postgres and live GraphQL subscriptions over graphql-ws. Run for Redis and RabbitMQ
 * by the files beside it.
 */
import { createApp, createWorker, type Worker } from "@celeriac/sdk";
import { pino } from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type RunningWorker, requirePythonCelery, startPythonWorker } from "../helpers/python.js";
import { startTestServer, type TestServer } from "../helpers/server.js";
import { uniqueName } from "../helpers/services.js";
import { subscribe, subscribed, wsClient } from "../helpers/subscriptions.js";

export interface IngestFixture {
  name: string;
  broker: string;
  backend: string;
  setup(): Promise<void>;
}

const TASK = "id name state result exception worker retries";

async function waitFor<T>(
  read: () => Promise<T>,
  done: (v: T) => boolean,
  ms = 15_000,
): Promise<T> {
  const until = Date.now() + ms;
  for (;;) {
    const value = await read();
    if (done(value) || Date.now() > until) return value;
    await new Promise((r) => setTimeout(r, 100));
  }
}

export function ingestSuite(fixture: IngestFixture) {
  describe(`the control plane on ${fixture.name}`, () => {
    const queue = uniqueName("ingest");
    const pyQueue = uniqueName("ingest-py");
    let t: TestServer;
    let worker: Worker;
    let python: RunningWorker;
    const app = createApp({
      broker: fixture.broker,
      resultBackend: fixture.backend,
      defaultQueue: queue,
    });

    const eventQueue = uniqueName("celeriac.events");

    beforeAll(async () => {
      await fixture.setup();
      await requirePythonCelery();
      t = await startTestServer({
        brokerUrl: fixture.broker,
        resultBackendUrl: fixture.backend,
        eventQueue,
        ingestFlushMs: 20,
      });
      app.task("tasks.add", (_ctx, x: number, y: number) => x + y);
      app.task("tasks.flaky", (ctx, failures: number) => {
        if (ctx.retries < failures) ctx.retry({ countdown: 0.1, error: new Error("not yet") });
        return `ok after ${ctx.retries} retries`;
      });
      worker = await createWorker(app, {
        hostname: `${uniqueName("ts")}@test`,
        queues: [queue],
        taskEvents: true,
        logger: pino({ level: "silent" }),
      });
      await worker.start();
      python = await startPythonWorker(
        { broker: fixture.broker, backend: fixture.backend },
        uniqueName("py"),
        [pyQueue],
      );
    }, 60_000);

    afterAll(async () => {
      await python?.stop();
      await worker?.stop();
      // Durable on RabbitMQ: left behind, it would keep collecting every later run's events.
      await t?.server.app.connected.broker.deleteQueue(eventQueue).catch(() => {});
      await app.close();
      await t?.close();
    });

    it("streams a task going sent -> started -> succeeded, live over graphql-ws", async () => {
      const client = wsClient(t.server.url, t.tokens.viewer);
      const sub = subscribe<{
        taskEvents: { event: { type: string }; task: { id: string; state: string } };
      }>(
        client,
        `subscription { taskEvents(filter: { names: ["tasks.add"] }) { event { type hostname } task { id state result } } }`,
      );
      // The subscription must run before the task exists.
      await subscribed(t.server, 1);
      const sent = await app.sendTask("tasks.add", [20, 22]);
      const done = await sub.until(
        (v) => v.taskEvents.task.id === sent.id && v.taskEvents.event.type === "task-succeeded",
      );
      expect(done.taskEvents.task.state).toBe("SUCCESS");
      const states = sub.values
        .filter((v) => v.taskEvents.task.id === sent.id)
        .map((v) => v.taskEvents.event.type);
      expect(states).toEqual(
        expect.arrayContaining(["task-received", "task-started", "task-succeeded"]),
      );
      sub.close();
      await client.dispose();
      const row = await t.gql<{ task: Record<string, unknown> }>(
        `query ($id: ID!) { task(id: $id) { ${TASK} } }`,
        {
          id: sent.id,
        },
      );
      expect(row.data?.task).toMatchObject({
        state: "SUCCESS",
        result: "42",
        worker: worker.hostname,
      });
    });

    it("refuses a WebSocket connection without a valid token", async () => {
      const client = wsClient(t.server.url, "cel_wrong");
      const sub = subscribe(client, "subscription { taskEvents { event { type } } }");
      await expect(sub.until(() => true, 5000)).rejects.toThrow(/4403 Forbidden/);
      await client.dispose();
    });

    it("follows a retried task through RETRY to SUCCESS", async () => {
      const sent = await app.sendTask("tasks.flaky", [2]);
      const row = await waitFor(
        () =>
          t.gql<{ task: { state: string; retries: number } | null }>(
            `query ($id: ID!) { task(id: $id) { ${TASK} timeline { type } } }`,
            { id: sent.id },
          ),
        (r) => r.data?.task?.state === "SUCCESS",
      );
      expect(row.data?.task).toMatchObject({
        state: "SUCCESS",
        retries: 2,
        result: "'ok after 2 retries'",
      });
      const task = row.data?.task as unknown as { timeline: Array<{ type: string }> } | undefined;
      const types = (task?.timeline ?? []).map((e) => e.type);
      expect(types.filter((x) => x === "task-retried")).toHaveLength(2);
    });

    it("records a Python worker's tasks with their states and timelines", async () => {
      const ok = await app.sendTask("tasks.mul", [6, 7], {}, { queue: pyQueue });
      const bad = await app.sendTask("tasks.fail", ["boom from python"], {}, { queue: pyQueue });
      const okRow = await waitFor(
        () =>
          t.gql<{ task: { state: string } | null }>(
            `query ($id: ID!) { task(id: $id) { ${TASK} timeline { type hostname } } }`,
            { id: ok.id },
          ),
        (r) => r.data?.task?.state === "SUCCESS",
      );
      expect(okRow.data?.task).toMatchObject({
        name: "tasks.mul",
        state: "SUCCESS",
        result: "42",
        worker: python.hostname,
      });
      const badRow = await waitFor(
        () =>
          t.gql<{ task: { state: string } | null }>(
            `query ($id: ID!) { task(id: $id) { ${TASK} } }`,
            { id: bad.id },
          ),
        (r) => r.data?.task?.state === "FAILURE",
      );
      expect(badRow.data?.task?.state).toBe("FAILURE");
      const failed = badRow.data?.task as unknown as { exception: string } | undefined;
      expect(String(failed?.exception)).toMatch(/ValueError.*boom from python/);
      const workers = await t.gql<{
        workers: Array<{ hostname: string; online: boolean; software: string }>;
      }>("{ workers { hostname online software } }");
      expect(workers.data?.workers).toContainEqual(
        expect.objectContaining({
          hostname: python.hostname,
          online: true,
          software: expect.stringMatching(/^py-celery 5\./),
        }),
      );
    });

    it("marks a Python worker offline when it stops, and says so to subscribers", async () => {
      const client = wsClient(t.server.url, t.tokens.viewer);
      const sub = subscribe<{
        workerEvents: { type: string; worker: { hostname: string; online: boolean } };
      }>(
        client,
        `subscription ($h: String) { workerEvents(hostname: $h) { type worker { hostname online } } }`,
        { h: python.hostname },
      );
      await subscribed(t.server, 1);
      await python.stop();
      const offline = await sub.until((v) => v.workerEvents.type === "worker-offline", 20_000);
      expect(offline.workerEvents.worker.online).toBe(false);
      sub.close();
      await client.dispose();
    });

    it("writes a burst in bounded batches, every event once, each task's state by precedence", async () => {
      const ingestor = t.server.ingestor!;
      const flushes = ingestor.stats.flushes;
      const prefix = uniqueName("burst");
      const now = Date.now() / 1000;
      // 5,000 tasks whose events arrive out of order and spread over several batches: a task's
      // succeeded event comes before its received one, half a burst later.
      const received = [];
      const succeeded = [];
      for (let i = 0; i < 5000; i++) {
        const base = { hostname: "burst@test", utcoffset: 0, pid: 1, uuid: `${prefix}-${i}` };
        succeeded.push({
          ...base,
          type: "task-succeeded",
          clock: 2 * i,
          timestamp: now + 1,
          result: "1",
        });
        received.push({
          ...base,
          type: "task-received",
          clock: 2 * i + 1,
          timestamp: now,
          name: "tasks.burst",
          args: "(1,)",
        });
      }
      const burst = [...succeeded, ...received];
      for (let i = 0; i < burst.length; i += 24) ingestor.ingest(burst.slice(i, i + 24));
      // And again, as a second instance or a redelivery would: nothing is written twice.
      for (let i = 0; i < burst.length; i += 24) ingestor.ingest(burst.slice(i, i + 24));
      await ingestor.drain();
      expect(ingestor.stats.flushes - flushes).toBeGreaterThanOrEqual(3);
      const [row] = await t.server.db.query<{ done: number; named: number; events: number }>(
        `SELECT (SELECT count(*) FROM tasks WHERE id LIKE $1 AND state = 'SUCCESS')::int AS done,
           (SELECT count(*) FROM tasks WHERE id LIKE $1 AND name = 'tasks.burst')::int AS named,
           (SELECT count(*) FROM task_events WHERE task_id LIKE $1)::int AS events`,
        [`${prefix}-%`],
      );
      expect(row).toEqual({ done: 5000, named: 5000, events: 10_000 });
    });

    it("answers /healthz, /readyz and /metrics", async () => {
      expect((await fetch(`${t.server.url}/healthz`)).status).toBe(200);
      const ready = await fetch(`${t.server.url}/readyz`);
      expect(ready.status).toBe(200);
      expect(await ready.json()).toMatchObject({ ok: true, database: true, broker: true });
      const metrics = await (await fetch(`${t.server.url}/metrics`)).text();
      expect(metrics).toMatch(/celeriac_tasks\{state="SUCCESS"\} \d+/);
      expect(metrics).toMatch(/celeriac_ingest_events_total \d+/);
      expect(metrics).toMatch(/celeriac_graphql_request_duration_seconds_bucket/);
    });
  });
}
