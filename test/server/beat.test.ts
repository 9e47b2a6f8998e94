/**
 * The beat on a real Postgres, with a manual clock where waiting would be slow: each kind of
 * schedule fires at its times, three beats over a simulated day fire everything exactly once,
 * a leader that dies hands over without a double fire, edits made in SQL take effect within a
 * second, missed runs follow their policy, and daylight saving in Paris and New York.
 */
import { type Database, migrate, openDatabase } from "@celeriac/server";
import { pino } from "pino";
import { afterEach, describe, expect, it } from "vitest";
import { Beat, type BeatOptionsInput } from "../../server/src/beat/beat.js";
import { type Clock, ManualClock, systemClock } from "../../server/src/beat/clock.js";
import { type RunSender, sendOptionsOf } from "../../server/src/beat/message.js";
import { compileSchedule, firstRun } from "../../server/src/beat/schedule.js";
import { AuditLog } from "../../server/src/services/audit.js";
import { Redaction } from "../../server/src/services/redaction.js";
import {
  type PeriodicTaskInput,
  ScheduleService,
} from "../../server/src/services/schedule-service.js";
import { createTestDatabase, type TestDatabase } from "../helpers/postgres.js";

const SECOND = 1000;
const MIN = 60 * SECOND;
const HOUR = 60 * MIN;
const DAY = 24 * HOUR;
const silent = pino({ level: process.env.TEST_LOG_LEVEL ?? "silent" });

interface Sent {
  taskId: string;
  name: string;
  at: number;
  headers: unknown;
}

interface World {
  database: TestDatabase | null;
  db: Database;
  clock: ManualClock;
  sent: Sent[];
  send: RunSender;
  schedules: ScheduleService;
  newBeat(name: string, options?: BeatOptionsInput, send?: RunSender, clock?: Clock): Promise<Beat>;
  create(
    input: Partial<PeriodicTaskInput> & Pick<PeriodicTaskInput, "name" | "schedule">,
  ): Promise<string>;
  runs(): Promise<
    Array<{
      name: string;
      scheduledFor: number | null;
      trigger: string;
      status: string;
      taskId: string;
    }>
  >;
  terminate(beatName: string): Promise<void>;
}

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c().catch(() => {});
});

async function world(start: number, url?: string): Promise<World> {
  const database = url ? null : await createTestDatabase("celeriac_beat");
  if (database) cleanups.push(() => database.drop());
  const dbUrl = url ?? (database as TestDatabase).url;
  const db = await openDatabase(dbUrl);
  cleanups.push(() => db.close());
  await migrate(db);
  const clock = new ManualClock(start);
  const sent: Sent[] = [];
  const send: RunSender = async (source, taskId) => {
    sent.push({ taskId, name: source.name, at: clock.now(), headers: source.headers });
  };
  const schedules = new ScheduleService(db, new AuditLog(db), new Redaction([]), send, null, {
    clock,
  });
  return {
    database,
    db,
    clock,
    sent,
    send,
    schedules,
    async newBeat(name, options = {}, customSend = send, beatClock: Clock = clock) {
      const own = dbUrl.startsWith("pglite") ? db : await openDatabase(dbUrl);
      const beat = new Beat(
        { db: own, send: customSend, logger: silent, clock: beatClock },
        { name, ...options },
      );
      cleanups.push(async () => {
        await beat.stop();
        if (own !== db) await own.close();
      });
      await beat.listen();
      return beat;
    },
    async create(input) {
      const created = await schedules.create(null, { task: "tasks.tick", ...input });
      return created.id;
    },
    async runs() {
      return db.query(
        `SELECT p.name, (extract(epoch FROM r.scheduled_for) * 1000)::float8 AS "scheduledFor", r.trigger,
           r.status, r.task_id AS "taskId"
         FROM periodic_task_runs r JOIN periodic_tasks p ON p.id = r.periodic_task_id
         ORDER BY r.scheduled_for, p.name`,
      );
    },
    async terminate(beatName) {
      const gone = async () =>
        (await db.query("SELECT 1 FROM pg_stat_activity WHERE application_name = $1", [beatName]))
          .length === 0;
      await db.query(
        "SELECT pg_terminate_backend(pid, 5000) FROM pg_stat_activity WHERE application_name = $1",
        [beatName],
      );
      await until(gone);
    },
  };
}

