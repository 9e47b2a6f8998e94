/**
 * `celeriac-server schedules …` on a real Postgres, as an operator's shell runs it: creating
 * interval and crontab entries (with a time zone), the API's validation errors with a non-zero
 * exit, listing with next fire times, disabling (which a running beat hears of), running one now
 * on Redis (streamed to the servers' subscribers), deleting, and the audit trail naming the
 * CLI's user.
 */
import { execFile } from "node:child_process";
import os from "node:os";
import { promisify } from "node:util";
import { createApp } from "@celeriac/sdk";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { PubSub } from "../../server/src/pubsub/pubsub.js";
import { createTestDatabase, type TestDatabase } from "../helpers/postgres.js";
import { redisUrl, requireRedis, uniqueName } from "../helpers/services.js";

const run = promisify(execFile);
const CLI = "server/bin/celeriac-server.mjs";
const BROKER = redisUrl(2);
let database: TestDatabase;
let db: pg.Client;

const cli = (args: string[], env: NodeJS.ProcessEnv = {}) =>
  run("node", [CLI, "schedules", ...args], {
    env: { ...process.env, DATABASE_URL: database.url, BROKER_URL: "", ...env },
  });

/** A failed command's exit code and output. */
const failure = (args: string[]) =>
  cli(args).then(
    () => {
      throw new Error(`schedules ${args.join(" ")} succeeded`);
    },
    (error: { code: number; stdout: string; stderr: string }) => error,
  );

async function row(name: string) {
  const r = await db.query(
    "SELECT id, enabled, interval_every, interval_period, crontab_minute, crontab_hour, crontab_day_of_week, timezone, next_run_at, queue FROM periodic_tasks WHERE name = $1",
    [name],
  );
  return r.rows[0] as Record<string, unknown> | undefined;
}

beforeAll(async () => {
  database = await createTestDatabase();
  await cli(["list"]); // migrates, as every schedules command does
  db = new pg.Client({ connectionString: database.url });
  await db.connect();
}, 60_000);

afterAll(async () => {
  await db?.end();
  await database?.drop();
});

