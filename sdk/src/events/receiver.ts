/**
 * Receives Celery events from Celeriac and Python workers alike: single events and `task.multi`
 * batches, stamped with `local_received`.
 */
import { EventEmitter } from "node:events";
import {
  type Broker,
  EVENT_EXCHANGE,
  type QueueDeclaration,
  type Unsubscribe,
} from "../brokers/broker.js";
import { type CeleryEvent, decodeEvents } from "./event.js";

export interface ReceiverOptions {
  /** Topic binding key: `#` for all, `task.#`, `worker.#` … Default: "#". */
  bindingKey?: string;
  /** Only these event types (e.g. `["task-succeeded", "worker-heartbeat"]`). Default: all. */
  types?: string[];
  /** A durable named queue (AMQP), so events sent while the receiver is down are kept. */
  queue?: QueueDeclaration;
}

export interface ReceiverEventMap {
  event: [CeleryEvent];
}

export class EventReceiver extends EventEmitter<ReceiverEventMap> {
  private unsubscribe: Unsubscribe | undefined;
  private readonly types: Set<string> | undefined;

  constructor(
    private readonly broker: Broker,
    private readonly options: ReceiverOptions = {},
  ) {
    super();
    this.types = options.types ? new Set(options.types) : undefined;
  }

  /** Subscribe; idempotent. */
  async start(): Promise<void> {
    if (this.unsubscribe) return;
    this.unsubscribe = await this.broker.subscribe(
      EVENT_EXCHANGE,
      this.options.bindingKey ?? "#",
      (delivery) => {
        const received = Date.now() / 1000;
        for (const event of decodeEvents(delivery.message)) {
          if (this.types && !this.types.has(event.type)) continue;
          event.local_received = received;
          this.emit("event", event);
        }
      },
      this.options.queue ? { queue: this.options.queue } : {},
    );
  }

  async stop(): Promise<void> {
    const unsubscribe = this.unsubscribe;
    this.unsubscribe = undefined;
    await unsubscribe?.();
  }
}