/** Step the beat from due time to due time until `end`, as its loop would with a perfect timer. */
async function runUntil(w: World, beat: Beat, end: number): Promise<void> {
  await beat.step();
  for (;;) {
    const due = beat.nextDue();
    if (due === null || due > end) break;
    w.clock.set(Math.max(due, w.clock.now()));
    await beat.step();
  }
  w.clock.set(end);
  await beat.step();
}

async function until(check: () => boolean | Promise<boolean>, ms = 5000): Promise<number> {
  const t0 = Date.now();
  while (!(await check())) {
    if (Date.now() - t0 > ms) throw new Error(`condition not met within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 20));
  }
  return Date.now() - t0;
}

const T0 = Date.parse("2026-06-01T00:00:00Z");

/** A send that never finishes (the process died in it) until released. */
function hang(): { hung: Promise<void>; release: () => void } {
  let release!: () => void;
  const hung = new Promise<void>((_, reject) => {
    release = () => reject(new Error("process gone"));
  });
  hung.catch(() => {});
  return { hung, release };
}
const iso = (t: number | null) => (t === null ? null : new Date(t).toISOString());

describe("each kind of schedule", () => {
  it("fires at its times, and one-off and clocked entries disable themselves", {
    timeout: 60_000,
  }, async () => {
    const w = await world(T0);
    await w.create({
      name: "every 10 min",
      schedule: { interval: { every: 10, period: "minutes" } },
    });
    await w.create({
      name: "quarter hours",
      schedule: { crontab: { minute: "*/15", hour: "9-10" } },
    });
    const sunriseId = await w.create({
      name: "sunrise",
      schedule: { solar: { event: "sunrise", latitude: 48.8566, longitude: 2.3522 } },
    });
    await w.create({
      name: "clocked",
      schedule: { clocked: { clockedTime: new Date(T0 + 25 * MIN) } },
    });
    await w.create({
      name: "one-off",
      oneOff: true,
      schedule: { crontab: { minute: "0", hour: "*/6" } },
    });
    await w.create({
      name: "later",
      startTime: new Date(T0 + 23 * HOUR),
      schedule: { interval: { every: 30, period: "minutes" } },
    });
    const beat = await w.newBeat("b1");
    await runUntil(w, beat, T0 + DAY);

    const runs = await w.runs();
    const times = (name: string) => runs.filter((r) => r.name === name).map((r) => r.scheduledFor);
    expect(times("every 10 min")).toEqual(
      Array.from({ length: 144 }, (_, i) => T0 + (i + 1) * 10 * MIN),
    );
    expect(times("quarter hours").map(iso)).toEqual(
      [9, 10].flatMap((h) => [0, 15, 30, 45].map((m) => iso(T0 + h * HOUR + m * MIN))),
    );
    const sunrise = compileSchedule({
      type: "solar",
      event: "sunrise",
      latitude: 48.8566,
      longitude: 2.3522,
    }).next(T0, T0);
    expect(times("sunrise")).toEqual([sunrise]);
    expect(times("clocked")).toEqual([T0 + 25 * MIN]);
    expect(times("one-off")).toEqual([T0 + 6 * HOUR]);
    expect(times("later")).toEqual([T0 + 23 * HOUR, T0 + 23.5 * HOUR, T0 + 24 * HOUR]);
    expect(runs.every((r) => r.status === "sent" && r.trigger === "schedule")).toBe(true);

    // Sent exactly when due, each once, with django-celery-beat's header.
    expect(w.sent.length).toBe(runs.length);
    expect(new Set(w.sent.map((s) => s.taskId)).size).toBe(runs.length);
    const byTask = new Map(runs.map((r) => [r.taskId, r]));
    for (const s of w.sent) expect(s.at).toBe(byTask.get(s.taskId)?.scheduledFor);

    const rows = await w.db.query<{
      name: string;
      enabled: boolean;
      total_run_count: number;
      next_run_at: Date | null;
    }>("SELECT name, enabled, total_run_count, next_run_at FROM periodic_tasks ORDER BY name");
    expect(rows.find((r) => r.name === "clocked")).toMatchObject({
      enabled: false,
      total_run_count: 1,
      next_run_at: null,
    });
    expect(rows.find((r) => r.name === "one-off")).toMatchObject({
      enabled: false,
      total_run_count: 1,
    });
    expect(rows.find((r) => r.name === "every 10 min")).toMatchObject({
      enabled: true,
      total_run_count: 144,
    });
    const sunriseRow = await w.schedules.get(sunriseId);
    expect(sunriseRow?.lastRunAt?.getTime()).toBe(sunrise);
  });

  it("sends with the entry's options and the periodic_task_name header", async () => {
    const w = await world(T0);
    const messages: Array<{ options: unknown }> = [];
    await w.create({
      name: "nightly report",
      queue: "reports",
      priority: 3,
      expireSeconds: 60,
      headers: { tenant: "acme" },
      schedule: { interval: { every: 1, period: "hours" } },
    });
    const beat = await w.newBeat("b1", {}, async (source, taskId) => {
      messages.push({ options: sendOptionsOf(source, taskId) });
    });
    w.clock.set(T0 + HOUR);
    await beat.step();
    await beat.step();
    expect(messages).toHaveLength(1);
    expect(messages[0]?.options).toMatchObject({
      queue: "reports",
      priority: 3,
      expires: 60,
      headers: { tenant: "acme", periodic_task_name: "nightly report" },
    });
  });
});

describe("missed runs", () => {
  it("follow each entry's policy when the beat comes back after an hour", async () => {
    const w = await world(T0);
    for (const policy of ["run_once", "skip", "run_all"] as const)
      await w.create({
        name: policy,
        missedRunPolicy: policy,
        maxMissedRuns: 4,
        schedule: { interval: { every: 10, period: "minutes" } },
      });
    const beat = await w.newBeat("b1");
    await beat.step();
    w.clock.set(T0 + HOUR + 5 * MIN); // down since T0: six times missed (10 … 60 min)
    await beat.step();
    const runs = await w.runs();
    const of = (name: string) =>
      runs.filter((r) => r.name === name).map((r) => [(r.scheduledFor as number) - T0, r.trigger]);
    expect(of("run_once")).toEqual([[60 * MIN, "catch_up"]]);
    expect(of("skip")).toEqual([]);
    expect(of("run_all")).toEqual([30, 40, 50, 60].map((m) => [m * MIN, "catch_up"]));
    // And all three carry on from the next time, not from the outage.
    w.clock.set(T0 + 70 * MIN);
    await beat.step();
    expect((await w.runs()).filter((r) => r.scheduledFor === T0 + 70 * MIN)).toHaveLength(3);
  });
});

describe("daylight saving time, through the beat", () => {
  it("Europe/Paris: 02:30 fires once on the short day and once on the long day", {
    timeout: 30_000,
  }, async () => {
    const start = Date.parse("2026-03-28T00:00:00Z");
    const w = await world(start);
    const schedule = { crontab: { minute: "30", hour: "2", timezone: "Europe/Paris" } };
    const id = await w.create({ name: "02:30", schedule });
    const beat = await w.newBeat("b1");
    await runUntil(w, beat, Date.parse("2026-03-31T00:00:00Z"));
    const skipped = await w.runs();
    // Months later: rescheduled (the cursor restarts from now) rather than catching up.
    w.clock.set(Date.parse("2026-10-24T00:00:00Z"));
    await w.db.query("DELETE FROM periodic_task_runs");
    await w.schedules.update(null, id, { schedule });
    await new Promise((r) => setTimeout(r, 100));
    await runUntil(w, beat, Date.parse("2026-10-27T00:00:00Z"));
    const repeated = await w.runs();
    expect(skipped.map((r) => iso(r.scheduledFor))).toEqual([
      "2026-03-28T01:30:00.000Z",
      "2026-03-29T01:00:00.000Z", // 03:00 CEST: 02:30 did not exist
      "2026-03-30T00:30:00.000Z",
    ]);
    expect(repeated.map((r) => iso(r.scheduledFor))).toEqual([
      "2026-10-24T00:30:00.000Z",
      "2026-10-25T00:30:00.000Z", // 02:30 CEST, and not again at 02:30 CET
      "2026-10-26T01:30:00.000Z",
    ]);
  });

  it("America/New_York: skipped 02:30 at 03:00 EDT, repeated 01:30 once, hourly stays hourly", {
    timeout: 30_000,
  }, async () => {
    const w = await world(Date.parse("2026-03-07T12:00:00Z"));
    await w.create({
      name: "02:30",
      schedule: { crontab: { minute: "30", hour: "2", timezone: "America/New_York" } },
    });
    await w.create({
      name: "01:30",
      schedule: { crontab: { minute: "30", hour: "1", timezone: "America/New_York" } },
    });
    const beat = await w.newBeat("b1");
    await runUntil(w, beat, Date.parse("2026-03-09T00:00:00Z"));
    const spring = await w.runs();
    expect(spring.filter((r) => r.name === "02:30").map((r) => iso(r.scheduledFor))).toEqual([
      "2026-03-08T07:00:00.000Z",
    ]);
    await w.db.query("DELETE FROM periodic_task_runs; DELETE FROM periodic_tasks");
    w.clock.set(Date.parse("2026-10-31T12:00:00Z"));
    await w.create({
      name: "01:30",
      schedule: { crontab: { minute: "30", hour: "1", timezone: "America/New_York" } },
    });
    await w.create({
      name: "hourly",
      schedule: { crontab: { minute: "30", timezone: "America/New_York" } },
    });
    await runUntil(w, beat, Date.parse("2026-11-01T08:00:00Z"));
    const fall = await w.runs();
    expect(fall.filter((r) => r.name === "01:30").map((r) => iso(r.scheduledFor))).toEqual([
      "2026-11-01T05:30:00.000Z",
    ]);
    const hourly = fall.filter((r) => r.name === "hourly").map((r) => r.scheduledFor as number);
    expect(hourly.slice(-4).map(iso)).toEqual([
      "2026-11-01T04:30:00.000Z",
      "2026-11-01T05:30:00.000Z", // 01:30 EDT
      "2026-11-01T06:30:00.000Z", // 01:30 EST
      "2026-11-01T07:30:00.000Z",
    ]);
  });
});

describe("several beats", () => {
  it("three beats over a simulated day: every scheduled time fires once, none twice, across a leader crash", {
    timeout: 180_000,
  }, async () => {
    const w = await world(T0);
    const everies = [1, 2, 3, 5, 7, 10, 15, 30, 60, 90];
    for (const e of everies)
      await w.create({
        name: `every ${e} min`,
        schedule: { interval: { every: e, period: "minutes" } },
      });
    await w.create({ name: "crontab 7,37 past", schedule: { crontab: { minute: "7,37" } } });
    await w.create({
      name: "crontab weekdays 9-17",
      schedule: { crontab: { minute: "*/20", hour: "9-17", dayOfWeek: "mon-fri" } },
    });
    await w.create({
      name: "sunset",
      schedule: { solar: { event: "sunset", latitude: 40.7, longitude: -74 } },
    });
    await w.create({
      name: "clocked noon",
      schedule: { clocked: { clockedTime: new Date(T0 + 12 * HOUR + 10 * SECOND) } },
    });
    // Handover takes one step here; with a grace longer than that, nothing counts as missed.
    const options = { missedGraceMs: 60_000 };
    const alive = [
      await w.newBeat("b1", options),
      await w.newBeat("b2", options),
      await w.newBeat("b3", options),
    ];
    const leaders = new Set<string>();
    const step = 20 * SECOND;
    let crashed = false;
    let restarted = false;
    for (let t = T0; t <= T0 + DAY; t += step) {
      w.clock.set(t);
      await Promise.all(alive.map((b) => b.step()));
      const leading = alive.filter((b) => b.leading);
      expect(leading.length).toBeLessThanOrEqual(1);
      for (const b of leading) leaders.add(b.options.name);
      if (!crashed && t >= T0 + 12 * HOUR) {
        // The leader's process dies: its connection goes, and it does nothing more.
        crashed = true;
        const dead = leading[0] as Beat;
        await w.terminate(dead.options.name);
        alive.splice(alive.indexOf(dead), 1);
      }
      if (!restarted && t >= T0 + 18 * HOUR) {
        restarted = true;
        alive.push(await w.newBeat("b4", options));
      }
    }
    expect(leaders.size).toBeGreaterThanOrEqual(2);

    const runs = await w.runs();
    const rows = await w.db.prisma.periodicTask.findMany();
    for (const row of rows) {
      const schedule = w.schedules.timing(row)!;
      const expected: number[] = [];
      let next = firstRun(schedule, T0);
      const anchor = next as number;
      while (next !== null && next <= T0 + DAY) {
        expected.push(next);
        next = schedule.schedule.next(next, anchor);
      }
      const got = runs.filter((r) => r.name === row.name).map((r) => r.scheduledFor);
      expect(got, row.name).toEqual(expected);
    }
    expect(runs.every((r) => r.status === "sent")).toBe(true);
    const ids = w.sent.map((s) => s.taskId);
    expect(new Set(ids).size).toBe(ids.length);
    expect(ids.length).toBe(runs.length);
  });

  it("a leader that dies after deciding and before sending: the next leader sends it, once", async () => {
    const w = await world(T0);
    await w.create({
      name: "every minute",
      schedule: { interval: { every: 1, period: "minutes" } },
    });
    await w.create({
      name: "every 2 min",
      schedule: { interval: { every: 2, period: "minutes" } },
    });
    const { hung, release } = hang();
    const dying = await w.newBeat("dying", {}, () => hung);
    const other = await w.newBeat("other");
    await dying.step();
    await other.step();
    expect(dying.leading).toBe(true);
    w.clock.set(T0 + 2 * MIN);
    // The decision commits, then the send hangs: the process dies there.
    const stuck = dying.step();
    await until(async () => (await w.runs()).length === 2);
    expect((await w.runs()).every((r) => r.status === "pending")).toBe(true);
    await w.terminate("dying");
    await until(() => !dying.leading);
    await other.step();
    expect(other.leading).toBe(true);
    const runs = await w.runs();
    expect(runs.map((r) => r.status)).toEqual(["sent", "sent"]);
    expect(w.sent.map((s) => s.taskId).sort()).toEqual(runs.map((r) => r.taskId).sort());
    // The next times fire as usual, from the new leader, once.
    w.clock.set(T0 + 3 * MIN);
    await other.step();
    expect((await w.runs()).map((r) => (r.scheduledFor as number) - T0)).toEqual([
      2 * MIN,
      2 * MIN,
      3 * MIN,
    ]);
    release();
    await stuck.catch(() => {});
    expect(new Set(w.sent.map((s) => s.taskId)).size).toBe(w.sent.length);
  });

  it("a leader that dies after deciding ahead: the next one sends at the scheduled time, not before", async () => {
    const w = await world(T0);
    await w.create({
      name: "every minute",
      schedule: { interval: { every: 1, period: "minutes" } },
    });
    const a = await w.newBeat("a");
    const b = await w.newBeat("b");
    await a.step();
    await b.step();
    w.clock.set(T0 + MIN - 500); // within the lookahead: decided, not yet sent
    await a.step();
    expect((await w.runs()).map((r) => [r.scheduledFor, r.status])).toEqual([
      [T0 + MIN, "pending"],
    ]);
    expect(w.sent).toEqual([]);
    await w.terminate("a");
    await until(() => !a.leading);
    w.clock.set(T0 + MIN - 400);
    await b.step();
    expect(b.leading).toBe(true);
    expect(w.sent).toEqual([]);
    expect(b.nextDue()).toBe(T0 + MIN);
    w.clock.set(T0 + MIN);
    await b.step();
    expect(w.sent.map((s) => s.at)).toEqual([T0 + MIN]);
    expect((await w.runs()).map((r) => r.status)).toEqual(["sent"]);
  });

  it("does not send again what the broker took before the leader died (the task was ingested)", async () => {
    const w = await world(T0);
    await w.create({
      name: "every minute",
      schedule: { interval: { every: 1, period: "minutes" } },
    });
    const delivered: string[] = [];
    const { hung, release } = hang();
    const dying = await w.newBeat("dying", {}, async (_source, taskId) => {
      delivered.push(taskId);
      // The broker has it and the control plane ingested its task-sent event…
      await w.db.query(
        "INSERT INTO tasks (id, name, state, sent_at) VALUES ($1, 'tasks.tick', 'PENDING', now())",
        [taskId],
      );
      // …then the process dies before marking the run sent.
      await w.terminate("dying");
      await hung;
    });
    const other = await w.newBeat("other");
    cleanups.push(async () => release());
    await dying.step();
    w.clock.set(T0 + MIN);
    void dying.step();
    await until(() => delivered.length === 1);
    await until(() => !dying.leading);
    await other.step();
    expect(other.leading).toBe(true);
    expect(w.sent).toEqual([]);
    expect((await w.runs()).map((r) => r.status)).toEqual(["sent"]);
  });

  it("takes over within seconds when the leader's connection dies, and within a poll when it stops", {
    timeout: 30_000,
  }, async () => {
    const w = await world(Date.now());
    const fast = { electionIntervalMs: 200, heartbeatMs: 200 };
    const a = await w.newBeat("a", fast, w.send, systemClock);
    const b = await w.newBeat("b", fast, w.send, systemClock);
    await a.start();
    await until(() => a.leading);
    await b.start();
    await new Promise((r) => setTimeout(r, 500));
    expect(b.leading).toBe(false);
    await w.terminate("a");
    const killed = await until(() => b.leading && !a.leading, 5000);
    expect(killed).toBeLessThan(3000);
    // a, whose session failed, stands back and then follows; b stops: a leads within a poll.
    await new Promise((r) => setTimeout(r, 500));
    expect(a.leading).toBe(false);
    await b.stop();
    const stopped = await until(() => a.leading, 5000);
    expect(stopped).toBeLessThan(1000);
  });
});

describe("edits", () => {
  it("take effect within a second, including edits made directly in SQL", {
    timeout: 30_000,
  }, async () => {
    const w = await world(Date.now());
    const realSent: Array<{ name: string; at: number }> = [];
    const beat = await w.newBeat(
      "edits",
      {},
      async (source) => {
        realSent.push({ name: source.name, at: Date.now() });
      },
      systemClock,
    );
    await beat.start();
    await until(() => beat.leading);

    // A row inserted in SQL, due in 300 ms.
    const t0 = Date.now();
    await w.db.query(
      `INSERT INTO periodic_tasks (name, task, schedule_type, clocked_time, one_off)
       VALUES ('sql clocked', 'tasks.tick', 'clocked', now() + interval '300 milliseconds', true)`,
    );
    await until(() => realSent.some((s) => s.name === "sql clocked"), 3000);
    expect(Date.now() - t0).toBeLessThan(1500);

    // A yearly crontab rescheduled in SQL to every second.
    await w.db.query(
      `INSERT INTO periodic_tasks (name, task, schedule_type, crontab_minute, crontab_hour, crontab_day_of_week,
         crontab_day_of_month, crontab_month_of_year, timezone)
       VALUES ('sql edited', 'tasks.tick', 'crontab', '0', '0', '*', '1', '1', 'UTC')`,
    );
    await new Promise((r) => setTimeout(r, 300));
    const t1 = Date.now();
    await w.db.query(
      `UPDATE periodic_tasks SET schedule_type = 'interval', interval_every = 1, interval_period = 'seconds'
       WHERE name = 'sql edited'`,
    );
    await until(() => realSent.some((s) => s.name === "sql edited"), 3000);
    expect(Date.now() - t1).toBeLessThan(2000);

    // Disabled in SQL: it stops within a second.
    await w.db.query("UPDATE periodic_tasks SET enabled = false WHERE name = 'sql edited'");
    await new Promise((r) => setTimeout(r, 1000));
    const count = realSent.filter((s) => s.name === "sql edited").length;
    await new Promise((r) => setTimeout(r, 1500));
    expect(realSent.filter((s) => s.name === "sql edited").length).toBe(count);

    // A row whose schedule cannot be read is skipped, not fatal.
    await w.db.query(
      `INSERT INTO periodic_tasks (name, task, schedule_type, interval_every, interval_period)
       VALUES ('broken', 'tasks.tick', 'interval', 1, 'fortnights')`,
    );
    await new Promise((r) => setTimeout(r, 300));
    expect(beat.leading).toBe(true);
  });
});

describe("scale and engines", () => {
  it("holds 10,000 entries and spends nothing on them while none is due", {
    timeout: 60_000,
  }, async () => {
    const w = await world(T0);
    await w.db.query(
      `INSERT INTO periodic_tasks (name, task, schedule_type, interval_every, interval_period, next_run_at)
       SELECT 'bulk ' || i, 'tasks.tick', 'interval', 3600, 'seconds',
              to_timestamp(${T0 / 1000} + 3600 + (i % 3600)) FROM generate_series(1, 10000) AS i`,
    );
    const beat = await w.newBeat("bulk");
    const t0 = performance.now();
    await beat.step();
    expect(beat.status().entries).toBe(10_000);
    expect(performance.now() - t0).toBeLessThan(5000);
    // Rounds with nothing due read no rows.
    const rounds = performance.now();
    for (let i = 0; i < 20; i++) {
      w.clock.advance(SECOND);
      await beat.step();
    }
    expect((performance.now() - rounds) / 20).toBeLessThan(20);
    // One second's worth falls due: those, and only those, fire.
    w.clock.set(T0 + 3600 * SECOND + 9 * SECOND);
    await beat.step();
    // next_run_at within the first 9 s: i % 3600 = 0 (i = 3600, 7200) or 1..9 (three i each).
    expect(w.sent.length).toBe(29);
  });

  it("ends a round under a steady load: what falls due meanwhile is the next round's", {
    timeout: 60_000,
  }, async () => {
    const w = await world(T0);
    // One entry due every 10 ms, for ever (each every 10 s).
    await w.db.query(
      `INSERT INTO periodic_tasks (name, task, schedule_type, interval_every, interval_period, next_run_at)
       SELECT 'steady ' || i, 'tasks.tick', 'interval', 10, 'seconds',
              to_timestamp(${T0 / 1000} + i / 100.0) FROM generate_series(1, 1000) AS i`,
    );
    // Time passes while the beat works: 10 ms, one more entry due, each time it reads the clock.
    let t = T0;
    const busy: Clock = { now: () => (t += 10), sleep: () => Promise.resolve() };
    const beat = await w.newBeat("steady", {}, w.send, busy);
    const ended = async (round: Promise<void>) =>
      Promise.race([
        round.then(() => true),
        new Promise<boolean>((r) => setTimeout(() => r(false), 20_000)),
      ]);
    expect(await ended(beat.step())).toBe(true);
    t = T0 + 5000;
    expect(await ended(beat.step())).toBe(true);
    // Each scheduled time up to the round's horizon was decided once, and what was due, sent.
    const runs = await w.runs();
    expect(runs.length).toBeGreaterThan(400);
    expect(new Set(runs.map((r) => r.name)).size).toBe(runs.length);
    expect(w.sent.length).toBeGreaterThan(0);
  });

  it("decides thousands due at one instant ahead of it, by as long as deciding them takes", {
    timeout: 60_000,
  }, async () => {
    const w = await world(T0);
    const due = T0 + 60_000;
    await w.db.query(
      `INSERT INTO periodic_tasks (name, task, schedule_type, interval_every, interval_period, next_run_at)
       SELECT 'burst ' || i, 'tasks.tick', 'interval', 60, 'seconds', to_timestamp(${due / 1000})
       FROM generate_series(1, 10000) AS i`,
    );
    const beat = await w.newBeat("burst");
    await beat.step();
    // Outside the 1 s lookahead, but 10,000 take about a second to decide (0.1 ms each until
    // measured, with a margin): they are decided now, none sent before its time.
    w.clock.set(due - 2400);
    await beat.step();
    const decided = await w.runs();
    expect(decided.length).toBe(10_000);
    expect(decided.every((r) => r.status === "pending" && r.scheduledFor === due)).toBe(true);
    expect(w.sent).toEqual([]);
    w.clock.set(due);
    await beat.step();
    expect(w.sent.length).toBe(10_000);
    expect(w.sent.every((s) => s.at === due)).toBe(true);
    expect((await w.runs()).every((r) => r.status === "sent")).toBe(true);
  });

  it("runs on PGlite (dev mode) as on Postgres", async () => {
    const w = await world(T0, "pglite://memory");
    await w.create({
      name: "every minute",
      schedule: { interval: { every: 1, period: "minutes" } },
    });
    const beat = await w.newBeat("pglite");
    await runUntil(w, beat, T0 + 10 * MIN);
    expect((await w.runs()).map((r) => (r.scheduledFor as number) - T0)).toEqual(
      Array.from({ length: 10 }, (_, i) => (i + 1) * MIN),
    );
    // Its trigger announces edits there too.
    await w.db.query("UPDATE periodic_tasks SET interval_every = 5");
    await new Promise((r) => setTimeout(r, 100));
    await beat.step();
    w.clock.set(T0 + 15 * MIN);
    await beat.step();
    expect((await w.runs()).length).toBe(11);
  });
});
