/**
 * A consumer of RabbitMQ queues on a channel of its own: `basic.qos` (global, so the window
 * holds across all its queues), one `basic.consume` per queue, manual acks. When the connection
 * comes back it takes a new channel and consumes again; settling a delivery of a dead channel is
 * a no-op, since RabbitMQ has already requeued it.
 */
import type { AsyncMessage, Channel } from "rabbitmq-client";
import type { ConsumeOptions, Consumer, Delivery, QueueDeclaration } from "../broker.js";
import type { AmqpBroker } from "./broker.js";
import { fromAmqp } from "./message.js";

let nextConsumer = 0;

export class AmqpConsumer implements Consumer {
  private declarations: QueueDeclaration[];
  private prefetch: number;
  private channel: Channel | undefined;
  private generation = 0;
  private readonly tags = new Map<string, string>();
  private active = true;
  private setup: Promise<void> | undefined;
  private readonly id = nextConsumer++;

  constructor(
    private readonly broker: AmqpBroker,
    queues: QueueDeclaration[],
    private readonly options: ConsumeOptions,
    private readonly onClose: (c: AmqpConsumer) => void,
  ) {
    this.declarations = [...queues];
    this.prefetch = options.prefetch;
  }

  get queues(): readonly string[] {
    return this.declarations.map((q) => q.name);
  }

  start(): Promise<void> {
    this.setup ??= this.open().finally(() => {
      this.setup = undefined;
    });
    return this.setup;
  }

  /** After a reconnection (or a lost channel): a new channel, the same queues and window. */
  recover(): void {
    if (!this.active || (this.channel?.active ?? false)) return;
    this.start().catch((error) =>
      this.broker.options.logger.warn(
        { err: error },
        "rabbitmq consumer recovery failed; waiting for the next connection",
      ),
    );
  }

  private async open(): Promise<void> {
    const ch = await this.broker.connection.acquire();
    const generation = ++this.generation;
    this.channel = ch;
    this.tags.clear();
    ch.on("close", () => {
      // Lost without the connection going (e.g. a deleted queue): try again shortly.
      if (this.active && this.generation === generation)
        setTimeout(() => this.recover(), 1000).unref();
    });
    if (this.prefetch > 0) await ch.basicQos({ prefetchCount: this.prefetch, global: true });
    for (const q of this.declarations) await this.consumeQueue(ch, generation, q);
  }

  private async consumeQueue(ch: Channel, generation: number, q: QueueDeclaration): Promise<void> {
    const name = await this.broker.declareQueueOn(ch, q);
    // A server-named declaration keeps its real name for later cancels.
    if (name !== q.name)
      this.declarations = this.declarations.map((d) => (d === q ? { ...d, name } : d));
    const ok = await ch.basicConsume({ queue: name, noAck: this.options.noAck ?? false }, (msg) =>
      this.deliver(ch, generation, name, msg),
    );
    this.tags.set(name, ok.consumerTag);
  }

  private deliver(ch: Channel, generation: number, queue: string, msg: AsyncMessage): void {
    let settled = this.options.noAck ?? false;
    const live = () => ch.active && this.generation === generation;
    const delivery: Delivery = {
      message: fromAmqp(msg),
      deliveryTag: `${this.id}.${generation}.${msg.deliveryTag}`,
      exchange: msg.exchange,
      routingKey: msg.routingKey,
      queue,
      redelivered: msg.redelivered,
      ack: async () => {
        if (settled) return;
        settled = true;
        if (live()) ch.basicAck({ deliveryTag: msg.deliveryTag });
      },
      reject: async (requeue) => {
        if (settled) return;
        settled = true;
        if (live()) ch.basicNack({ deliveryTag: msg.deliveryTag, requeue, multiple: false });
      },
    };
    try {
      this.options.onDelivery(delivery);
    } catch (error) {
      this.broker.options.logger.error({ err: error }, "delivery handler threw");
    }
  }

  async setPrefetch(prefetch: number): Promise<void> {
    this.prefetch = prefetch;
    if (this.channel?.active)
      await this.channel.basicQos({ prefetchCount: prefetch, global: true });
  }

  async addQueue(queue: QueueDeclaration): Promise<void> {
    if (this.declarations.some((d) => d.name === queue.name)) return;
    this.declarations.push(queue);
    if (this.channel?.active) await this.consumeQueue(this.channel, this.generation, queue);
  }

  async removeQueue(name: string): Promise<void> {
    this.declarations = this.declarations.filter((d) => d.name !== name);
    const tag = this.tags.get(name);
    this.tags.delete(name);
    if (tag && this.channel?.active) await this.channel.basicCancel(tag);
  }

  async cancel(): Promise<void> {
    if (!this.active) return;
    this.active = false;
    await this.setup?.catch(() => {});
    const ch = this.channel;
    if (!ch?.active) return;
    for (const tag of this.tags.values()) await ch.basicCancel(tag).catch(() => {});
    this.tags.clear();
  }

  /** Cancel and close the channel: RabbitMQ requeues what was not settled. */
  async close(): Promise<void> {
    await this.cancel();
    this.onClose(this);
    await this.channel?.close().catch(() => {});
    this.channel = undefined;
  }
}
