/**
 * Publishes task messages: declares each queue once (with the app's `x-max-priority`), then
 * publishes to the default exchange with the queue as routing key, as Celery 5 does.
 */
import type { Broker, QueueDeclaration } from "../brokers/broker.js";
import { encodeTaskMessage, type TaskMessage } from "../protocol/message.js";

export interface ProducerOptions {
  /** How this app declares a queue. */
  declaration(queue: string): QueueDeclaration;
}

export interface Destination {
  queue: string;
  /** A named exchange to publish to instead of the default one (retries go back where they came from). */
  exchange?: string;
  routingKey?: string;
}

export class Producer {
  private readonly declared = new Map<string, Promise<void>>();

  constructor(
    readonly broker: Broker,
    private readonly options: ProducerOptions,
  ) {}

  /** Declare a queue the way this app declares every queue; once per queue and process. */
  declareQueue(queue: string): Promise<void> {
    let pending = this.declared.get(queue);
    if (!pending) {
      pending = this.broker.declareQueue(this.options.declaration(queue));
      // A failed declaration is retried on the next send rather than remembered.
      pending.catch(() => this.declared.delete(queue));
      this.declared.set(queue, pending);
    }
    return pending;
  }

  async publish(message: TaskMessage, to: Destination): Promise<void> {
    const exchange = to.exchange ?? "";
    if (exchange === "") await this.declareQueue(to.routingKey ?? to.queue);
    await this.broker.publish(encodeTaskMessage(message), {
      exchange,
      routingKey: to.routingKey ?? to.queue,
    });
  }
}
