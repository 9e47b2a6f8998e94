/**
 * A batch of the fleet's events, folded into the rows they change: one change per task (its
 * state moved forward by Celery's rules, facts merged, later ones winning), one per worker, the
 * timeline events themselves, and shipped log records. Folding many events per task into one
 * row update is what lets ingestion keep up with a busy fleet.
 */
import {
  argsFromRepr,
  type CeleryEvent,
  isStateAdvance,
  kwargsFromRepr,
  TaskState,
} from "@celeriac/sdk";

const STATE_OF: Record<string, string> = {
  "task-sent": TaskState.PENDING,
  "task-received": TaskState.RECEIVED,
  "task-started": TaskState.STARTED,
  "task-succeeded": TaskState.SUCCESS,
  "task-failed": TaskState.FAILURE,
  "task-retried": TaskState.RETRY,
  "task-revoked": TaskState.REVOKED,
  "task-rejected": TaskState.REJECTED,
};

/** The column set when each event type is seen. */
const TIME_COLUMN: Record<string, keyof TaskChange> = {
  "task-sent": "sent_at",
  "task-received": "received_at",
  "task-started": "started_at",
  "task-succeeded": "succeeded_at",
  "task-failed": "failed_at",
  "task-retried": "retried_at",
  "task-revoked": "revoked_at",
  "task-rejected": "rejected_at",
};

/** Fields every event has, which the timeline keeps in columns rather than in `fields`. */
const COMMON = new Set(["type", "hostname", "utcoffset", "pid", "clock", "timestamp", "uuid"]);

/** One task's row change, in the database's column names (it is sent as JSON to one statement). */
export interface TaskChange {
  id: string;
  state: string;
  /** The batch saw a RETRY: what follows it replaces any unfinished state (the task runs again). */
  after_retry: boolean;
  name?: string;
  args_repr?: string;
  kwargs_repr?: string;
  args?: unknown[];
  kwargs?: Record<string, unknown>;
  result?: string;
  exception?: string;
  traceback?: string;
  retries?: number;
  queue?: string;
  exchange?: string;
  routing_key?: string;
  worker?: string;
  parent_id?: string;
  root_id?: string;
  group_id?: string;
  eta?: string;
  expires?: string;
  runtime?: number;
  sent_at?: string;
  received_at?: string;
  started_at?: string;
  succeeded_at?: string;
  failed_at?: string;
  retried_at?: string;
  revoked_at?: string;
  rejected_at?: string;
  updated_at: string;
}

export interface TimelineEvent {
  task_id: string;
  type: string;
  hostname: string;
  clock: number;
  timestamp: string;
  fields: Record<string, unknown>;
}

export interface WorkerChange {
  hostname: string;
  type: string;
  pid?: number;
  sw_ident?: string;
  sw_ver?: string;
  sw_sys?: string;
  freq?: number;
  active?: number;
  processed?: number;
  loadavg?: number[];
  offline: boolean;
  /** When this server received the last heartbeat (liveness is judged on local time, as Celery does). */
  last_heartbeat: string;
}

export interface LogRecord {
  task_id?: string;
  task_name?: string;
  retries?: number;
  hostname: string;
  clock: number;
  timestamp: string;
  level: string;
  msg: string;
  data?: Record<string, unknown>;
}

/*
 * Events come from any process on the broker, Python's included: every value is checked here,
 * and one that does not fit its column is dropped, so that no event can make a batch fail to
 * write (which would hold up every event behind it).
 */

/** Dates Postgres and JavaScript both hold: years 1 to 9999. */
const MIN_MS = -62_135_596_800_000;
const MAX_MS = 253_402_300_799_999;
const isoMs = (ms: number) =>
  Number.isFinite(ms) && ms >= MIN_MS && ms <= MAX_MS ? new Date(ms).toISOString() : undefined;
const iso = (unixSeconds: unknown): string | undefined =>
  typeof unixSeconds === "number" ? isoMs(unixSeconds * 1000) : undefined;
/** Text columns cannot hold NUL characters. */
const clean = (s: string) => (s.includes("\0") ? s.replaceAll("\0", "\uFFFD") : s);
const str = (v: unknown) => (typeof v === "string" && v !== "" ? clean(v) : undefined);
const num = (v: unknown) => (typeof v === "number" && Number.isFinite(v) ? v : undefined);
/** A value for an `int` column. */
const int = (v: unknown) =>
  typeof v === "number" && Number.isInteger(v) && Math.abs(v) <= 2_147_483_647 ? v : undefined;
