/**
 * Periodic tasks through GraphQL on a real Postgres, with a worker on the in-memory broker:
 * roles, validation with typed errors, each kind of schedule with its upcoming runs, filters and
 * pages, run now (linked to the task history), the audit trail and the live subscription.
 */
import { randomUUID } from "node:crypto";
import { createApp, createWorker, type Worker } from "@celeriac/sdk";
import { pino } from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestServer, type TestServer } from "../helpers/server.js";
import { subscribe, subscribed, wsClient } from "../helpers/subscriptions.js";

const broker = `memory://schedules-${randomUUID()}`;
let t: TestServer;
let worker: Worker;
const headersSeen: Array<Record<string, unknown>> = [];

const FIELDS = `id name task args kwargs enabled oneOff queue priority description missedRunPolicy maxMissedRuns
  scheduleType scheduleDescription nextRunAt lastRunAt totalRunCount
  schedule {
    __typename
    ... on IntervalSchedule { every period }
    ... on CrontabSchedule { minute hour dayOfWeek dayOfMonth monthOfYear timezone }
    ... on SolarSchedule { event latitude longitude }
    ... on ClockedSchedule { clockedTime }
  }`;

const RESULT = `__typename
  ... on PeriodicTask { ${FIELDS} }
  ... on Error { code message }
  ... on InvalidInputError { issues { path message } }
  ... on ForbiddenError { requiredRole }
  ... on NotFoundError { what missingId: id }`;

type Row = Record<string, unknown> & { id: string; __typename: string };

async function create(input: Record<string, unknown>, token?: string): Promise<Row> {
  const r = await t.gql<{ createPeriodicTask: Row }>(
    `mutation ($input: CreatePeriodicTaskInput!) { createPeriodicTask(input: $input) { ${RESULT} } }`,
    { input },
    token,
  );
  if (r.errors) throw new Error(JSON.stringify(r.errors));
  return r.data!.createPeriodicTask;
}

async function update(id: string, input: Record<string, unknown>, token?: string): Promise<Row> {
  const r = await t.gql<{ updatePeriodicTask: Row }>(
    `mutation ($id: ID!, $input: UpdatePeriodicTaskInput!) { updatePeriodicTask(id: $id, input: $input) { ${RESULT} } }`,
    { id, input },
    token,
  );
  if (r.errors) throw new Error(JSON.stringify(r.errors));
  return r.data!.updatePeriodicTask;
}

async function waitFor<T>(
  read: () => Promise<T>,
  done: (v: T) => boolean,
  ms = 10_000,
): Promise<T> {
  const until = Date.now() + ms;
  for (;;) {
    const value = await read();
    if (done(value) || Date.now() > until) return value;
    await new Promise((r) => setTimeout(r, 50));
  }
}

beforeAll(async () => {
  t = await startTestServer({ brokerUrl: broker, ingestFlushMs: 10, redactTasks: ["secret.*"] });
  const app = createApp({ broker, resultBackend: null });
  app.task("tasks.report", (ctx, kind: string) => {
    headersSeen.push({ ...ctx.headers });
    return `report ${kind}`;
  });
  worker = await createWorker(app, {
    hostname: "w1@schedules",
    concurrency: 2,
    taskEvents: true,
    logger: pino({ level: "silent" }),
  });
  await worker.start();
});

afterAll(async () => {
  await worker?.stop();
  await t?.close();
});

