/**
 * The history the server keeps from the events it ingests, published on the broker as workers
 * publish them: out-of-order events never move a task back and every state keeps its time, and
 * the retention policy deletes what is older than its days, timeline and logs included.
 */
import { randomUUID } from "node:crypto";
import { type CeleryEvent, createApp } from "@celeriac/sdk";
import { pino } from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Retention } from "../../server/src/services/retention.js";
import { startTestServer, type TestServer } from "../helpers/server.js";
import { subscribe, subscribed, wsClient } from "../helpers/subscriptions.js";
import { publishEvents, readTask, type TaskRow, taskEvent, waitFor } from "./api-helpers.js";

const broker = `memory://history-${randomUUID()}`;
const HOST = "w@history";
let t: TestServer;
const app = createApp({ broker, resultBackend: null });

beforeAll(async () => {
  t = await startTestServer({ brokerUrl: broker, ingestFlushMs: 10 });
});

afterAll(async () => {
  await app.close();
  await t?.close();
});

const FIELDS = `id name state args result runtime worker retries receivedAt startedAt succeededAt
  retriedAt updatedAt timeline { type timestamp }`;
const iso = (ms: number) => new Date(ms).toISOString();

/** The task once `done` holds for it (each event is written a moment after it is published). */
const stored = (id: string, done: (task: TaskRow) => boolean) =>
  waitFor(
    () => readTask(t, id, FIELDS),
    (task) => task !== null && done(task),
  ).then((task) => {
    expect(task, `task ${id}`).not.toBeNull();
    return task!;
  });

/** A run's three events, a second apart and ending a second ago. */
function run(id: string) {
  const t0 = Date.now() - 3000;
  return {
    t0,
    received: taskEvent(
      "task-received",
      id,
      t0,
      {
        name: "tasks.add",
        args: "(2, 3)",
        kwargs: "{}",
        retries: 0,
      },
      HOST,
    ),
    started: taskEvent("task-started", id, t0 + 1000, {}, HOST),
    succeeded: taskEvent("task-succeeded", id, t0 + 2000, { result: "5", runtime: 0.25 }, HOST),
  };
}

function expectWholeRun(task: TaskRow, t0: number) {
  expect(task).toMatchObject({
    state: "SUCCESS",
    name: "tasks.add",
    args: [2, 3],
    result: "5",
    runtime: 0.25,
    worker: HOST,
    receivedAt: iso(t0),
    startedAt: iso(t0 + 1000),
    succeededAt: iso(t0 + 2000),
    updatedAt: iso(t0 + 2000),
  });
  // The timeline in the order things happened, whatever order they arrived in.
  expect(task.timeline).toEqual([
    { type: "task-received", timestamp: iso(t0) },
    { type: "task-started", timestamp: iso(t0 + 1000) },
    { type: "task-succeeded", timestamp: iso(t0 + 2000) },
  ]);
}

describe("state precedence", () => {
  it("keeps SUCCESS when started and received arrive after it in the same batch", async () => {
    const id = randomUUID();
    const { t0, received, started, succeeded } = run(id);
    await publishEvents(app, [succeeded, started, received]);
    expectWholeRun(await stored(id, (task) => task.receivedAt !== null), t0);
  });

  it("keeps SUCCESS when started and received arrive in later batches", async () => {
    const id = randomUUID();
    const { t0, received, started, succeeded } = run(id);
    const client = wsClient(t.server.url, t.tokens.viewer);
    const updates = subscribe<{ taskUpdated: { state: string } }>(
      client,
      "subscription ($id: ID!) { taskUpdated(id: $id) { state } }",
      { id },
    );
    await subscribed(t.server, 1);
    try {
      await publishEvents(app, [succeeded]);
      await stored(id, (task) => task.state === "SUCCESS");
      await publishEvents(app, [started]);
      await stored(id, (task) => task.startedAt !== null);
      await publishEvents(app, [received]);
      expectWholeRun(await stored(id, (task) => task.receivedAt !== null), t0);
      // Subscribers were told of each change, and never of a state other than SUCCESS.
      await updates.until(() => updates.values.length === 3);
      expect(updates.values.map((u) => u.taskUpdated.state)).toEqual([
        "SUCCESS",
        "SUCCESS",
        "SUCCESS",
      ]);
    } finally {
      updates.close();
      await client.dispose();
    }
  });

  it("keeps SUCCESS when the retry before it arrives last", async () => {
    const id = randomUUID();
    const t0 = Date.now() - 5000;
    await publishEvents(app, [
      taskEvent("task-received", id, t0 + 2000, { name: "tasks.add", retries: 1 }, HOST),
      taskEvent("task-started", id, t0 + 2500, { retries: 1 }, HOST),
      taskEvent("task-succeeded", id, t0 + 3000, { result: "5", runtime: 0.5 }, HOST),
    ]);
    await stored(id, (task) => task.state === "SUCCESS");
    await publishEvents(app, [
      taskEvent("task-received", id, t0, { name: "tasks.add", retries: 0 }, HOST),
      taskEvent("task-started", id, t0 + 500, {}, HOST),
      taskEvent("task-retried", id, t0 + 1000, { exception: "Retry in 1s" }, HOST),
    ]);
    const task = await stored(id, (x) => x.retriedAt !== null);
    expect(task).toMatchObject({
      state: "SUCCESS",
      retries: 1,
      result: "5",
      retriedAt: iso(t0 + 1000),
      succeededAt: iso(t0 + 3000),
      updatedAt: iso(t0 + 3000),
    });
    expect((task.timeline as unknown[]).length).toBe(6);
  });
});

