/**
 * `npm run bench:beat`: the beat with 10,000 enabled schedules on a real Postgres, sending to a
 * real Redis.
 *
 * 1. burst: 10,000 interval schedules sharing one phase (every 30 s), so all fall due at the same
 *    instant; two bursts.
 * 2. spread: 10,000 schedules every 10 s with random phases: a steady 1,000 due per second.
 * 3. idle: 10,000 yearly crontabs, none due: the beat's CPU while it waits.
 *
 * Lateness is measured per run as (sent_at − scheduled time), sent_at being when the broker had
 * taken the message: an upper bound. Each phase also reports how long `beat.stop()` took, and
 * fails if it does not return within 30 s. Options: --n 10000, --idle-seconds 20,
 * --only burst,spread,idle.
 */

import { pino } from "pino";
import { createApp } from "../../sdk/src/index.js";
import { Beat } from "../../server/src/beat/beat.js";
import { appSender } from "../../server/src/beat/message.js";
import { type Database, openDatabase } from "../../server/src/db/database.js";
import { migrate } from "../../server/src/db/migrate.js";
import { createTestDatabase } from "../helpers/postgres.js";

const args = process.argv.slice(2);
const flag = (name: string, fallback: string) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? (args[i + 1] ?? fallback) : fallback;
};
const N = Number(flag("n", "10000"));
const IDLE_SECONDS = Number(flag("idle-seconds", "20"));
const ONLY = new Set(flag("only", "burst,spread,idle").split(","));
const REDIS = `${process.env.BENCH_REDIS ?? "redis://127.0.0.1:6379"}/11`;
const QUEUE = `bench-beat-${process.pid}`;
const logger = pino({ level: process.env.BENCH_LOG_LEVEL ?? "warn" });
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Lateness {
  runs: number;
  within1s: number;
  /** Runs due more than 1 s ago and still not sent. */
  overdue: number;
  p50: number;
  p99: number;
  max: number;
}

async function lateness(db: Database): Promise<Lateness> {
  const [row] = await db.query<Lateness>(
    `WITH l AS (SELECT extract(epoch FROM sent_at - scheduled_for) * 1000 AS ms FROM periodic_task_runs WHERE status = 'sent')
     SELECT count(*)::int AS runs, (count(*) FILTER (WHERE ms <= 1000))::int AS "within1s",
       (SELECT count(*)::int FROM periodic_task_runs
        WHERE status = 'pending' AND scheduled_for < now() - interval '1 second') AS overdue,
       percentile_cont(0.5) WITHIN GROUP (ORDER BY ms)::float8 AS p50,
       percentile_cont(0.99) WITHIN GROUP (ORDER BY ms)::float8 AS p99, max(ms)::float8 AS max FROM l`,
  );
  return row as Lateness;
}

async function reset(db: Database): Promise<void> {
  await db.query("TRUNCATE periodic_task_runs, periodic_tasks");
}

/** The beat's statements (each one round trip), on its pool and on its session. */
function counted(db: Database): { db: Database; statements: () => number } {
  let n = 0;
  const wrapped: Database = Object.create(db);
  wrapped.query = (text, params) => {
    n++;
    return db.query(text, params);
  };
  wrapped.session = async (onLost) => {
    const session = await db.session(onLost);
    return {
      ...session,
      query: (text, params) => {
        n++;
        return session.query(text, params);
      },
    };
  };
  return { db: wrapped, statements: () => n };
}

async function withBeat<T>(
  url: string,
  during: (beat: Beat) => Promise<T>,
): Promise<{ result: T; loadMs: number; stopMs: number; statements: number }> {
  const app = createApp({ broker: REDIS, resultBackend: null, taskSendSentEvent: true });
  await app.connect();
  const db = await openDatabase(url);
  const counter = counted(db);
  const beat = new Beat({ db: counter.db, send: appSender(app), logger }, { name: "bench-beat" });
  let stopMs = 0;
  const t0 = performance.now();
  await beat.start();
  while (!(beat.leading && beat.status().entries > 0)) await sleep(10);
  const loadMs = performance.now() - t0;
  let result: T;
  try {
    result = await during(beat);
  } finally {
    const s0 = performance.now();
    let watchdog: NodeJS.Timeout | undefined;
    await Promise.race([
      beat.stop(),
      new Promise((_, reject) => {
        watchdog = setTimeout(
          () => reject(new Error("beat.stop() did not return within 30 s")),
          30_000,
        );
      }),
    ]);
    clearTimeout(watchdog);
    stopMs = performance.now() - s0;
    await (await app.connect()).broker.deleteQueue(QUEUE).catch(() => {});
    await app.close();
    await db.close();
  }
  return { result, loadMs, stopMs, statements: counter.statements() };
}

