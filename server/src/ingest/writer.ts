/**
 * Writes a folded batch in one transaction, each table in one statement (two for tasks already
 * known), and returns what actually changed, for the pubsub: tasks whose row changed, timeline
 * events not seen before (several server instances may receive the same event: the unique key
 * decides which one writes it), workers whose news is newer, and new logs.
 */
import type { Sql } from "../db/database.js";
import type { Task, TaskEvent, TaskLog, Worker } from "../generated/prisma/client.js";
import type { Batch, TaskChange, TimelineEvent } from "./batch.js";

/** Rows come back in Prisma's shape (camelCase, via column aliases), so the API reads them alike. */
export type TaskRow = Task;
export type TimelineRow = Omit<TaskEvent, "id"> & { id: string };
export type WorkerRow = Worker;
export type LogRow = Omit<TaskLog, "id"> & { id: string };

const camel = (column: string) => column.replace(/_([a-z])/g, (_, c: string) => c.toUpperCase());
/** `RETURNING` list aliasing each column to its Prisma field name. */
const returning = (alias: string, columns: string[]) =>
  columns.map((c) => `${alias}.${c} AS "${camel(c)}"`).join(", ");

const TASK_COLUMNS = [
  "id",
  "name",
  "state",
  "args_repr",
  "kwargs_repr",
  "args",
  "kwargs",
  "result",
  "exception",
  "traceback",
  "retries",
  "queue",
  "exchange",
  "routing_key",
  "worker",
  "parent_id",
  "root_id",
  "group_id",
  "eta",
  "expires",
  "runtime",
  "sent_at",
  "received_at",
  "started_at",
  "succeeded_at",
  "failed_at",
  "retried_at",
  "revoked_at",
  "rejected_at",
  "rerun_of",
  "created_at",
  "updated_at",
];
const WORKER_COLUMNS = [
  "hostname",
  "pid",
  "sw_ident",
  "sw_ver",
  "sw_sys",
  "freq",
  "active",
  "processed",
  "loadavg",
  "queues",
  "concurrency",
  "offline",
  "last_heartbeat",
  "first_seen",
  "updated_at",
];
/**
 * Task rows come back with their times as epoch milliseconds, made Dates here: a number is read
 * several times faster than a timestamp's text, and a batch returns a dozen times per task.
 */
const TASK_TIMES = [
  "eta",
  "expires",
  "sent_at",
  "received_at",
  "started_at",
  "succeeded_at",
  "failed_at",
  "retried_at",
  "revoked_at",
  "rejected_at",
  "created_at",
  "updated_at",
];
const taskReturning = (alias: string) =>
  TASK_COLUMNS.map((c) =>
    TASK_TIMES.includes(c)
      ? `(extract(epoch FROM ${alias}.${c}) * 1000)::float8 AS "${camel(c)}"`
      : `${alias}.${c} AS "${camel(c)}"`,
  ).join(", ");
const TIME_FIELDS = TASK_TIMES.map(camel) as Array<keyof TaskRow>;

function taskRows(rows: TaskRow[]): TaskRow[] {
  for (const row of rows) {
    const r = row as unknown as Record<string, number | Date | null>;
    for (const f of TIME_FIELDS) if (r[f] !== null) r[f] = new Date(r[f] as number);
  }
  return rows;
}

const LOG_COLUMNS = [
  "id",
  "task_id",
  "task_name",
  "retries",
  "hostname",
  "clock",
  "timestamp",
  "level",
  "msg",
  "data",
];

export interface Written {
  tasks: TaskRow[];
  timeline: TimelineRow[];
  workers: Array<WorkerRow & { eventType: string }>;
  logs: LogRow[];
}

/**
 * The high-volume statements take their rows as one typed array per column (`unnest`): Postgres
 * reads arrays of scalars several times faster than it takes apart a JSON array of objects
 * (profiled: the JSON input was a third of the CPU of writing a task). The array literals are
 * made here, as strings, rather than by the driver: both engines take them as they are, and
 * this is several times cheaper than node-postgres' general-purpose array serializer.
 */