describe("retention", () => {
  const DAY = 86_400_000;
  let clock = 10_000;
  const log = (at: number, msg: string, task?: string): CeleryEvent => ({
    type: "celeriac-log",
    hostname: HOST,
    utcoffset: 0,
    pid: 4242,
    clock: clock++,
    timestamp: at / 1000,
    level: "info",
    msg,
    ...(task ? { uuid: task, name: "tasks.add" } : {}),
  });

  it("deletes tasks last changed more than N days ago, with their timeline and logs", async () => {
    const now = Date.now();
    const old = randomUUID();
    const recent = randomUUID();
    // First seen long ago, but it changed since: the last change is what counts.
    const longRunning = randomUUID();
    await publishEvents(app, [
      taskEvent("task-received", old, now - 40 * DAY, { name: "tasks.add" }, HOST),
      taskEvent("task-succeeded", old, now - 40 * DAY + 1000, { result: "1" }, HOST),
      taskEvent("task-received", recent, now - 1000, { name: "tasks.add" }, HOST),
      taskEvent("task-succeeded", recent, now - 500, { result: "2" }, HOST),
      taskEvent("task-received", longRunning, now - 40 * DAY, { name: "tasks.add" }, HOST),
      taskEvent("task-succeeded", longRunning, now - 2 * DAY, { result: "3" }, HOST),
    ]);
    await publishEvents(app, [
      log(now - 40 * DAY + 500, "old task's record", old),
      log(now - 40 * DAY, "old worker record"),
      log(now - 800, "recent task's record", recent),
      log(now - 100, "recent worker record"),
    ]);
    await stored(longRunning, (task) => task.state === "SUCCESS");
    await stored(recent, (task) => task.state === "SUCCESS");
    await stored(old, (task) => task.state === "SUCCESS");
    const logs = () =>
      t.server.db.query<{ msg: string; task_id: string | null }>(
        "SELECT msg, task_id FROM task_logs WHERE hostname = $1 ORDER BY timestamp",
        [HOST],
      );
    await waitFor(logs, (rows) => rows.length === 4);
    const events = (id: string) =>
      t.server.db
        .query<{ n: string }>("SELECT count(*) AS n FROM task_events WHERE task_id = $1", [id])
        .then((r) => Number(r[0]?.n));
    expect(await events(old)).toBe(2);

    const retention = new Retention(t.server.db, 30, pino({ level: "silent" }));
    expect(await retention.run()).toEqual({ tasks: 1, logs: 2 });

    expect(await readTask(t, old)).toBeNull();
    expect(await events(old)).toBe(0);
    expect(await readTask(t, recent)).toMatchObject({ state: "SUCCESS" });
    expect(await events(recent)).toBe(2);
    const kept = await readTask(t, longRunning, FIELDS);
    expect(kept?.timeline).toHaveLength(2);
    expect((await logs()).map((l) => l.msg)).toEqual([
      "recent task's record",
      "recent worker record",
    ]);
    const served = await t.gql<{ task: { logs: Array<{ msg: string }> } }>(
      "query ($id: ID!) { task(id: $id) { logs { msg } } }",
      { id: recent },
    );
    expect(served.data?.task.logs).toEqual([{ msg: "recent task's record" }]);
    // A second pass finds nothing more to delete.
    expect(await retention.run()).toEqual({ tasks: 0, logs: 0 });
  });
});