describe("roles", () => {
  it("lets admins edit, operators run now, viewers read", async () => {
    const denied = await create(
      {
        name: "by operator",
        task: "tasks.report",
        schedule: { interval: { every: 1, period: "HOURS" } },
      },
      t.tokens.operator,
    );
    expect(denied).toMatchObject({
      __typename: "ForbiddenError",
      code: "FORBIDDEN",
      requiredRole: "admin",
    });
    const created = await create({
      name: "roles",
      task: "tasks.report",
      args: ["daily"],
      schedule: { interval: { every: 1, period: "HOURS" } },
    });
    const viewerRun = await t.gql<{ runPeriodicTaskNow: Row }>(
      `mutation ($id: ID!) { runPeriodicTaskNow(id: $id) { __typename ... on ForbiddenError { requiredRole } } }`,
      { id: created.id },
      t.tokens.viewer,
    );
    expect(viewerRun.data?.runPeriodicTaskNow).toMatchObject({
      __typename: "ForbiddenError",
      requiredRole: "operator",
    });
    const disable = await t.gql<{ setPeriodicTaskEnabled: Row }>(
      `mutation ($id: ID!) { setPeriodicTaskEnabled(id: $id, enabled: false) { __typename ... on ForbiddenError { requiredRole } } }`,
      { id: created.id },
      t.tokens.operator,
    );
    expect(disable.data?.setPeriodicTaskEnabled).toMatchObject({
      __typename: "ForbiddenError",
      requiredRole: "admin",
    });
    const read = await t.gql<{ periodicTask: Row }>(
      `query ($id: ID!) { periodicTask(id: $id) { name } }`,
      { id: created.id },
      t.tokens.viewer,
    );
    expect(read.data?.periodicTask).toEqual({ name: "roles" });
  });
});