type Column<T> = readonly [name: string, type: string, value: (row: T) => unknown];

const NEEDS_ESCAPE = /[\\"]/;

/** An array literal of scalars. Every element is quoted, so only `\` and `"` need escaping. */
function arrayLiteral(values: readonly unknown[]): string {
  const parts = new Array<string>(values.length);
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    if (v === undefined || v === null) parts[i] = "NULL";
    else if (typeof v !== "string") parts[i] = String(v);
    else parts[i] = NEEDS_ESCAPE.test(v) ? `"${v.replace(/[\\"]/g, "\\$&")}"` : `"${v}"`;
  }
  return `{${parts.join(",")}}`;
}

/**
 * An array literal of JSON texts, escaped by JSON.stringify itself: serialized JSON holds no raw
 * control characters or lone surrogates, so serializing the texts again escapes only `"` and
 * `\`, as an array literal wants them (and JSON's `null` is an array literal's NULL).
 */
function jsonArrayLiteral(values: readonly unknown[]): string {
  const texts = values.map((v) => (v === undefined ? null : JSON.stringify(v)));
  return `{${JSON.stringify(texts).slice(1, -1)}}`;
}

/**
 * The rows as a subquery, `(SELECT unnest($1::text[]) AS id, …)`, and its parameters. The arrays
 * are unnested side by side in the select list, which streams the rows, where `unnest(…)` in
 * FROM would first copy each column into a tuplestore of its own.
 */
function unnest<T>(rows: readonly T[], columns: readonly Column<T>[]) {
  return {
    rows: `(SELECT ${columns.map(([name, type], i) => `unnest($${i + 1}::${type}[]) AS ${name}`).join(", ")})`,
    params: columns.map(([, type, value]) =>
      type === "jsonb" ? jsonArrayLiteral(rows.map(value)) : arrayLiteral(rows.map(value)),
    ),
  };
}

const TASK_INPUT: Column<TaskChange>[] = [
  ["id", "text", (c) => c.id],
  ["state", "text", (c) => c.state],
  ["after_retry", "boolean", (c) => c.after_retry],
  ["name", "text", (c) => c.name],
  ["args_repr", "text", (c) => c.args_repr],
  ["kwargs_repr", "text", (c) => c.kwargs_repr],
  ["args", "jsonb", (c) => c.args],
  ["kwargs", "jsonb", (c) => c.kwargs],
  ["result", "text", (c) => c.result],
  ["exception", "text", (c) => c.exception],
  ["traceback", "text", (c) => c.traceback],
  ["retries", "int", (c) => c.retries],
  ["queue", "text", (c) => c.queue],
  ["exchange", "text", (c) => c.exchange],
  ["routing_key", "text", (c) => c.routing_key],
  ["worker", "text", (c) => c.worker],
  ["parent_id", "text", (c) => c.parent_id],
  ["root_id", "text", (c) => c.root_id],
  ["group_id", "text", (c) => c.group_id],
  ["eta", "timestamptz", (c) => c.eta],
  ["expires", "timestamptz", (c) => c.expires],
  ["runtime", "float8", (c) => c.runtime],
  ["sent_at", "timestamptz", (c) => c.sent_at],
  ["received_at", "timestamptz", (c) => c.received_at],
  ["started_at", "timestamptz", (c) => c.started_at],
  ["succeeded_at", "timestamptz", (c) => c.succeeded_at],
  ["failed_at", "timestamptz", (c) => c.failed_at],
  ["retried_at", "timestamptz", (c) => c.retried_at],
  ["revoked_at", "timestamptz", (c) => c.revoked_at],
  ["rejected_at", "timestamptz", (c) => c.rejected_at],
  ["updated_at", "timestamptz", (c) => c.updated_at],
];
const TASK_ROWS = unnest([], TASK_INPUT).rows;

const TIMELINE_INPUT: Column<TimelineEvent>[] = [
  ["task_id", "text", (e) => e.task_id],
  ["type", "text", (e) => e.type],
  ["hostname", "text", (e) => e.hostname],
  ["clock", "int", (e) => e.clock],
  ["timestamp", "timestamptz", (e) => e.timestamp],
  ["fields", "jsonb", (e) => e.fields],
];

