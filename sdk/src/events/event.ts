/**
 * Celery events: their common fields and how they travel. Task events from workers are batched
 * as JSON arrays under routing key `task.multi`; other events are single objects whose routing
 * key is their type with dashes turned to dots (`worker-heartbeat` -> `worker.heartbeat`).
 */
import type { Message } from "../brokers/broker.js";
import { dumps, loads } from "../protocol/json.js";

/** An event as Celery shapes it: `type`, the common fields, and the event's own fields. */
export interface CeleryEvent {
  type: string;
  hostname: string;
  /** Hours west of UTC, floored (Python's `time.timezone // 3600`). */
  utcoffset: number;
  pid: number;
  clock: number;
  /** Unix seconds (float) when sent. */
  timestamp: number;
  /** Unix seconds when received; set by receivers. */
  local_received?: number;
  uuid?: string;
  [field: string]: unknown;
}

export function utcoffset(now = new Date()): number {
  return Math.floor(now.getTimezoneOffset() / 60);
}

export function routingKeyOf(type: string): string {
  return type.replace(/-/g, ".");
}

/** The group of an event type (`task`, `worker`), which decides whether it is sent. */
export function groupOf(type: string): string {
  return type.split("-", 1)[0] ?? type;
}

export function encodeEvents(body: CeleryEvent | CeleryEvent[], hostname: string): Message {
  return {
    body: Buffer.from(dumps(body), "utf8"),
    contentType: "application/json",
    contentEncoding: "utf-8",
    headers: { hostname },
    properties: { deliveryMode: 1, priority: 0 },
  };
}

/** Decode one event message: a single event, or a `task.multi` batch. Malformed ones yield none. */
export function decodeEvents(message: Message): CeleryEvent[] {
  let body: unknown;
  try {
    body = loads(message.body.toString("utf8"));
  } catch {
    return [];
  }
  const list = Array.isArray(body) ? body : [body];
  return list.filter(
    (e): e is CeleryEvent =>
      e !== null && typeof e === "object" && typeof (e as CeleryEvent).type === "string",
  );
}