describe("creating and editing", () => {
  it("creates each kind of schedule with its upcoming runs", async () => {
    const cron = await create({
      name: "paris 02:30",
      task: "tasks.report",
      schedule: {
        crontab: { minute: "30", hour: "2", dayOfWeek: "sun", timezone: "Europe/Paris" },
      },
    });
    expect(cron).toMatchObject({
      __typename: "PeriodicTask",
      enabled: true,
      missedRunPolicy: "RUN_ONCE",
      maxMissedRuns: 10,
      scheduleType: "CRONTAB",
      scheduleDescription: "30 2 * * sun (m/h/dM/MY/d) Europe/Paris",
      schedule: {
        __typename: "CrontabSchedule",
        minute: "30",
        hour: "2",
        dayOfWeek: "sun",
        timezone: "Europe/Paris",
      },
    });
    const next = await t.gql<{ periodicTask: { nextRuns: string[]; nextRunAt: string } }>(
      `query ($id: ID!) { periodicTask(id: $id) { nextRunAt nextRuns(count: 3) } }`,
      { id: cron.id },
    );
    const runs = next.data!.periodicTask.nextRuns;
    expect(runs).toHaveLength(3);
    expect(runs[0]).toBe(next.data!.periodicTask.nextRunAt);
    for (const r of runs) {
      const local = new Date(r).toLocaleString("en-GB", {
        timeZone: "Europe/Paris",
        weekday: "short",
        hour: "2-digit",
        minute: "2-digit",
      });
      // Sunday 02:30, or 03:00 on the Sunday 02:30 does not exist.
      expect(["Sun 02:30", "Sun 03:00"]).toContain(local);
    }

    const interval = await create({
      name: "every 90 s",
      task: "tasks.report",
      schedule: { interval: { every: 90, period: "SECONDS" } },
    });
    expect(interval).toMatchObject({
      scheduleDescription: "every 90 seconds",
      schedule: { every: 90, period: "SECONDS" },
    });
    const solar = await create({
      name: "dusk",
      task: "tasks.report",
      schedule: { solar: { event: "DUSK_CIVIL", latitude: 51.5, longitude: -0.12 } },
    });
    expect(solar).toMatchObject({
      schedule: { __typename: "SolarSchedule", event: "DUSK_CIVIL", latitude: 51.5 },
    });
    const at = new Date(Date.now() + 86_400_000).toISOString();
    const clocked = await create({
      name: "once",
      task: "tasks.report",
      schedule: { clocked: { clockedTime: at } },
    });
    expect(clocked).toMatchObject({ oneOff: true, nextRunAt: at, schedule: { clockedTime: at } });
  });

  it("refuses invalid input with typed errors that name the field", async () => {
    const cases: Array<[Record<string, unknown>, string[], RegExp]> = [
      [
        { crontab: { minute: "61" } },
        ["schedule", "crontab", "minute"],
        /minute: 61 is out of range 0-59/,
      ],
      [
        { crontab: { dayOfWeek: "7" } },
        ["schedule", "crontab", "dayOfWeek"],
        /day_of_week: 7 is out of range 0-6/,
      ],
      [
        { crontab: { minute: "0", timezone: "Mars/Olympus" } },
        ["schedule", "crontab", "timezone"],
        /unknown time zone/,
      ],
      [
        { interval: { every: 0, period: "MINUTES" } },
        ["schedule", "interval", "every"],
        /at least 1/,
      ],
      [
        { solar: { event: "SUNRISE", latitude: 95, longitude: 0 } },
        ["schedule", "solar", "latitude"],
        /latitude/,
      ],
      [
        { interval: { every: 1, period: "HOURS" }, crontab: { minute: "0" } },
        ["schedule"],
        /exactly one/,
      ],
      [{}, ["schedule"], /exactly one/],
    ];
    for (const [schedule, path, message] of cases) {
      const r = await create({ name: `bad ${randomUUID()}`, task: "tasks.report", schedule });
      expect(r, JSON.stringify(schedule)).toMatchObject({
        __typename: "InvalidInputError",
        code: "INVALID_INPUT",
      });
      const issues = r.issues as Array<{ path: string[]; message: string }>;
      expect(issues[0]?.path, JSON.stringify(schedule)).toEqual(path);
      expect(issues[0]?.message).toMatch(message);
    }
    const schedule = { interval: { every: 1, period: "HOURS" } };
    const others: Array<[Record<string, unknown>, string]> = [
      [{ name: "roles", task: "tasks.report" }, "name"],
      [{ name: "", task: "tasks.report" }, "name"],
      [{ name: "p", task: "tasks.report", priority: 300 }, "priority"],
      [{ name: "a", task: "tasks.report", args: { not: "a list" } }, "args"],
      [
        { name: "e", task: "tasks.report", expires: new Date().toISOString(), expireSeconds: 5 },
        "expireSeconds",
      ],
      [{ name: "m", task: "tasks.report", maxMissedRuns: 0 }, "maxMissedRuns"],
    ];
    for (const [input, field] of others) {
      const r = await create({ ...input, schedule });
      expect(r, field).toMatchObject({ __typename: "InvalidInputError" });
      expect((r.issues as Array<{ path: string[] }>)[0]?.path[0]).toBe(field);
    }
  });

  it("updates, reschedules, disables and deletes", async () => {
    const row = await create({
      name: "edit me",
      task: "tasks.report",
      description: "before",
      schedule: { crontab: { minute: "0", hour: "0", dayOfMonth: "1", monthOfYear: "1" } },
    });
    const yearly = row.nextRunAt as string;
    const described = await update(row.id, { description: "after", queue: "reports" });
    expect(described).toMatchObject({ description: "after", queue: "reports", nextRunAt: yearly });
    const rescheduled = await update(row.id, {
      schedule: { interval: { every: 5, period: "MINUTES" } },
    });
    expect(rescheduled.scheduleType).toBe("INTERVAL");
    expect(Date.parse(rescheduled.nextRunAt as string) - Date.now()).toBeLessThan(
      5 * 60_000 + 1000,
    );
    const cleared = await update(row.id, {
      description: null,
      queue: null,
      missedRunPolicy: "RUN_ALL",
      maxMissedRuns: 3,
    });
    expect(cleared).toMatchObject({
      description: "",
      queue: null,
      missedRunPolicy: "RUN_ALL",
      maxMissedRuns: 3,
    });
    const bad = await update(row.id, { schedule: { crontab: { hour: "25" } } });
    expect(bad).toMatchObject({ __typename: "InvalidInputError" });

    const off = await t.gql<{ setPeriodicTaskEnabled: Row }>(
      `mutation ($id: ID!) { setPeriodicTaskEnabled(id: $id, enabled: false) { ... on PeriodicTask { enabled nextRunAt } } }`,
      { id: row.id },
    );
    expect(off.data?.setPeriodicTaskEnabled).toEqual({ enabled: false, nextRunAt: null });
    const on = await t.gql<{ setPeriodicTaskEnabled: Row }>(
      `mutation ($id: ID!) { setPeriodicTaskEnabled(id: $id, enabled: true) { ... on PeriodicTask { enabled nextRunAt } } }`,
      { id: row.id },
    );
    expect(on.data?.setPeriodicTaskEnabled).toMatchObject({ enabled: true });
    expect(on.data?.setPeriodicTaskEnabled.nextRunAt).not.toBeNull();

    const del = `mutation ($id: ID!) { deletePeriodicTask(id: $id) { __typename ... on DeletedPeriodicTask { id name } ... on NotFoundError { what } } }`;
    const deleted = await t.gql<{ deletePeriodicTask: Row }>(del, { id: row.id });
    expect(deleted.data?.deletePeriodicTask).toEqual({
      __typename: "DeletedPeriodicTask",
      id: row.id,
      name: "edit me",
    });
    const again = await t.gql<{ deletePeriodicTask: Row }>(del, { id: row.id });
    expect(again.data?.deletePeriodicTask).toEqual({
      __typename: "NotFoundError",
      what: "periodic task",
    });
    const missing = await update(row.id, { description: "x" });
    expect(missing).toMatchObject({ __typename: "NotFoundError" });
  });
});

