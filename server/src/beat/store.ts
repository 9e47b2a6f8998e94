/**
 * The beat's SQL. Plain SQL rather than Prisma because it runs on the leader's own session (the
 * connection that holds the lock) and works in batches. Times cross as epoch milliseconds and
 * batches as one JSON parameter, which both engines (pg and PGlite) read the same way.
 */
import type { Sql } from "../db/database.js";
import type { EntryRow } from "./entry.js";

const ms = (column: string) => `(extract(epoch FROM ${column}) * 1000)::float8`;

/**
 * Marks the current transaction as the beat's, so the periodic_tasks trigger takes its writes for
 * bookkeeping (no version bump, no notification) rather than edits.
 */
export async function asBeat(sql: Sql): Promise<void> {
  await sql.query("SELECT set_config('celeriac.beat', 'on', true)");
}

const ENTRY_COLUMNS = `id, version, name, task, args, kwargs, queue, exchange, enabled,
  routing_key AS "routingKey", priority, headers, ${ms("expires")} AS expires,
  expire_seconds AS "expireSeconds", one_off AS "oneOff", ${ms("start_time")} AS "startTime",
  schedule_type AS "scheduleType", interval_every AS "intervalEvery", interval_period AS "intervalPeriod",
  crontab_minute AS "crontabMinute", crontab_hour AS "crontabHour",
  crontab_day_of_week AS "crontabDayOfWeek", crontab_day_of_month AS "crontabDayOfMonth",
  crontab_month_of_year AS "crontabMonthOfYear", timezone, solar_event AS "solarEvent", latitude,
  longitude, ${ms("clocked_time")} AS "clockedTime", missed_run_policy AS "missedRunPolicy",
  max_missed_runs AS "maxMissedRuns", ${ms("next_run_at")} AS "nextRunAt"`;

export function loadEnabled(sql: Sql): Promise<EntryRow[]> {
  return sql.query<EntryRow>(`SELECT ${ENTRY_COLUMNS} FROM periodic_tasks WHERE enabled`);
}

/** The rows among `ids` that still exist (enabled or not). */
export function loadByIds(sql: Sql, ids: string[]): Promise<EntryRow[]> {
  return sql.query<EntryRow>(
    `SELECT ${ENTRY_COLUMNS} FROM periodic_tasks WHERE id IN (SELECT jsonb_array_elements_text($1::jsonb))`,
    [JSON.stringify(ids)],
  );
}

/**
 * Changes whenever any entry is edited, added or removed (not when the beat fires): a cheap
 * check that no notification was lost.
 */
export async function fingerprint(sql: Sql): Promise<string> {
  const [row] = await sql.query<Record<string, unknown>>(
    `SELECT count(*)::int AS n, count(*) FILTER (WHERE enabled)::int AS e,
       coalesce(sum(version), 0)::float8 AS v, ${ms("max(updated_at)")} AS u FROM periodic_tasks`,
  );
  return JSON.stringify(row);
}

export interface CursorUpdate {
  id: string;
  version: number;
  next: number | null;
}

/** Set the cursor of rows that have none (edited in SQL); returns the ids updated. */
export async function setCursors(sql: Sql, updates: CursorUpdate[]): Promise<Set<string>> {
  await asBeat(sql);
  const rows = await sql.query<{ id: string }>(
    `UPDATE periodic_tasks p SET next_run_at = to_timestamp(i.next / 1000.0)
     FROM jsonb_to_recordset($1::jsonb) AS i(id text, version int, next float8)
     WHERE p.id = i.id AND p.version = i.version AND p.enabled AND p.next_run_at IS NULL
     RETURNING p.id`,
    [JSON.stringify(updates)],
  );
  return new Set(rows.map((r) => r.id));
}

export interface Advance {
  id: string;
  version: number;
  /** The cursor the decision was made on. */
  due: number;
  next: number | null;
  disable: boolean;
  runs: number;
  /** The latest scheduled time among its runs (becomes last_run_at); null without runs. */
  lastRun: number | null;
}

export interface NewRun {
  periodicTaskId: string;
  scheduledFor: number;
  trigger: string;
  taskId: string;
  taskName: string;
}

export interface FiredRun {
  runId: string;
  periodicTaskId: string;
  taskId: string;
}

/**
 * The decision to fire, in one statement: advance each entry whose cursor and version are still
 * what the decision was based on, and record the runs of exactly those entries. An entry edited
 * or fired by someone else meanwhile is left alone, and neither advances nor runs.
 */
