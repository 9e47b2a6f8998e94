/**
 * Publishes events on Celery's event exchange (`celeryev`: topic on AMQP, fanout on Redis).
 * Task events are buffered and sent as `task.multi` batches, as Celery's worker does, flushed on
 * the next turn of the event loop or at 24 events. Events are fire-and-forget: a failed publish
 * is logged, never thrown into the task's path.
 */
import type { Logger } from "pino";
import { type Broker, EVENT_EXCHANGE } from "../brokers/broker.js";
import type { LamportClock } from "../clock.js";
import { type CeleryEvent, encodeEvents, groupOf, routingKeyOf, utcoffset } from "./event.js";

const BATCH_LIMIT = 24;

export interface DispatcherOptions {
  hostname: string;
  clock: LamportClock;
  logger: Logger;
  /** Groups of events sent (`task`, `worker`); others are dropped. Default: all. */
  groups?: Set<string>;
  /** Batch task events as `task.multi` arrays. Default: false (producers send singles). */
  batchTaskEvents?: boolean;
}

export class EventDispatcher {
  private buffer: CeleryEvent[] = [];
  private flushScheduled = false;
  private declared: Promise<void> | undefined;
  groups: Set<string> | undefined;

  constructor(
    private readonly broker: Broker,
    private readonly options: DispatcherOptions,
  ) {
    this.groups = options.groups;
  }

  private declare(): Promise<void> {
    this.declared ??= this.broker.declareExchange(EVENT_EXCHANGE);
    return this.declared;
  }

  isEnabled(type: string): boolean {
    return !this.groups || this.groups.has(groupOf(type));
  }

  /** Build an event with the common fields. */
  event(type: string, fields: Record<string, unknown>): CeleryEvent {
    return {
      hostname: this.options.hostname,
      utcoffset: utcoffset(),
      pid: process.pid,
      clock: this.options.clock.forward(),
      ...fields,
      timestamp: Date.now() / 1000,
      type,
    };
  }

  send(type: string, fields: Record<string, unknown> = {}): void {
    if (!this.isEnabled(type)) return;
    const event = this.event(type, fields);
    if (this.options.batchTaskEvents && groupOf(type) === "task") {
      this.buffer.push(event);
      if (this.buffer.length >= BATCH_LIMIT) this.flush();
      else if (!this.flushScheduled) {
        this.flushScheduled = true;
        setImmediate(() => this.flush());
      }
      return;
    }
    this.publish(event, routingKeyOf(type));
  }

  /** Send buffered task events now. */
  flush(): void {
    this.flushScheduled = false;
    if (this.buffer.length === 0) return;
    const batch = this.buffer;
    this.buffer = [];
    this.publish(batch, "task.multi");
  }

  private publish(body: CeleryEvent | CeleryEvent[], routingKey: string): void {
    this.declare()
      .then(() =>
        this.broker.publish(encodeEvents(body, this.options.hostname), {
          exchange: EVENT_EXCHANGE.name,
          routingKey,
        }),
      )
      .catch((error) =>
        this.options.logger.warn({ err: error, routingKey }, "could not publish an event"),
      );
  }
}