/** Lamport clocks are part of a unique key: kept within `int`, wrapping as they grow. */
const clock = (v: unknown) =>
  typeof v === "number" && Number.isFinite(v) ? Math.trunc(v) % 2_147_483_647 : 0;
/** ETA and expiry travel as ISO strings. */
const isoString = (v: unknown) => (typeof v === "string" ? isoMs(Date.parse(v)) : undefined);

/** A JSON value with NUL characters replaced in every string (jsonb refuses them too). */
function cleanJson(value: unknown, depth = 0): unknown {
  if (typeof value === "string") return clean(value);
  if (depth > 32 || value === null || typeof value !== "object") return value;
  if (Array.isArray(value)) return value.map((v) => cleanJson(v, depth + 1));
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) out[clean(k)] = cleanJson(v, depth + 1);
  return out;
}

/** Whether a JSON value holds a NUL character anywhere cleanJson looks (most never do: no copy). */
function hasNul(value: unknown, depth = 0): boolean {
  if (typeof value === "string") return value.includes("\0");
  if (depth > 32 || value === null || typeof value !== "object") return false;
  if (Array.isArray(value)) return value.some((v) => hasNul(v, depth + 1));
  for (const k in value)
    if (k.includes("\0") || hasNul((value as Record<string, unknown>)[k], depth + 1)) return true;
  return false;
}

/**
 * A change with every field present from the start, in one order, so that all changes share one
 * object shape and the per-event merge stays on V8's fast paths (JSON.stringify leaves the
 * undefined ones out).
 */
function newTaskChange(id: string, state: string, updatedAt: string): TaskChange {
  return {
    id,
    state,
    after_retry: state === TaskState.RETRY,
    name: undefined,
    args_repr: undefined,
    kwargs_repr: undefined,
    args: undefined,
    kwargs: undefined,
    result: undefined,
    exception: undefined,
    traceback: undefined,
    retries: undefined,
    queue: undefined,
    exchange: undefined,
    routing_key: undefined,
    worker: undefined,
    parent_id: undefined,
    root_id: undefined,
    group_id: undefined,
    eta: undefined,
    expires: undefined,
    runtime: undefined,
    sent_at: undefined,
    received_at: undefined,
    started_at: undefined,
    succeeded_at: undefined,
    failed_at: undefined,
    retried_at: undefined,
    revoked_at: undefined,
    rejected_at: undefined,
    updated_at: updatedAt,
  };
}

export class Batch {
  readonly tasks = new Map<string, TaskChange>();
  readonly timeline: TimelineEvent[] = [];
  readonly workers = new Map<string, WorkerChange>();
  readonly logs: LogRecord[] = [];

  get size(): number {
    return this.timeline.length + this.workers.size + this.logs.length;
  }

  add(event: CeleryEvent): void {
    if (typeof event.hostname !== "string" || event.hostname === "") return;
    event.hostname = clean(event.hostname);
    if (event.type.startsWith("task-")) this.addTaskEvent(event);
    else if (event.type.startsWith("worker-")) this.addWorkerEvent(event);
    else if (event.type === "celeriac-log") this.addLog(event);
  }

  private addTaskEvent(event: CeleryEvent): void {
    const id = str(event.uuid);
    if (!id) return;
    const timestamp = iso(event.timestamp) ?? new Date().toISOString();
    const next = STATE_OF[event.type] ?? event.type.slice("task-".length).toUpperCase();
    let change = this.tasks.get(id);
    if (!change) {
      change = newTaskChange(id, next, timestamp);
      this.tasks.set(id, change);
    } else if (isStateAdvance(change.state, next)) {
      change.state = next;
      if (next === TaskState.RETRY) change.after_retry = true;
    }
    if (timestamp > change.updated_at) change.updated_at = timestamp;
    const time = TIME_COLUMN[event.type];
    if (time) (change as unknown as Record<string, unknown>)[time] = timestamp;
    // The producer's `task-sent` names the producer, not a worker.
    if (event.type !== "task-sent") change.worker = event.hostname;

    // One pass over what the event carries: it makes the timeline's fields and merges the task's
    // facts (asking an event for each fact it lacks costs more, events coming in many shapes).
    const fields: Record<string, unknown> = {};
    for (const k in event) {
      if (COMMON.has(k)) continue;
      const v = event[k];
      fields[k] = v;
      this.mergeFact(change, event, k, v);
    }
    this.timeline.push({
      task_id: id,
      type: clean(event.type),
      hostname: event.hostname,
      clock: clock(event.clock),
      timestamp,
      fields: hasNul(fields) ? (cleanJson(fields) as Record<string, unknown>) : fields,
    });
  }