const FACTS = [
  "name",
  "args_repr",
  "kwargs_repr",
  "args",
  "kwargs",
  "result",
  "exception",
  "traceback",
  "queue",
  "exchange",
  "routing_key",
  "worker",
  "parent_id",
  "root_id",
  "group_id",
  "eta",
  "expires",
  "runtime",
  "sent_at",
  "received_at",
  "started_at",
  "succeeded_at",
  "failed_at",
  "retried_at",
  "revoked_at",
  "rejected_at",
];

/**
 * A task new to the database is inserted whole, with the batch's state and facts: one write per
 * row (each write of a task row touches every one of its indexes). Rows that already exist are
 * left to the merge below. ON CONFLICT DO NOTHING waits for a row another instance is inserting
 * concurrently: once it commits, the row counts as existing, and the merge (a later statement,
 * so a later snapshot) sees it.
 */
const INSERT_TASKS = `
INSERT INTO tasks (id, state, retries, updated_at, ${FACTS.join(", ")})
SELECT id, state, GREATEST(COALESCE(retries, 0), 0), updated_at, ${FACTS.join(", ")}
FROM ${TASK_ROWS} i ORDER BY id
ON CONFLICT (id) DO NOTHING
RETURNING ${taskReturning("tasks")}`;

/**
 * Existing rows are locked in id order (so that instances writing overlapping batches cannot
 * deadlock; the lock also keeps retention from deleting them before the events are in), then
 * merged with Celery's rule: a stronger state wins, a RETRY in the batch lets an
 * unfinished task start over, a finished task never moves back.
 */
const LOCK_TASKS = `SELECT id FROM tasks WHERE id = ANY($1::text[]) ORDER BY id FOR UPDATE`;

const MERGE_TASKS = `
UPDATE tasks t SET
  state = CASE
    WHEN i.after_retry AND t.state NOT IN ('SUCCESS', 'FAILURE', 'REVOKED') THEN i.state
    WHEN t.state = 'RETRY' THEN i.state
    WHEN celeriac_state_rank(i.state) >= celeriac_state_rank(t.state) THEN i.state
    ELSE t.state END,
  retries = GREATEST(t.retries, COALESCE(i.retries, 0)),
  updated_at = GREATEST(t.updated_at, i.updated_at),
  ${FACTS.map((f) => `${f} = COALESCE(i.${f}, t.${f})`).join(",\n  ")}
FROM ${TASK_ROWS} i
WHERE t.id = i.id
RETURNING ${taskReturning("t")}`;

/**
 * New timeline events, each returned as its database id with its position in the batch (1-based):
 * far less for Postgres to send and for us to read back than the event's key columns. The
 * positions come from the key columns alone (the same parameters, read once).
 */
const INSERT_TIMELINE = `
WITH inserted AS (
  INSERT INTO task_events (task_id, type, hostname, clock, timestamp, fields)
  SELECT * FROM ${unnest([], TIMELINE_INPUT).rows} i
  ON CONFLICT (task_id, type, hostname, clock) DO NOTHING
  RETURNING id, task_id, type, hostname, clock
)
SELECT inserted.id, k.n
FROM inserted JOIN (SELECT unnest($1::text[]) AS task_id, unnest($2::text[]) AS type,
    unnest($3::text[]) AS hostname, unnest($4::int[]) AS clock,
    generate_subscripts($1::text[], 1) AS n) k
  USING (task_id, type, hostname, clock)`;

