/**
 * Remote control from a client: broadcast a command to every worker (or some), and collect
 * their replies until a timeout, as `celery inspect` / `celery control` do.
 */
import { randomUUID } from "node:crypto";
import { type Broker, PIDBOX_EXCHANGE, REPLY_EXCHANGE } from "../brokers/broker.js";
import type { LamportClock } from "../clock.js";
import { decodeBody, encodeRequest } from "./message.js";

export interface BroadcastOptions {
  /** Node names to address; default: every worker. */
  destination?: string[];
  /** Or a pattern over node names. */
  pattern?: string;
  matcher?: "glob" | "pcre";
  /** Wait for replies. Default: false. */
  reply?: boolean;
  /** Seconds to wait for replies. Default: 1. */
  timeout?: number;
  /** Stop after this many replies. Default: one per destination, else unlimited. */
  limit?: number;
}

/** One reply per node: `{ "w1@host": { ok: "pong" } }`. */
export type Replies = Array<Record<string, unknown>>;

export class ControlClient {
  private replyQueue: Promise<string> | undefined;
  private readonly waiting = new Map<string, (reply: Record<string, unknown>) => void>();

  constructor(
    private readonly connect: () => Promise<Broker>,
    private readonly oid: string,
    private readonly clock: LamportClock,
  ) {}

  /** Declare and consume this client's reply queue once. */
  private ensureReplyQueue(broker: Broker): Promise<string> {
    this.replyQueue ??= (async () => {
      const name = `${this.oid}.reply.celery.pidbox`;
      const queue = {
        name,
        exchange: REPLY_EXCHANGE,
        routingKey: this.oid,
        durable: false,
        autoDelete: true,
        messageTtl: 300_000,
        expires: 10_000,
      };
      await broker.consume([queue], {
        prefetch: 0,
        noAck: true,
        onDelivery: (d) => {
          const ticket = d.message.headers.ticket;
          const body = decodeBody(d.message);
          if (typeof ticket === "string" && body && typeof body === "object")
            this.waiting.get(ticket)?.(body as Record<string, unknown>);
        },
      });
      return name;
    })();
    this.replyQueue.catch(() => {
      this.replyQueue = undefined;
    });
    return this.replyQueue;
  }

  async broadcast(
    method: string,
    args: Record<string, unknown> = {},
    options: BroadcastOptions = {},
  ): Promise<Replies> {
    const broker = await this.connect();
    const timeout = options.timeout ?? 1;
    const request = {
      method,
      arguments: args,
      destination: options.destination ?? null,
      pattern: options.pattern ?? null,
      matcher: options.pattern ? (options.matcher ?? "glob") : null,
    };
    await broker.declareExchange(PIDBOX_EXCHANGE);
    const expires = Date.now() / 1000 + timeout;
    if (!options.reply) {
      await broker.publish(encodeRequest(request, this.clock.forward(), expires), {
        exchange: PIDBOX_EXCHANGE.name,
        routingKey: "",
      });
      return [];
    }
    await this.ensureReplyQueue(broker);
    const ticket = randomUUID();
    const limit =
      options.limit ??
      (options.destination ? options.destination.length : Number.POSITIVE_INFINITY);
    const replies: Replies = [];
    const done = new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, timeout * 1000);
      this.waiting.set(ticket, (reply) => {
        replies.push(reply);
        if (replies.length >= limit) {
          clearTimeout(timer);
          resolve();
        }
      });
    });
    try {
      await broker.publish(
        encodeRequest(
          {
            ...request,
            ticket,
            reply_to: { exchange: REPLY_EXCHANGE.name, routing_key: this.oid },
          },
          this.clock.forward(),
          expires,
        ),
        { exchange: PIDBOX_EXCHANGE.name, routingKey: "" },
      );
      await done;
    } finally {
      this.waiting.delete(ticket);
    }
    return replies;
  }

  private call(
    method: string,
    args: Record<string, unknown>,
    options: BroadcastOptions,
  ): Promise<Replies> {
    return this.broadcast(method, args, { reply: true, ...options });
  }

  ping(options: BroadcastOptions = {}) {
    return this.call("ping", {}, options);
  }

  /** Read-only queries: `stats`, `active`, `reserved`, `scheduled`, `registered`, `active_queues`, `revoked`, `query_task`. */
  inspect(
    method:
      | "stats"
      | "active"
      | "reserved"
      | "scheduled"
      | "registered"
      | "active_queues"
      | "revoked"
      | "clock"
      | "conf",
    options: BroadcastOptions = {},
    args: Record<string, unknown> = {},
  ) {
    return this.call(method, args, options);
  }

  revoke(
    taskIds: string | string[],
    options: BroadcastOptions & { terminate?: boolean; signal?: string } = {},
  ) {
    const { terminate = false, signal = "SIGTERM", ...rest } = options;
    return this.broadcast("revoke", { task_id: taskIds, terminate, signal }, rest);
  }

  /**
   * Set a task type's rate limit on each worker (Celery's), or with `global` the fleet-wide
   * limit the workers share through Redis (ours; Python workers ignore the flag and would set
   * their own per-worker limit, so address ours only).
   */
  rateLimit(
    taskName: string,
    rateLimit: string | null,
    options: BroadcastOptions & { global?: boolean } = {},
  ) {
    const { global = false, ...rest } = options;
    return this.broadcast(
      "rate_limit",
      { task_name: taskName, rate_limit: rateLimit, ...(global ? { global } : {}) },
      rest,
    );
  }

  timeLimit(
    taskName: string,
    limits: { soft?: number | null; hard?: number | null },
    options: BroadcastOptions = {},
  ) {
    return this.broadcast(
      "time_limit",
      { task_name: taskName, soft: limits.soft ?? null, hard: limits.hard ?? null },
      options,
    );
  }

  shutdown(options: BroadcastOptions = {}) {
    return this.broadcast("shutdown", {}, options);
  }

  poolGrow(n = 1, options: BroadcastOptions = {}) {
    return this.broadcast("pool_grow", { n }, options);
  }

  poolShrink(n = 1, options: BroadcastOptions = {}) {
    return this.broadcast("pool_shrink", { n }, options);
  }

  addConsumer(queue: string, options: BroadcastOptions = {}) {
    return this.broadcast("add_consumer", { queue }, options);
  }

  cancelConsumer(queue: string, options: BroadcastOptions = {}) {
    return this.broadcast("cancel_consumer", { queue }, options);
  }

  enableEvents(options: BroadcastOptions = {}) {
    return this.broadcast("enable_events", {}, options);
  }

  disableEvents(options: BroadcastOptions = {}) {
    return this.broadcast("disable_events", {}, options);
  }
}