export async function fire(
  sql: Sql,
  advances: Advance[],
  runs: NewRun[],
  now: number,
): Promise<{ advanced: Map<string, number>; fired: FiredRun[] }> {
  await asBeat(sql);
  const rows = await sql.query<{
    kind: string;
    id: string;
    version: number | null;
    run_id: string | null;
    task_id: string | null;
  }>(
    `WITH input AS (
       SELECT * FROM jsonb_to_recordset($1::jsonb)
         AS i(id text, version int, due float8, next float8, disable bool, runs int, "lastRun" float8)
     ), advanced AS (
       UPDATE periodic_tasks p SET
         next_run_at = to_timestamp(i.next / 1000.0),
         last_run_at = coalesce(to_timestamp(i."lastRun" / 1000.0), p.last_run_at),
         total_run_count = p.total_run_count + i.runs,
         enabled = p.enabled AND NOT i.disable
       FROM input i
       WHERE p.id = i.id AND p.version = i.version AND p.enabled
         AND ${ms("p.next_run_at")} = i.due
       RETURNING p.id, p.version
     ), runs AS (
       INSERT INTO periodic_task_runs (periodic_task_id, scheduled_for, trigger, task_id, task_name, decided_at)
       SELECT r."periodicTaskId", to_timestamp(r."scheduledFor" / 1000.0), r.trigger, r."taskId",
              r."taskName", to_timestamp($3 / 1000.0)
       FROM jsonb_to_recordset($2::jsonb)
         AS r("periodicTaskId" text, "scheduledFor" float8, trigger text, "taskId" text, "taskName" text)
       WHERE r."periodicTaskId" IN (SELECT id FROM advanced)
       ON CONFLICT DO NOTHING
       RETURNING id, periodic_task_id, task_id
     )
     SELECT 'advanced' AS kind, id, version, NULL::text AS run_id, NULL::text AS task_id FROM advanced
     UNION ALL
     SELECT 'run', periodic_task_id, NULL, id::text, task_id FROM runs`,
    [JSON.stringify(advances), JSON.stringify(runs), now],
  );
  const advanced = new Map<string, number>();
  const fired: FiredRun[] = [];
  for (const r of rows)
    if (r.kind === "advanced") advanced.set(r.id, r.version as number);
    else
      fired.push({ runId: r.run_id as string, periodicTaskId: r.id, taskId: r.task_id as string });
  return { advanced, fired };
}

export interface PendingRun {
  runId: string;
  periodicTaskId: string;
  taskId: string;
  scheduledFor: number | null;
}

/**
 * The beat's runs decided before `before` and not known to be sent (runs started by hand are the
 * API's to finish); with `dueBy`, only those scheduled by then (a retry sweep has no business
 * with runs decided ahead, which wait in the leader's memory). Those whose task the control
 * plane has heard of (an event about it was ingested) were sent: they are marked so, and not
 * returned.
 */
export async function pendingRuns(
  sql: Sql,
  before: number,
  dueBy: number | null = null,
  limit = 20_000,
): Promise<PendingRun[]> {
  const pending = `r.status = 'pending' AND r.trigger <> 'manual' AND r.decided_at < to_timestamp($1 / 1000.0)
    AND ($2::float8 IS NULL OR r.scheduled_for IS NULL OR r.scheduled_for <= to_timestamp($2 / 1000.0))`;
  await sql.query(
    `UPDATE periodic_task_runs r SET status = 'sent', sent_at = coalesce(t.sent_at, t.created_at)
     FROM tasks t WHERE ${pending} AND t.id = r.task_id`,
    [before, dueBy],
  );
  return sql.query<PendingRun>(
    `SELECT r.id::text AS "runId", r.periodic_task_id AS "periodicTaskId", r.task_id AS "taskId",
       ${ms("r.scheduled_for")} AS "scheduledFor"
     FROM periodic_task_runs r WHERE ${pending}
     ORDER BY r.scheduled_for, r.id LIMIT $3`,
    [before, dueBy, limit],
  );
}

export interface SentMark {
  runId: string;
  /** When the broker took the message (epoch ms). */
  at: number;
}

/** Runs published: one statement for a whole batch, each with its own time. */
export async function markSent(sql: Sql, marks: SentMark[]): Promise<void> {
  if (marks.length === 0) return;
  await sql.query(
    `UPDATE periodic_task_runs r SET status = 'sent', sent_at = to_timestamp(i.at / 1000.0),
       attempts = r.attempts + 1, error = NULL
     FROM jsonb_to_recordset($1::jsonb) AS i(id bigint, at float8)
     WHERE r.id = i.id AND r.status = 'pending'`,
    [JSON.stringify(marks.map((m) => ({ id: m.runId, at: m.at })))],
  );
}

export interface FailedMark {
  runId: string;
  error: string;
}

/** Sends that failed stay pending (to be sent again); only the attempts are noted. */
export async function markAttempts(sql: Sql, marks: FailedMark[]): Promise<void> {
  if (marks.length === 0) return;
  await sql.query(
    `UPDATE periodic_task_runs r SET attempts = r.attempts + 1, error = i.error
     FROM jsonb_to_recordset($1::jsonb) AS i(id bigint, error text)
     WHERE r.id = i.id`,
    [JSON.stringify(marks.map((m) => ({ id: m.runId, error: m.error.slice(0, 2000) })))],
  );
}

/**
 * Delete runs fired before `before`, in slices, while `more()` says so; returns how many. Slices
 * keep each statement short next to the beat's own writes.
 */
export async function pruneRuns(sql: Sql, before: number, more = () => true): Promise<number> {
  let total = 0;
  while (more()) {
    const rows = await sql.query<{ n: number }>(
      `WITH gone AS (
         DELETE FROM periodic_task_runs WHERE id IN (
           SELECT id FROM periodic_task_runs WHERE decided_at < to_timestamp($1 / 1000.0) LIMIT 10000)
         RETURNING 1)
       SELECT count(*)::int AS n FROM gone`,
      [before],
    );
    const n = rows[0]?.n ?? 0;
    total += n;
    if (n < 10000) break;
  }
  return total;
}
