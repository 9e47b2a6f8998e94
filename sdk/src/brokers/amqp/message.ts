/**
 * Messages between the interface's shape and rabbitmq-client's.
 */
import type { AsyncMessage } from "rabbitmq-client";
import type { Message } from "../broker.js";

/**
 * AMQP field tables that py-amqp reads back exactly. rabbitmq-client picks the smallest integer
 * type, and py-amqp reads two of those differently ('s' as a short string, 'b' as unsigned), so
 * every integer travels as a 64-bit 'l', which py-amqp reads as a plain int.
 */
export function toFieldTable(value: unknown): unknown {
  if (typeof value === "number" && Number.isInteger(value)) return BigInt(value);
  if (Array.isArray(value)) return value.map(toFieldTable);
  if (
    value !== null &&
    typeof value === "object" &&
    !(value instanceof Date) &&
    !Buffer.isBuffer(value)
  ) {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) if (v !== undefined) out[k] = toFieldTable(v);
    return out;
  }
  return value;
}

/** A received AMQP message as the interface's Message. */
export function fromAmqp(msg: AsyncMessage): Message {
  const body = Buffer.isBuffer(msg.body)
    ? msg.body
    : Buffer.from(
        typeof msg.body === "string" ? msg.body : JSON.stringify(msg.body ?? null),
        "utf8",
      );
  const deliveryMode = (msg as { deliveryMode?: number }).deliveryMode;
  return {
    body,
    contentType: msg.contentType ?? "application/octet-stream",
    contentEncoding: msg.contentEncoding ?? "binary",
    headers: (msg.headers as Record<string, unknown> | undefined) ?? {},
    properties: {
      ...(msg.correlationId !== undefined ? { correlationId: msg.correlationId } : {}),
      ...(msg.replyTo !== undefined ? { replyTo: msg.replyTo } : {}),
      ...(deliveryMode === 1 || deliveryMode === 2
        ? { deliveryMode }
        : { deliveryMode: msg.durable ? 2 : 1 }),
      ...(msg.priority !== undefined ? { priority: msg.priority } : {}),
      ...(msg.expiration !== undefined ? { expiration: msg.expiration } : {}),
    },
  };
}
