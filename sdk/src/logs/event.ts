/**
 * Log records as events on Celery's event exchange: type `celeriac-log`, routing key
 * `celeriac.log`, batched as JSON arrays. The type's group, "celeriac", is one Celery's
 * `events.State` (and so Flower) ignores; a `task-` prefix would have been taken for a task state.
 *
 * ```json
 * [{"hostname": "w1@host", "utcoffset": 0, "pid": 4242, "clock": 17, "level": "info",
 *   "msg": "computing", "uuid": "<task id>", "name": "stats.album", "retries": 0,
 *   "data": {"albumId": "a1"}, "timestamp": 1795485594.097, "type": "celeriac-log"}]
 * ```
 *
 * `uuid`, `name` and `retries` are present on records written inside a task (or about one);
 * `data` holds every other field of the pino record, already redacted.
 */
import { levels } from "pino";
import type { CeleryEvent } from "../events/event.js";

export const LOG_EVENT_TYPE = "celeriac-log";
export const LOG_ROUTING_KEY = "celeriac.log";

/** pino's level labels, least severe first. */
export type LogLevel = "trace" | "debug" | "info" | "warn" | "error" | "fatal";
export const LOG_LEVELS: readonly LogLevel[] = ["trace", "debug", "info", "warn", "error", "fatal"];

/** A log record read back from the stream. */
export interface LogRecord {
  level: LogLevel | string;
  msg: string;
  /** When it was written. */
  time: Date;
  /** The node name of the worker that wrote it. */
  worker: string;
  pid: number;
  /** The task it was written in or about; absent on worker-level records. */
  taskId?: string;
  task?: string;
  retries?: number;
  /** The record's other fields. */
  data: Record<string, unknown>;
}

/** Fields of a pino record that the event carries in fields of its own. */
export interface PinoRecord {
  level?: number | string;
  time?: number;
  msg?: unknown;
  taskId?: unknown;
  task?: unknown;
  retries?: unknown;
  worker?: unknown;
  [field: string]: unknown;
}

export function levelLabel(level: number | string | undefined): string {
  if (typeof level === "string") return level;
  return (level !== undefined && levels.labels[level]) || String(level ?? "info");
}

/** The event fields of a pino record (without the common fields, which the shipper adds). */
export function logEventFields(record: PinoRecord): Record<string, unknown> {
  const { level, time: _t, msg, taskId, task, retries, worker: _w, pid, ...data } = record;
  return {
    // A record relayed from a pool child names the child that wrote it.
    ...(typeof pid === "number" ? { pid } : {}),
    level: levelLabel(level),
    msg: typeof msg === "string" ? msg : msg === undefined ? "" : String(msg),
    ...(typeof taskId === "string" ? { uuid: taskId } : {}),
    ...(typeof task === "string" ? { name: task } : {}),
    ...(typeof retries === "number" ? { retries } : {}),
    data,
  };
}

/** A `celeriac-log` event as a record, or null for any other event. */
export function readLogEvent(event: CeleryEvent): LogRecord | null {
  if (event.type !== LOG_EVENT_TYPE) return null;
  const data = event.data;
  return {
    level: typeof event.level === "string" ? event.level : "info",
    msg: typeof event.msg === "string" ? event.msg : "",
    time: new Date(event.timestamp * 1000),
    worker: event.hostname,
    pid: event.pid,
    ...(typeof event.uuid === "string" ? { taskId: event.uuid } : {}),
    ...(typeof event.name === "string" ? { task: event.name } : {}),
    ...(typeof event.retries === "number" ? { retries: event.retries } : {}),
    data: data !== null && typeof data === "object" ? (data as Record<string, unknown>) : {},
  };
}