describe("listing", () => {
  it("filters and pages, with totals", async () => {
    for (let i = 0; i < 5; i++)
      await create({
        name: `list ${i}`,
        task: i % 2 ? "tasks.odd" : "tasks.even",
        enabled: i !== 4,
        description: i === 3 ? "the weekly digest" : "",
        schedule:
          i === 2 ? { crontab: { minute: "5" } } : { interval: { every: i + 1, period: "HOURS" } },
      });
    const q = `query ($filter: PeriodicTaskFilter, $first: Int, $after: String) {
      periodicTasks(filter: $filter, first: $first, after: $after) {
        totalCount pageInfo { hasNextPage endCursor } edges { node { name } } } }`;
    type Page = {
      periodicTasks: {
        totalCount: number;
        pageInfo: { hasNextPage: boolean; endCursor: string };
        edges: Array<{ node: { name: string } }>;
      };
    };
    const names = (p: Page) => p.periodicTasks.edges.map((e) => e.node.name);
    const odd = (await t.gql<Page>(q, { filter: { tasks: ["tasks.odd"] } })).data!;
    expect(names(odd)).toEqual(["list 1", "list 3"]);
    const disabled = (await t.gql<Page>(q, { filter: { enabled: false, search: "list" } })).data!;
    expect(names(disabled)).toEqual(["list 4"]);
    const crontabs = (
      await t.gql<Page>(q, { filter: { scheduleTypes: ["CRONTAB"], search: "list" } })
    ).data!;
    expect(names(crontabs)).toEqual(["list 2"]);
    expect(names((await t.gql<Page>(q, { filter: { search: "WEEKLY" } })).data!)).toEqual([
      "list 3",
    ]);
    const first = (await t.gql<Page>(q, { filter: { search: "list " }, first: 2 })).data!;
    expect(first.periodicTasks.totalCount).toBe(5);
    expect(names(first)).toEqual(["list 0", "list 1"]);
    expect(first.periodicTasks.pageInfo.hasNextPage).toBe(true);
    const second = (
      await t.gql<Page>(q, {
        filter: { search: "list " },
        first: 2,
        after: first.periodicTasks.pageInfo.endCursor,
      })
    ).data!;
    expect(names(second)).toEqual(["list 2", "list 3"]);
  });
});

