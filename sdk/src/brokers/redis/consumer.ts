/**
 * A consumer of Redis queues. It takes messages in batches with one atomic script while the
 * queues have work (registering them as unacked in the same step), and blocks on BRPOP on a
 * connection of its own only when they are empty. It never holds more unsettled deliveries than
 * the prefetch window (kombu emulates prefetch the same way, client side).
 */
import type { Redis } from "ioredis";
import type { ConsumeOptions, Consumer, Delivery, Message, QueueDeclaration } from "../broker.js";
import type { RedisBroker } from "./broker.js";
import {
  type Envelope,
  envelopeToMessage,
  isRedelivered,
  parseEnvelope,
  queueLists,
} from "./envelope.js";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** What a consumer hands on for an entry that is not a kombu envelope: the worker rejects it. */
function unreadable(raw: string): Message {
  return {
    body: Buffer.from(raw),
    contentType: "application/x-unreadable-envelope",
    contentEncoding: "binary",
    headers: {},
    properties: {},
  };
}

export class RedisConsumer implements Consumer {
  private names: string[];
  private prefetch: number;
  private active = true;
  private readonly unsettled = new Set<string>();
  private blocking: Redis | undefined;
  private wake: (() => void) | undefined;
  private rotation = 0;
  private loop: Promise<void> | undefined;

  constructor(
    private readonly broker: RedisBroker,
    queues: string[],
    private readonly options: ConsumeOptions,
    private readonly onClose: (c: RedisConsumer) => void,
  ) {
    this.names = [...queues];
    this.prefetch = options.prefetch;
  }

  get queues(): readonly string[] {
    return this.names;
  }

  start(): void {
    this.loop ??= this.run();
  }

  private free(): number {
    const batch = this.broker.options.fetchBatch;
    return this.prefetch === 0 ? batch : Math.min(batch, this.prefetch - this.unsettled.size);
  }

  /**
   * Refill once a quarter of the window is free rather than at every settle: one script call
   * then brings many messages, instead of one call per message.
   */
  private worthFetching(): boolean {
    if (this.prefetch === 0) return true;
    return (
      this.free() >=
      Math.min(this.broker.options.fetchBatch, Math.max(1, Math.floor(this.prefetch / 4)))
    );
  }

  /** The lists to serve, queue by queue (rotated for fairness), each in priority order. */
  private lists(): { lists: string[]; queueOf: string[] } {
    const lists: string[] = [];
    const queueOf: string[] = [];
    const n = this.names.length;
    for (let i = 0; i < n; i++) {
      const queue = this.names[(this.rotation + i) % n]!;
      for (const list of queueLists(queue)) {
        lists.push(list);
        queueOf.push(queue);
      }
    }
    this.rotation = n ? (this.rotation + 1) % n : 0;
    return { lists, queueOf };
  }

  private async run(): Promise<void> {
    let backoff = 0;
    while (this.active) {
      try {
        if (!this.worthFetching() || this.names.length === 0) {
          await new Promise<void>((resolve) => {
            this.wake = resolve;
            if (this.names.length === 0)
              setTimeout(resolve, this.broker.options.pollTimeout * 1000);
          });
          this.wake = undefined;
          continue;
        }
        const { lists, queueOf } = this.lists();
        const got = await this.broker.fetch(lists, this.free(), this.options.noAck);
        if (got.length > 0) {
          for (let i = 0; i < got.length; i += 3)
            this.deliver(String(got[i + 1]), queueOf[Number(got[i]) - 1]!, got[i + 2] === 1);
        } else {
          await this.blockingFetch(lists, queueOf);
        }
        backoff = 0;
      } catch (error) {
        if (!this.active) break;
        backoff = Math.min(2000, Math.max(100, backoff * 2));
        this.broker.options.logger.warn(
          { err: error, retryInMs: backoff },
          "redis consume failed; retrying",
        );
        await sleep(backoff);
      }
    }
    this.blocking?.disconnect();
    this.blocking = undefined;
  }

