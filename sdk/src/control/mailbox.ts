/**
 * A node's mailbox: receives broadcast control requests meant for it, runs the handler, and
 * replies when asked. An unknown command or a failing handler gets an error reply
 * (`{"error": "KeyError('nope')"}`, as Celery answers), never a crash.
 */
import type { Logger } from "pino";
import { type Broker, PIDBOX_EXCHANGE, type Unsubscribe } from "../brokers/broker.js";
import type { LamportClock } from "../clock.js";
import { exceptionRepr } from "../protocol/exceptions.js";
import { type ControlRequest, decodeBody, encodeReply, isForNode } from "./message.js";

export type ControlHandler = (args: Record<string, unknown>) => unknown;

export class Mailbox {
  private unsubscribe: Unsubscribe | undefined;

  constructor(
    private readonly broker: Broker,
    private readonly hostname: string,
    private readonly handlers: Record<string, ControlHandler>,
    private readonly clock: LamportClock,
    private readonly logger: Logger,
  ) {}

  async start(): Promise<void> {
    if (this.unsubscribe) return;
    this.unsubscribe = await this.broker.subscribe(
      PIDBOX_EXCHANGE,
      "",
      (d) => void this.handle(d.message.headers, decodeBody(d.message)),
      {
        // Celery's per-node queue, so AMQP keeps requests briefly while the node reconnects.
        queue: {
          name: `${this.hostname}.celery.pidbox`,
          exchange: PIDBOX_EXCHANGE,
          routingKey: "",
          durable: false,
          autoDelete: true,
          messageTtl: 300_000,
          expires: 10_000,
        },
      },
    );
  }

  async stop(): Promise<void> {
    const u = this.unsubscribe;
    this.unsubscribe = undefined;
    await u?.();
  }

  private async handle(headers: Record<string, unknown>, body: unknown): Promise<void> {
    if (!body || typeof body !== "object" || typeof (body as ControlRequest).method !== "string") {
      this.logger.warn({ body }, "ignored a malformed control message");
      return;
    }
    const request = body as ControlRequest;
    this.clock.adjust(headers.clock);
    const expires = typeof headers.expires === "number" ? headers.expires : 0;
    if (expires && expires < Date.now() / 1000) return;
    if (!isForNode(request, this.hostname)) return;

    let reply: unknown;
    const handler = Object.hasOwn(this.handlers, request.method)
      ? this.handlers[request.method]
      : undefined;
    try {
      if (!handler) throw Object.assign(new Error(request.method), { name: "KeyError" });
      reply = await handler(request.arguments ?? {});
    } catch (error) {
      this.logger.warn({ err: error, method: request.method }, "control command failed");
      reply = { error: exceptionRepr(error) };
    }
    if (!request.ticket || !request.reply_to) return;
    try {
      await this.broker.publish(
        encodeReply(this.hostname, reply ?? null, request.ticket, this.clock.forward()),
        {
          exchange: request.reply_to.exchange,
          routingKey: request.reply_to.routing_key,
        },
      );
    } catch (error) {
      this.logger.warn({ err: error, method: request.method }, "could not send a control reply");
    }
  }
}