describe("celeriac-server schedules", { timeout: 60_000 }, () => {
  it("creates an interval entry and a crontab entry in a time zone, with their next runs", async () => {
    const started = Date.now();
    const heartbeat = await cli([
      "create",
      "heartbeat",
      "--task",
      "ops.heartbeat",
      "--every",
      "30s",
      "--args",
      '["eu"]',
    ]);
    expect(heartbeat.stdout).toMatch(/^heartbeat \(.+\) enabled$/m);
    expect(heartbeat.stdout).toMatch(/schedule +every 30 seconds/);
    const hb = await row("heartbeat");
    expect(hb).toMatchObject({ enabled: true, interval_every: 30, interval_period: "seconds" });
    // An interval's first run is one interval after creation.
    const next = (hb!.next_run_at as Date).getTime();
    expect(next).toBeGreaterThanOrEqual(started + 30_000);
    expect(next).toBeLessThanOrEqual(Date.now() + 30_000);
    expect(heartbeat.stdout).toContain(`next      ${new Date(next).toISOString()}`);

    const nightly = await cli([
      "create",
      "nightly report",
      "--task",
      "reports.nightly",
      "--crontab",
      "30 2 * * mon-fri",
      "--tz",
      "Europe/Paris",
    ]);
    expect(nightly.stdout).toMatch(/schedule +30 2 \* \* mon-fri .* Europe\/Paris/);
    // Three next runs, each at 02:30 on a weekday in Paris.
    const local = [
      ...nightly.stdout.matchAll(/\((\d{4}-\d\d-\d\d) (\d\d:\d\d):00 Europe\/Paris\)/g),
    ];
    expect(local).toHaveLength(3);
    for (const [, day, time] of local) {
      expect(time).toBe("02:30");
      expect(new Date(`${day}T12:00:00Z`).getUTCDay()).not.toBeOneOf([0, 6]);
    }
    expect(await row("nightly report")).toMatchObject({
      crontab_minute: "30",
      crontab_hour: "2",
      crontab_day_of_week: "mon-fri",
      timezone: "Europe/Paris",
    });
  });

  it("refuses a bad crontab with the API's message, the flag at fault and exit code 2", async () => {
    const bad = await failure(["create", "broken", "--task", "x", "--crontab", "0 25 * * *"]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain("invalid schedule: hour: 25 is out of range 0-23");
    expect(bad.stderr).toContain("--crontab (schedule.crontab.hour)");
    const short = await failure(["create", "broken", "--task", "x", "--crontab", "0 2 * *"]);
    expect(short.code).toBe(2);
    expect(short.stderr).toMatch(/expected five fields.*got 4/);
    const zone = await failure([
      "create",
      "broken",
      "--task",
      "x",
      "--crontab",
      "0 2 * * *",
      "--tz",
      "Mars/Olympus",
    ]);
    expect(zone.stderr).toContain(
      '--tz (schedule.crontab.timezone): unknown time zone "Mars/Olympus"',
    );
    const none = await failure(["create", "broken", "--task", "x"]);
    expect(none.stderr).toContain("give exactly one of interval, crontab, solar or clocked");
    expect(await row("broken")).toBeUndefined();
  });

  it("lists every entry with its next fire time", async () => {
    const { stdout } = await cli(["list"]);
    const lines = stdout
      .trim()
      .split("\n")
      .map((l) => l.split("\t"));
    expect(lines.map((l) => l[1])).toEqual(["heartbeat", "nightly report"]);
    const hb = await row("heartbeat");
    expect(lines[0]).toEqual([
      hb!.id,
      "heartbeat",
      "ops.heartbeat",
      "enabled",
      "every 30 seconds",
      `next ${(hb!.next_run_at as Date).toISOString()}`,
    ]);
    expect(lines[1]![5]).toMatch(/^next \S+Z \(\S+ 02:30:00 Europe\/Paris\)$/);
  });

  it("disables an entry, and a running beat is told at once", async () => {
    const listener = new pg.Client({ connectionString: database.url });
    await listener.connect();
    try {
      const heard: string[] = [];
      listener.on("notification", (n) => heard.push(n.payload ?? ""));
      await listener.query("LISTEN celeriac_periodic_tasks");
      const hb = await row("heartbeat");
      const { stdout } = await cli(["disable", "heartbeat"]);
      expect(stdout).toMatch(/^heartbeat \(.+\) disabled$/m);
      expect(await row("heartbeat")).toMatchObject({ enabled: false, next_run_at: null });
      await expect.poll(() => heard.some((p) => p.startsWith(`${hb!.id}:`))).toBe(true);
      const list = await cli(["list"]);
      expect(list.stdout).toContain("heartbeat\tops.heartbeat\tdisabled\tevery 30 seconds\tnext —");
    } finally {
      await listener.end();
    }
  });

  it("runs an entry now on the broker, recorded as a manual run", async () => {
    await requireRedis();
    const queue = uniqueName("schedules-cli");
    await cli(["update", "heartbeat", "--queue", queue]);
    // Servers sharing a pubsub (PUBSUB_URL) stream the run to periodicTaskRuns subscribers.
    const servers = new PubSub(BROKER);
    const stream = servers.subscribe("periodic:run", { filter: (m) => m.name === "heartbeat" });
    const streamed = stream.next();
    let taskId: string | undefined;
    try {
      const sent = await cli(["run", "heartbeat"], { BROKER_URL: BROKER, PUBSUB_URL: BROKER });
      taskId = /^sent ops\.heartbeat as task (\S+)$/m.exec(sent.stdout)?.[1];
      expect(taskId).toBeDefined();
      expect((await streamed).value).toMatchObject({ taskId, taskName: "ops.heartbeat" });
    } finally {
      await stream.return?.();
      await servers.close();
    }
    const runs = await db.query(
      "SELECT trigger, status, task_id FROM periodic_task_runs WHERE task_id = $1",
      [taskId],
    );
    expect(runs.rows).toEqual([{ trigger: "manual", status: "sent", task_id: taskId }]);
    const app = createApp({ broker: BROKER, resultBackend: null });
    try {
      const broker = (await app.connect()).broker;
      expect((await broker.inspectQueue(queue))?.messages).toBe(1);
      await broker.purge(queue);
    } finally {
      await app.close();
    }
    // Without a broker it says what is missing.
    const missing = await failure(["run", "heartbeat"]);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain("BROKER_URL is not set");
  });

  it("deletes an entry; then it is not found (exit code 1)", async () => {
    expect((await cli(["delete", "heartbeat"])).stdout).toMatch(/^deleted heartbeat \(/);
    expect(await row("heartbeat")).toBeUndefined();
    const gone = await failure(["show", "heartbeat"]);
    expect(gone.code).toBe(1);
    expect(gone.stderr).toContain("periodic task heartbeat not found");
  });

  it("records each change in the audit trail as the CLI's user", async () => {
    const audit = await db.query(
      "SELECT actor, action, outcome, token_id FROM audit_entries ORDER BY id",
    );
    const actor = `cli:${os.userInfo().username}`;
    expect(audit.rows).toEqual(
      [
        ["createPeriodicTask", "ok"],
        ["createPeriodicTask", "ok"],
        ["createPeriodicTask", "error"], // hour 25
        ["createPeriodicTask", "error"], // Mars/Olympus
        ["createPeriodicTask", "error"], // no schedule
        ["setPeriodicTaskEnabled", "ok"],
        ["updatePeriodicTask", "ok"],
        ["runPeriodicTaskNow", "ok"],
        ["deletePeriodicTask", "ok"],
      ].map(([action, outcome]) => ({ actor, action, outcome, token_id: null })),
    );
  });
});
