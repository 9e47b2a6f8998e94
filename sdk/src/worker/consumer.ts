/**
 * The consumer: fetches messages from the broker within the prefetch window and turns each into
 * a Request. A message that cannot be parsed is logged and rejected without requeue (dead-lettered
 * where the queue has a DLX); it never stops the consumer.
 */
import type { Logger } from "pino";
import type { Broker, Consumer, Delivery, QueueDeclaration } from "../brokers/broker.js";
import { CeleriacError } from "../errors.js";
import { decodeTaskMessage } from "../protocol/message.js";
import { Request } from "./request.js";

export interface TaskConsumerOptions {
  broker: Broker;
  queues: QueueDeclaration[];
  /** The base window: concurrency × prefetch multiplier. */
  prefetch: number;
  logger: Logger;
  onRequest(request: Request): void;
}

export class TaskConsumer {
  private consumer: Consumer | undefined;
  /** Extra window for held ETA tasks, which Celery adds one by one on top of the base prefetch. */
  private extra = 0;

  constructor(private readonly options: TaskConsumerOptions) {}

  get queues(): readonly string[] {
    return this.consumer?.queues ?? this.options.queues.map((q) => q.name);
  }

  async start(): Promise<void> {
    if (this.consumer) return;
    this.consumer = await this.options.broker.consume(this.options.queues, {
      prefetch: this.options.prefetch,
      onDelivery: (d) => this.receive(d),
    });
  }

  private receive(delivery: Delivery): void {
    let request: Request;
    try {
      request = new Request(decodeTaskMessage(delivery.message), delivery);
    } catch (error) {
      const code = error instanceof CeleriacError ? error.code : "INVALID_MESSAGE";
      this.options.logger.error(
        {
          code,
          queue: delivery.queue,
          deliveryTag: delivery.deliveryTag,
          headers: delivery.message.headers,
          reason: (error as Error).message,
        },
        "rejected an invalid message",
      );
      delivery
        .reject(false)
        .catch((e) => this.options.logger.warn({ err: e }, "could not reject an invalid message"));
      return;
    }
    this.options.onRequest(request);
  }

  /**
   * Widen the window by the number of messages the worker holds without running them (ETA
   * tasks, tasks waiting for a rate-limit token), so they never starve other work.
   */
  async setHeld(held: number): Promise<void> {
    if (held === this.extra) return;
    this.extra = held;
    // A base window of 0 means unlimited; it stays so.
    if (this.options.prefetch === 0) return;
    await this.consumer?.setPrefetch(this.options.prefetch + this.extra);
  }

  async setBasePrefetch(prefetch: number): Promise<void> {
    this.options.prefetch = prefetch;
    await this.consumer?.setPrefetch(prefetch === 0 ? 0 : prefetch + this.extra);
  }

  async addQueue(queue: QueueDeclaration): Promise<void> {
    await this.consumer?.addQueue(queue);
  }

  async removeQueue(name: string): Promise<void> {
    await this.consumer?.removeQueue(name);
  }

  /** Stop fetching; deliveries already received stay valid. */
  async stop(): Promise<void> {
    const c = this.consumer;
    this.consumer = undefined;
    await c?.cancel();
  }
}