function row(name: string, l: Lateness, extra = ""): string {
  const due = l.runs + l.overdue;
  const pct = due ? ((100 * l.within1s) / due).toFixed(2) : "n/a";
  return `${name.padEnd(8)} runs ${String(l.runs).padStart(6)}  within 1 s ${pct.padStart(6)}%  p50 ${l.p50?.toFixed(0).padStart(5)} ms  p99 ${l.p99?.toFixed(0).padStart(5)} ms  max ${l.max?.toFixed(0).padStart(5)} ms  overdue ${l.overdue}${extra}`;
}

async function main(): Promise<void> {
  const database = await createTestDatabase("celeriac_bench_beat");
  const db = await openDatabase(database.url);
  const out: Record<string, unknown> = { n: N };
  try {
    await migrate(db);

    // 1. burst: every entry due at the same instant, twice.
    if (ONLY.has("burst")) {
      const phase = Math.ceil((Date.now() + 15_000) / 30_000) * 30_000;
      await db.query(
        `INSERT INTO periodic_tasks (name, task, queue, schedule_type, interval_every, interval_period, start_time)
       SELECT 'burst ' || i, 'bench.noop', $2, 'interval', 30, 'seconds', to_timestamp($1 / 1000.0)
       FROM generate_series(1, ${N}) AS i`,
        [phase, QUEUE],
      );
      const burst = await withBeat(database.url, async () => {
        while (Date.now() < phase + 30_000 + 5_000) await sleep(200);
        return lateness(db);
      });
      console.log(
        row(
          "burst",
          burst.result,
          `  (load ${burst.loadMs.toFixed(0)} ms, stop ${burst.stopMs.toFixed(0)} ms, ${burst.statements} statements)`,
        ),
      );
      out.burst = {
        ...burst.result,
        loadMs: Math.round(burst.loadMs),
        stopMs: Math.round(burst.stopMs),
        statements: burst.statements,
      };
      await reset(db);
    }

    // 2. spread: 1,000 due per second.
    if (ONLY.has("spread")) {
      const start = Date.now() + 8_000;
      await db.query(
        `INSERT INTO periodic_tasks (name, task, queue, schedule_type, interval_every, interval_period, start_time)
       SELECT 'spread ' || i, 'bench.noop', $2, 'interval', 10, 'seconds',
              to_timestamp(($1::float8 + (random() * 10000)::int) / 1000.0)
       FROM generate_series(1, ${N}) AS i`,
        [start, QUEUE],
      );
      const spread = await withBeat(database.url, async () => {
        while (Date.now() < start + 25_000) await sleep(200);
        return lateness(db);
      });
      console.log(
        row(
          "spread",
          spread.result,
          `  (stop ${spread.stopMs.toFixed(0)} ms, ${spread.statements} statements)`,
        ),
      );
      out.spread = {
        ...spread.result,
        stopMs: Math.round(spread.stopMs),
        statements: spread.statements,
      };
      await reset(db);
    }

    // 3. idle: nothing due for months.
    if (ONLY.has("idle")) {
      await db.query(
        `INSERT INTO periodic_tasks (name, task, schedule_type, crontab_minute, crontab_hour, crontab_day_of_week,
         crontab_day_of_month, crontab_month_of_year, timezone)
       SELECT 'idle ' || i, 'bench.noop', 'crontab', (i % 60)::text, (i % 24)::text, '*', '1', '1', 'Europe/Paris'
       FROM generate_series(1, ${N}) AS i`,
      );
      const idle = await withBeat(database.url, async () => {
        await sleep(2000);
        const cpu0 = process.cpuUsage();
        const t0 = performance.now();
        await sleep(IDLE_SECONDS * 1000);
        const cpu = process.cpuUsage(cpu0);
        const wallMs = performance.now() - t0;
        return {
          cpuPercent: (100 * (cpu.user + cpu.system)) / 1000 / wallMs,
          cpuMs: (cpu.user + cpu.system) / 1000,
          wallMs,
        };
      });
      console.log(
        `idle     ${N} entries, ${IDLE_SECONDS} s: ${idle.result.cpuMs.toFixed(0)} ms CPU = ${idle.result.cpuPercent.toFixed(2)}% of one core (load ${idle.loadMs.toFixed(0)} ms, ${idle.statements} statements)`,
      );
      out.idle = {
        ...idle.result,
        loadMs: Math.round(idle.loadMs),
        stopMs: Math.round(idle.stopMs),
        statements: idle.statements,
      };
    }
    console.log(JSON.stringify(out));
  } finally {
    await db.close();
    await database.drop();
  }
}

main().then(
  () => process.exit(0),
  (error) => {
    console.error(error);
    process.exit(1);
  },
);
