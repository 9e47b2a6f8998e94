/**
 * kombu's Redis message envelope: `{body, content-encoding, content-type, headers, properties}`
 * with a base64 body and the delivery bookkeeping in `properties`, written with kombu's JSON.
 */
import { randomUUID } from "node:crypto";
import { dumps, formatNumber, loads, quote } from "../../protocol/json.js";
import type { Message } from "../broker.js";

/** kombu's field separator in list and binding keys. */
export const SEP = "\x06\x16";
/** kombu's priority steps: a priority goes to the highest step not above it. */
export const PRIORITY_STEPS = [0, 3, 6, 9] as const;

export interface Envelope {
  body: string;
  "content-encoding": string;
  "content-type": string;
  headers: Record<string, unknown>;
  properties: {
    correlation_id?: string;
    reply_to?: string;
    delivery_mode?: number;
    expiration?: string;
    delivery_info: { exchange: string; routing_key: string; redelivered?: boolean };
    priority: number;
    body_encoding?: string;
    delivery_tag: string;
    [other: string]: unknown;
  };
}

/** The list a message of this priority goes to (on Redis, step 0 is served first). */
export function priorityList(queue: string, priority: number): string {
  const p = Math.min(9, Math.max(0, Math.trunc(priority)));
  let step = 0;
  for (const s of PRIORITY_STEPS) if (s <= p) step = s;
  return step === 0 ? queue : `${queue}${SEP}${step}`;
}

/** Every list of a queue, in the order consumers serve them. */
export function queueLists(queue: string): string[] {
  return PRIORITY_STEPS.map((s) => (s === 0 ? queue : `${queue}${SEP}${s}`));
}

export function encodeEnvelope(
  message: Message,
  exchange: string,
  routingKey: string,
): { text: string; tag: string } {
  const p = message.properties;
  const tag = randomUUID();
  // Written field by field rather than through dumps(): only the headers are the sender's, and
  // this runs for every message. Key order and spacing are kombu's, so the stored text reads the
  // same whoever wrote it.
  const properties = [
    ...(p.correlationId !== undefined ? [`"correlation_id": ${quote(p.correlationId)}`] : []),
    ...(p.replyTo !== undefined ? [`"reply_to": ${quote(p.replyTo)}`] : []),
    `"delivery_mode": ${p.deliveryMode ?? 2}`,
    ...(p.expiration !== undefined ? [`"expiration": ${quote(p.expiration)}`] : []),
    `"delivery_info": {"exchange": ${quote(exchange)}, "routing_key": ${quote(routingKey)}}`,
    `"priority": ${formatNumber(p.priority ?? 0)}`,
    `"body_encoding": "base64"`,
    `"delivery_tag": "${tag}"`,
  ];
  const text =
    `{"body": "${message.body.toString("base64")}", ` +
    `"content-encoding": ${quote(message.contentEncoding)}, ` +
    `"content-type": ${quote(message.contentType)}, ` +
    `"headers": ${dumps(message.headers)}, ` +
    `"properties": {${properties.join(", ")}}}`;
  return { text, tag };
}

/** Parse a stored envelope; throws on text that is not one. */
export function parseEnvelope(text: string): Envelope {
  const env = loads(text) as Envelope;
  if (
    env === null ||
    typeof env !== "object" ||
    typeof env.properties !== "object" ||
    env.properties === null
  ) {
    throw new Error("not a kombu envelope");
  }
  return env;
}

export function envelopeToMessage(env: Envelope): Message {
  const p = env.properties;
  const body =
    p.body_encoding === "base64"
      ? Buffer.from(String(env.body), "base64")
      : Buffer.from(String(env.body ?? ""), "utf8");
  return {
    body,
    contentType: String(env["content-type"] ?? "application/json"),
    contentEncoding: String(env["content-encoding"] ?? "utf-8"),
    headers: env.headers ?? {},
    properties: {
      ...(p.correlation_id !== undefined && p.correlation_id !== null
        ? { correlationId: String(p.correlation_id) }
        : {}),
      ...(p.reply_to !== undefined && p.reply_to !== null ? { replyTo: String(p.reply_to) } : {}),
      ...(p.delivery_mode === 1 || p.delivery_mode === 2 ? { deliveryMode: p.delivery_mode } : {}),
      ...(typeof p.priority === "number" ? { priority: p.priority } : {}),
      ...(p.expiration !== undefined && p.expiration !== null
        ? { expiration: String(p.expiration) }
        : {}),
    },
  };
}

export function isRedelivered(env: Envelope): boolean {
  return env.headers?.redelivered === true || env.properties.delivery_info?.redelivered === true;
}

/** The envelope with kombu's redelivered marks, as restores write it back. */
export function markRedelivered(env: Envelope): string {
  return dumps({
    ...env,
    headers: { ...env.headers, redelivered: true },
    properties: {
      ...env.properties,
      delivery_info: { ...env.properties.delivery_info, redelivered: true },
    },
  });
}