  /** Wait for one message on an idle queue; it is recorded as unacked right after the pop. */
  private async blockingFetch(lists: string[], queueOf: string[]): Promise<void> {
    if (!this.active) return;
    this.blocking ??= this.broker.client("block");
    const keys = lists.map((l) => this.broker.key(l));
    const popped = await this.blocking.brpop(...keys, this.broker.options.pollTimeout);
    if (!popped) return;
    const [key, raw] = popped;
    const queue = queueOf[keys.indexOf(key)] ?? this.names[0]!;
    if (!this.active || !this.names.includes(queue)) {
      // Cancelled, or the queue was removed, while waiting: put it back where the next consumer looks first.
      await this.broker.cmd.rpush(key, raw);
      return;
    }
    let registered = false;
    let env: Envelope | undefined;
    try {
      env = parseEnvelope(raw);
      if (typeof env.properties.delivery_tag === "string" && !this.options.noAck) {
        // Not awaited: the task starts and the next fetch is sent without a round trip, and any
        // ack or restore of this message follows it on the same connection, so none overtakes it.
        const tag = env.properties.delivery_tag;
        this.broker
          .register(tag, raw, env)
          .catch((error) =>
            this.broker.options.logger.warn(
              { err: error, deliveryTag: tag },
              "could not record a message as unacked: a crash before it is settled would lose it",
            ),
          );
        registered = true;
      }
    } catch {
      // Unreadable: delivered as such below, for the consumer to reject.
    }
    this.deliver(raw, queue, registered, env);
  }

  private deliver(raw: string, queue: string, registered: boolean, parsed?: Envelope): void {
    let env: Envelope | undefined;
    let message: Message;
    try {
      env = parsed ?? parseEnvelope(raw);
      message = envelopeToMessage(env);
    } catch {
      message = unreadable(raw);
    }
    const tag =
      typeof env?.properties.delivery_tag === "string"
        ? env.properties.delivery_tag
        : `unreadable-${Math.random().toString(36).slice(2)}`;
    const tracked = registered && !this.options.noAck;
    if (tracked) this.unsettled.add(tag);
    let settled = !tracked;
    const settle = async (how: "ack" | "requeue" | "restore") => {
      if (settled) return;
      settled = true;
      this.unsettled.delete(tag);
      if (this.wake && this.worthFetching()) this.wake();
      if (how === "ack") await this.broker.ack(tag);
      // A requeue goes to the back of the queue (kombu's reject: LPUSH); a restore to the front,
      // next to be consumed (kombu's restore_unacked: RPUSH).
      else await this.broker.restoreTag(tag, how === "requeue" ? "left" : "right");
    };
    const info = env?.properties.delivery_info;
    const delivery: Delivery = {
      message,
      deliveryTag: tag,
      exchange: typeof info?.exchange === "string" ? info.exchange : "",
      routingKey: typeof info?.routing_key === "string" ? info.routing_key : queue,
      queue,
      redelivered: env ? isRedelivered(env) : false,
      ack: () => settle("ack"),
      reject: (requeue) => settle(requeue ? "requeue" : "ack"),
      restore: () => settle("restore"),
    };
    try {
      this.options.onDelivery(delivery);
    } catch (error) {
      this.broker.options.logger.error({ err: error }, "delivery handler threw");
    }
  }

  async setPrefetch(prefetch: number): Promise<void> {
    this.prefetch = prefetch;
    this.wake?.();
  }

  async addQueue(queue: QueueDeclaration): Promise<void> {
    await this.broker.declareQueue(queue);
    if (!this.names.includes(queue.name)) this.names.push(queue.name);
    this.wake?.();
  }

  async removeQueue(name: string): Promise<void> {
    this.names = this.names.filter((n) => n !== name);
  }

  async cancel(): Promise<void> {
    if (!this.active) return;
    this.active = false;
    this.wake?.();
    // Interrupt a pending BRPOP instead of waiting out its timeout.
    this.blocking?.disconnect();
    this.blocking = undefined;
    await this.loop;
  }

  /** Stop, and with `giveBack` restore every delivery not yet settled (kombu's warm-shutdown restore). */
  async close(giveBack: boolean): Promise<void> {
    await this.cancel();
    this.onClose(this);
    if (!giveBack) return;
    for (const tag of this.unsettled) await this.broker.restoreTag(tag, "right");
    this.unsettled.clear();
  }
}
