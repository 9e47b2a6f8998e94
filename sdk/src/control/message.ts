/**
 * kombu's pidbox messages: requests broadcast on `celery.pidbox`, replies sent to the caller's
 * reply queue through `reply.celery.pidbox`.
 */
import type { Message } from "../brokers/broker.js";
import { dumps, loads } from "../protocol/json.js";

export interface ControlRequest {
  method: string;
  arguments: Record<string, unknown>;
  destination: string[] | null;
  pattern: string | null;
  matcher: "glob" | "pcre" | null;
  ticket?: string;
  reply_to?: { exchange: string; routing_key: string };
}

function json(body: unknown, headers: Record<string, unknown>, deliveryMode: 1 | 2): Message {
  return {
    body: Buffer.from(dumps(body), "utf8"),
    contentType: "application/json",
    contentEncoding: "utf-8",
    headers,
    properties: { deliveryMode, priority: 0 },
  };
}

export function encodeRequest(request: ControlRequest, clock: number, expires: number): Message {
  return json(request, { clock, expires }, 2);
}

export function encodeReply(
  hostname: string,
  reply: unknown,
  ticket: string,
  clock: number,
): Message {
  return json({ [hostname]: reply }, { ticket, clock }, 1);
}

export function decodeBody(message: Message): unknown {
  try {
    return loads(message.body.toString("utf8"));
  } catch {
    return undefined;
  }
}

/** Whether a node should handle a request (destination list, or a glob/pcre pattern, or all). */
export function isForNode(request: ControlRequest, hostname: string): boolean {
  if (request.destination && request.destination.length > 0)
    return request.destination.includes(hostname);
  if (request.pattern) {
    const re =
      request.matcher === "pcre"
        ? new RegExp(request.pattern)
        : new RegExp(
            `^${request.pattern
              .replace(/[.+^${}()|[\]\\]/g, "\\$&")
              .replace(/\*/g, ".*")
              .replace(/\?/g, ".")}$`,
          );
    return re.test(hostname);
  }
  return true;
}