  /** One fact carried by an event: a later one wins, a missing or unfit one never erases. */
  private mergeFact(c: TaskChange, e: CeleryEvent, key: string, v: unknown): void {
    switch (key) {
      case "name":
        c.name = str(v) ?? c.name;
        break;
      case "args":
        // Several events of a task carry the same repr: it is parsed once.
        if (typeof v === "string" && clean(v) !== c.args_repr) {
          c.args_repr = clean(v);
          const args = argsFromRepr(c.args_repr);
          if (args !== undefined) c.args = hasNul(args) ? (cleanJson(args) as unknown[]) : args;
        }
        break;
      case "kwargs":
        if (typeof v === "string" && clean(v) !== c.kwargs_repr) {
          c.kwargs_repr = clean(v);
          const kwargs = kwargsFromRepr(c.kwargs_repr);
          if (kwargs !== undefined)
            c.kwargs = hasNul(kwargs) ? (cleanJson(kwargs) as Record<string, unknown>) : kwargs;
        }
        break;
      case "result":
        if (e.type === "task-succeeded" && typeof v === "string") c.result = clean(v);
        break;
      case "exception":
        c.exception = str(v) ?? c.exception;
        break;
      case "traceback":
        c.traceback = str(v) ?? c.traceback;
        break;
      case "retries": {
        const retries = int(v);
        if (retries !== undefined) c.retries = Math.max(c.retries ?? 0, retries);
        break;
      }
      case "queue":
        c.queue = str(v) ?? c.queue;
        break;
      case "exchange":
        if (typeof v === "string") c.exchange = clean(v);
        break;
      case "routing_key":
        c.routing_key = str(v) ?? c.routing_key;
        break;
      case "parent_id":
        c.parent_id = str(v) ?? c.parent_id;
        break;
      case "root_id":
        c.root_id = str(v) ?? c.root_id;
        break;
      case "group_id":
        c.group_id = str(v) ?? c.group_id;
        break;
      case "group":
        // Celery's older name, for events without `group_id`.
        if (str(e.group_id) === undefined) c.group_id = str(v) ?? c.group_id;
        break;
      case "eta":
        c.eta = isoString(v) ?? c.eta;
        break;
      case "expires":
        c.expires = isoString(v) ?? c.expires;
        break;
      case "runtime":
        c.runtime = num(v) ?? c.runtime;
        break;
    }
  }

  private addWorkerEvent(event: CeleryEvent): void {
    const received = iso(event.local_received ?? event.timestamp) ?? new Date().toISOString();
    const change: WorkerChange = {
      hostname: event.hostname,
      type: event.type,
      offline: event.type === "worker-offline",
      last_heartbeat: received,
    };
    const set = <K extends keyof WorkerChange>(key: K, value: WorkerChange[K] | undefined) => {
      if (value !== undefined) change[key] = value;
    };
    set("pid", int(event.pid));
    set("sw_ident", str(event.sw_ident));
    set("sw_ver", str(event.sw_ver));
    set("sw_sys", str(event.sw_sys));
    set("freq", num(event.freq));
    set("active", int(event.active));
    set("processed", int(event.processed));
    if (Array.isArray(event.loadavg))
      set(
        "loadavg",
        event.loadavg.filter((n): n is number => typeof n === "number" && Number.isFinite(n)),
      );
    // Events from one worker arrive in order: the last one says it all.
    this.workers.set(event.hostname, { ...this.workers.get(event.hostname), ...change });
  }

  private addLog(event: CeleryEvent): void {
    this.logs.push({
      task_id: str(event.uuid),
      task_name: str(event.name),
      retries: int(event.retries),
      hostname: event.hostname,
      clock: clock(event.clock),
      timestamp: iso(event.timestamp) ?? new Date().toISOString(),
      level: str(event.level) ?? "info",
      msg: typeof event.msg === "string" ? clean(event.msg) : "",
      ...(event.data && typeof event.data === "object"
        ? { data: cleanJson(event.data) as Record<string, unknown> }
        : {}),
    });
  }
}
