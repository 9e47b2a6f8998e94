/**
 * The whole path on real services: a periodic task created through GraphQL, fired by the server's
 * beat onto Redis, consumed by a real worker, and followed back into the task history; and two
 * `celeriac-server beat` processes, the leader killed with SIGKILL, the other taking over.
 */
import { createApp, createWorker, type Worker } from "@celeriac/sdk";
import { migrate, openDatabase } from "@celeriac/server";
import { pino } from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createTestDatabase } from "../helpers/postgres.js";
import { kill, type Started, startUntil } from "../helpers/processes.js";
import { startTestServer, type TestServer } from "../helpers/server.js";
import { redisUrl, requireRedis, uniqueName } from "../helpers/services.js";

const broker = redisUrl(12);
const queue = uniqueName("beat");
let t: TestServer;
let worker: Worker;
const received: Array<{ id: string; headers: Record<string, unknown>; args: unknown[] }> = [];

beforeAll(async () => {
  await requireRedis();
  t = await startTestServer({
    brokerUrl: broker,
    resultBackendUrl: broker,
    beat: true,
    ingestFlushMs: 20,
    eventQueue: uniqueName("celeriac.events"),
  });
  const app = createApp({ broker, resultBackend: broker, defaultQueue: queue });
  app.task("tasks.heartbeat", (ctx, site: string) => {
    received.push({ id: ctx.id, headers: { ...ctx.headers }, args: [site] });
    return `ok ${site}`;
  });
  worker = await createWorker(app, {
    hostname: `${uniqueName("beat")}@test`,
    queues: [queue],
    taskEvents: true,
    logger: pino({ level: "silent" }),
  });
  await worker.start();
}, 60_000);

afterAll(async () => {
  await worker?.stop();
  await t?.close();
});

describe("the beat on Redis", () => {
  it("fires a schedule onto Redis, a worker runs it, and its runs link to the task history", {
    timeout: 30_000,
  }, async () => {
    const created = await t.gql<{ createPeriodicTask: { id: string } }>(
      `mutation ($input: CreatePeriodicTaskInput!) { createPeriodicTask(input: $input) { ... on PeriodicTask { id } } }`,
      {
        input: {
          name: "site heartbeat",
          task: "tasks.heartbeat",
          args: ["paris"],
          queue,
          headers: { team: "ops" },
          schedule: { interval: { every: 1, period: "SECONDS" } },
        },
      },
    );
    const id = created.data!.createPeriodicTask.id;
    const t0 = Date.now();
    while (received.length < 3 && Date.now() - t0 < 10_000)
      await new Promise((r) => setTimeout(r, 50));
    expect(received.length).toBeGreaterThanOrEqual(3);
    expect(received[0]).toMatchObject({
      args: ["paris"],
      headers: { periodic_task_name: "site heartbeat", team: "ops" },
    });
    expect(t.server.beat?.leading).toBe(true);

    await t.gql(
      `mutation ($id: ID!) { setPeriodicTaskEnabled(id: $id, enabled: false) { __typename } }`,
      { id },
    );
    const query = `query ($id: ID!) { periodicTask(id: $id) { totalRunCount
      runs(first: 50) { edges { node { taskId status trigger scheduledFor sentAt task { state result worker } } } } } }`;
    type Runs = {
      periodicTask: {
        totalRunCount: number;
        runs: {
          edges: Array<{
            node: {
              taskId: string;
              status: string;
              trigger: string;
              scheduledFor: string;
              task: { state: string; result: string } | null;
            };
          }>;
        };
      };
    };
    let runs: Runs["periodicTask"] | undefined;
    const t1 = Date.now();
    for (;;) {
      runs = (await t.gql<Runs>(query, { id })).data?.periodicTask;
      const nodes = runs?.runs.edges.map((e) => e.node) ?? [];
      if (
        (nodes.length > 0 && nodes.every((n) => n.task?.state === "SUCCESS")) ||
        Date.now() - t1 > 10_000
      )
        break;
      await new Promise((r) => setTimeout(r, 100));
    }
    const nodes = runs!.runs.edges.map((e) => e.node);
    expect(nodes.length).toBe(runs!.totalRunCount);
    expect(nodes.every((n) => n.status === "sent" && n.trigger === "schedule")).toBe(true);
    expect(nodes.every((n) => n.task?.state === "SUCCESS" && n.task.result === "'ok paris'")).toBe(
      true,
    );
    // Each run is a different task, sent once, one second apart.
    expect(new Set(received.map((r) => r.id)).size).toBe(received.length);
    expect(new Set(nodes.map((n) => n.taskId))).toEqual(new Set(received.map((r) => r.id)));
    const times = nodes.map((n) => Date.parse(n.scheduledFor)).sort();
    for (let i = 1; i < times.length; i++) expect(times[i]! - times[i - 1]!).toBe(1000);
  });
});