/** A worker row only changes for news newer than what it holds (another instance may have written it). */
const UPSERT_WORKERS = `
WITH i AS (
  SELECT * FROM jsonb_to_recordset($1::jsonb) AS i(hostname text, type text, pid int,
    sw_ident text, sw_ver text, sw_sys text, freq float8, active int, processed int,
    loadavg float8[], offline boolean, last_heartbeat timestamptz)
  ORDER BY hostname
)
INSERT INTO workers AS w (hostname, pid, sw_ident, sw_ver, sw_sys, freq, active, processed,
  loadavg, offline, last_heartbeat, updated_at)
SELECT hostname, pid, sw_ident, sw_ver, sw_sys, COALESCE(freq, 2), COALESCE(active, 0),
  COALESCE(processed, 0), loadavg, offline, last_heartbeat, now()
FROM i
ON CONFLICT (hostname) DO UPDATE SET
  pid = COALESCE(excluded.pid, w.pid),
  sw_ident = COALESCE(excluded.sw_ident, w.sw_ident),
  sw_ver = COALESCE(excluded.sw_ver, w.sw_ver),
  sw_sys = COALESCE(excluded.sw_sys, w.sw_sys),
  freq = excluded.freq,
  active = excluded.active,
  processed = excluded.processed,
  loadavg = COALESCE(excluded.loadavg, w.loadavg),
  offline = excluded.offline,
  last_heartbeat = excluded.last_heartbeat,
  updated_at = now()
WHERE w.last_heartbeat IS NULL OR excluded.last_heartbeat > w.last_heartbeat
  OR excluded.offline <> w.offline
RETURNING ${returning("w", WORKER_COLUMNS)},
  (SELECT type FROM i WHERE i.hostname = w.hostname) AS "eventType"`;

const INSERT_LOGS = `
INSERT INTO task_logs (task_id, task_name, retries, hostname, clock, timestamp, level, msg, data)
SELECT task_id, task_name, retries, hostname, clock, timestamp, level, msg, data
FROM jsonb_to_recordset($1::jsonb) AS i(task_id text, task_name text, retries int,
  hostname text, clock int, timestamp timestamptz, level text, msg text, data jsonb)
ON CONFLICT (hostname, clock, timestamp) DO NOTHING
RETURNING ${returning("task_logs", LOG_COLUMNS)}`;

export async function writeBatch(sql: Sql, batch: Batch): Promise<Written> {
  const written: Written = { tasks: [], timeline: [], workers: [], logs: [] };
  if (batch.tasks.size > 0) {
    let pending = [...batch.tasks.values()];
    while (pending.length > 0) {
      const inserted = taskRows(
        await sql.query<TaskRow>(INSERT_TASKS, unnest(pending, TASK_INPUT).params),
      );
      written.tasks = written.tasks.concat(inserted);
      if (inserted.length === pending.length) break;
      const fresh = new Set(inserted.map((t) => t.id));
      const existing = pending.filter((c) => !fresh.has(c.id));
      const locked = new Set(
        (
          await sql.query<{ id: string }>(LOCK_TASKS, [arrayLiteral(existing.map((c) => c.id))])
        ).map((r) => r.id),
      );
      const merged = taskRows(
        await sql.query<TaskRow>(
          MERGE_TASKS,
          unnest(
            existing.filter((c) => locked.has(c.id)),
            TASK_INPUT,
          ).params,
        ),
      );
      written.tasks = written.tasks.concat(merged);
      // A task deleted since the insert saw it (retention) is written afresh: its events must
      // not be left without it.
      pending = existing.filter((c) => !locked.has(c.id));
    }
    const inserted = await sql.query<{ id: string; n: number }>(
      INSERT_TIMELINE,
      unnest(batch.timeline, TIMELINE_INPUT).params,
    );
    // An event twice in the batch is inserted once but joins back to both positions.
    const seen = new Set<string>();
    for (const { id, n } of inserted) {
      if (seen.has(id)) continue;
      seen.add(id);
      const e = batch.timeline[n - 1]!;
      written.timeline.push({
        id: String(id),
        taskId: e.task_id,
        type: e.type,
        hostname: e.hostname,
        clock: e.clock,
        timestamp: new Date(e.timestamp),
        fields: e.fields as TimelineRow["fields"],
      });
    }
  }
  if (batch.workers.size > 0)
    written.workers = await sql.query(UPSERT_WORKERS, [
      JSON.stringify([...batch.workers.values()]),
    ]);
  if (batch.logs.length > 0)
    written.logs = await sql.query<LogRow>(INSERT_LOGS, [JSON.stringify(batch.logs)]);
  return written;
}