describe("running now", () => {
  it("sends it with the periodic_task_name header, records the run, links it to the task history and streams it", async () => {
    const row = await create({
      name: "run me",
      task: "tasks.report",
      args: ["adhoc"],
      schedule: { crontab: { minute: "0", hour: "0", dayOfMonth: "1", monthOfYear: "1" } },
    });
    const client = wsClient(t.server.url, t.tokens.viewer);
    const sub = subscribe<{ periodicTaskRuns: { name: string; taskId: string; taskName: string } }>(
      client,
      `subscription ($id: ID) { periodicTaskRuns(periodicTaskId: $id) { name taskId taskName scheduledFor firedAt } }`,
      { id: row.id },
    );
    await subscribed(t.server, 1);
    const ran = await t.gql<{ runPeriodicTaskNow: Record<string, unknown> }>(
      `mutation ($id: ID!) { runPeriodicTaskNow(id: $id) {
        __typename ... on PeriodicTaskRun { taskId taskName status trigger scheduledFor attempts } } }`,
      { id: row.id },
      t.tokens.operator,
    );
    const run = ran.data!.runPeriodicTaskNow;
    expect(run).toMatchObject({
      __typename: "PeriodicTaskRun",
      taskName: "tasks.report",
      status: "sent",
      trigger: "manual",
      scheduledFor: null,
      attempts: 1,
    });
    const event = await sub.until((v) => v.periodicTaskRuns.taskId === run.taskId);
    expect(event.periodicTaskRuns).toMatchObject({ name: "run me", taskName: "tasks.report" });
    sub.close();
    await client.dispose();

    // The schedule did not move; the run is listed, and its task reaches the history.
    const read = () =>
      t.gql<{
        periodicTask: {
          nextRunAt: string;
          totalRunCount: number;
          runs: {
            totalCount: number;
            edges: Array<{
              node: { taskId: string; task: { state: string; result: string } | null };
            }>;
          };
        };
      }>(
        `query ($id: ID!) { periodicTask(id: $id) { nextRunAt totalRunCount
          runs(first: 5) { totalCount edges { node { taskId status task { state result } } } } } }`,
        { id: row.id },
      );
    const done = await waitFor(
      read,
      (r) => r.data?.periodicTask.runs.edges[0]?.node.task?.state === "SUCCESS",
    );
    expect(done.errors).toBeUndefined();
    const p = done.data!.periodicTask;
    expect(p.nextRunAt).toBe(row.nextRunAt);
    expect(p.totalRunCount).toBe(0);
    expect(p.runs.totalCount).toBe(1);
    expect(p.runs.edges[0]?.node).toMatchObject({
      taskId: run.taskId,
      task: { state: "SUCCESS", result: "'report adhoc'" },
    });
    expect(headersSeen.some((h) => h.periodic_task_name === "run me")).toBe(true);
  });

  it("hides the arguments of redacted tasks, in answers and in the audit trail", async () => {
    const row = await create({
      name: "secret schedule",
      task: "secret.rotate",
      args: ["hunter2"],
      schedule: { interval: { every: 1, period: "DAYS" } },
    });
    expect(row.args).toBe("[redacted]");
    const audit = await t.gql<{
      auditLog: { edges: Array<{ node: { action: string; input: Record<string, unknown> } }> };
    }>(`{ auditLog(first: 1, action: "createPeriodicTask") { edges { node { action input } } } }`);
    expect(JSON.stringify(audit.data)).not.toContain("hunter2");
  });
});

describe("the audit trail", () => {
  it("records every change, failed ones included", async () => {
    const audit = await t.gql<{
      auditLog: { edges: Array<{ node: { action: string; outcome: string; actor: string } }> };
    }>(`{ auditLog(first: 200) { edges { node { action outcome actor } } } }`);
    const entries = audit.data!.auditLog.edges.map((e) => e.node);
    const actions = new Set(entries.map((e) => e.action));
    for (const a of [
      "createPeriodicTask",
      "updatePeriodicTask",
      "setPeriodicTaskEnabled",
      "deletePeriodicTask",
      "runPeriodicTaskNow",
    ])
      expect(actions, a).toContain(a);
    expect(entries.some((e) => e.action === "createPeriodicTask" && e.outcome === "error")).toBe(
      true,
    );
    expect(
      entries.some((e) => e.action === "runPeriodicTaskNow" && e.actor === "test operator"),
    ).toBe(true);
  });
});