describe("celeriac-server beat, as processes", () => {
  it("hands over when the leader process is killed (SIGKILL), with no double fire and no gap", {
    timeout: 90_000,
  }, async () => {
    const database = await createTestDatabase("celeriac_beat_cli");
    const db = await openDatabase(database.url);
    const procs: Started[] = [];
    try {
      await migrate(db);
      const env = { DATABASE_URL: database.url, BROKER_URL: broker, LOG_LEVEL: "info" };
      const start = () =>
        startUntil("node", ["server/bin/celeriac-server.mjs", "beat"], /beat started/, {
          env,
          timeoutMs: 60_000,
        });
      procs.push(await start(), await start());
      const leaderOf = () =>
        procs.findIndex((p) => p.proc.exitCode === null && /beat is the leader/.test(p.output()));
      const t0 = Date.now();
      while (leaderOf() < 0 && Date.now() - t0 < 10_000)
        await new Promise((r) => setTimeout(r, 50));
      const first = leaderOf();
      expect(first).toBeGreaterThanOrEqual(0);
      // Created in SQL, as an operator might: the leader hears of it through NOTIFY.
      await db.query(
        `INSERT INTO periodic_tasks (name, task, args, queue, schedule_type, interval_every, interval_period)
         VALUES ('cli heartbeat', 'tasks.heartbeat', '["lyon"]', $1, 'interval', 1, 'seconds')`,
        [queue],
      );
      const mine = () => received.filter((r) => r.headers.periodic_task_name === "cli heartbeat");
      const t1 = Date.now();
      while (mine().length < 3 && Date.now() - t1 < 10_000)
        await new Promise((r) => setTimeout(r, 50));
      expect(mine().length).toBeGreaterThanOrEqual(3);

      const killedAt = Date.now();
      await kill(procs[first]!.proc, "SIGKILL");
      const other = 1 - first;
      while (!/beat is the leader/.test(procs[other]!.output()) && Date.now() - killedAt < 10_000)
        await new Promise((r) => setTimeout(r, 20));
      expect(Date.now() - killedAt).toBeLessThan(3000);
      const before = mine().length;
      while (mine().length < before + 3 && Date.now() - killedAt < 15_000)
        await new Promise((r) => setTimeout(r, 50));
      await db.query("UPDATE periodic_tasks SET enabled = false");
      await new Promise((r) => setTimeout(r, 1500));

      const runs = await db.query<{ scheduled: number; task_id: string; status: string }>(
        `SELECT (extract(epoch FROM scheduled_for) * 1000)::float8 AS scheduled, task_id, status
         FROM periodic_task_runs ORDER BY scheduled_for`,
      );
      // Every second from the first run to the last, once, across the handover.
      for (let i = 1; i < runs.length; i++)
        expect(runs[i]!.scheduled - runs[i - 1]!.scheduled).toBe(1000);
      expect(runs.every((r) => r.status === "sent")).toBe(true);
      const ids = mine().map((r) => r.id);
      expect(new Set(ids).size).toBe(ids.length);
      expect(new Set(ids)).toEqual(new Set(runs.map((r) => r.task_id)));
    } finally {
      for (const p of procs) await kill(p.proc, "SIGTERM");
      await db.close();
      await database.drop();
    }
  });
});
