/**
 * One task message as the worker handles it: the decoded message plus its delivery, settled
 * (acked or rejected) exactly once.
 */
import type { Delivery } from "../brokers/broker.js";
import { parseIsoTime, type TaskMessage } from "../protocol/message.js";
import type { DeliveryInfo } from "./context.js";

let received = 0;

export class Request {
  readonly id: string;
  /** The registered name (the `task` header). */
  readonly name: string;
  readonly eta: Date | null;
  readonly expires: Date | null;
  /** When the worker received it (ms since epoch). */
  readonly receivedAt = Date.now();
  /** Receipt order in this process: a shutdown gives messages back in the order they came. */
  readonly seq = received++;
  /** When it started running, once it has. */
  startedAt: number | null = null;
  /** The signal number a terminate named, reported in the `task-revoked` event. */
  terminatedWith: number | null = null;
  private settled = false;

  constructor(
    readonly message: TaskMessage,
    readonly delivery: Delivery,
  ) {
    const h = message.headers;
    this.id = h.id;
    this.name = h.task;
    this.eta = h.eta ? parseIsoTime(h.eta, "eta") : null;
    this.expires = h.expires ? parseIsoTime(h.expires, "expires") : null;
  }

  get headers() {
    return this.message.headers;
  }

  /** The name for logs and events: the `shadow` header when set. */
  get displayName(): string {
    return this.message.headers.shadow || this.name;
  }

  get args() {
    return this.message.args;
  }

  get kwargs() {
    return this.message.kwargs;
  }

  get retries(): number {
    return this.message.headers.retries;
  }

  get acknowledged(): boolean {
    return this.settled;
  }

  get deliveryInfo(): DeliveryInfo {
    return {
      exchange: this.delivery.exchange,
      routingKey: this.delivery.routingKey,
      queue: this.delivery.queue,
      priority: this.message.properties.priority ?? 0,
      redelivered: this.delivery.redelivered,
    };
  }

  isExpired(now = Date.now()): boolean {
    return this.expires !== null && this.expires.getTime() <= now;
  }

  /** Ack once; later calls do nothing. */
  ack(): Promise<void> {
    if (this.settled) return Promise.resolve();
    this.settled = true;
    return this.delivery.ack();
  }

  /** Reject once; later calls do nothing. */
  reject(requeue: boolean): Promise<void> {
    if (this.settled) return Promise.resolve();
    this.settled = true;
    return this.delivery.reject(requeue);
  }

  /** Give the message back as a stopping worker does (see `Delivery.restore`); once. */
  giveBack(): Promise<void> {
    if (this.settled) return Promise.resolve();
    this.settled = true;
    return this.delivery.restore ? this.delivery.restore() : this.delivery.reject(true);
  }

  /** What `inspect active/reserved` reports, in Celery's shape. */
  info(hostname: string) {
    return {
      id: this.id,
      name: this.name,
      args: this.args,
      kwargs: this.kwargs,
      type: this.name,
      hostname,
      time_start: this.startedAt === null ? null : this.startedAt / 1000,
      acknowledged: this.acknowledged,
      delivery_info: {
        exchange: this.delivery.exchange,
        routing_key: this.delivery.routingKey,
        priority: this.message.properties.priority ?? 0,
        redelivered: this.delivery.redelivered,
      },
      worker_pid: process.pid,
    };
  }
}
