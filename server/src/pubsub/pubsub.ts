/**
 * The typed pubsub that feeds GraphQL subscriptions: in-process, or over Redis when the server
 * runs as several instances (a subscription on one sees what another ingested).
 *
 * Written here rather than taken from Yoga's createPubSub because a busy fleet outruns a slow
 * subscriber: Yoga's per-subscriber queue throws once 1,024 messages wait, which takes the
 * process down. Here each subscriber has a bounded buffer that drops its oldest messages (and
 * says so once), publishing never waits on subscribers, and one listener per topic fans out to
 * all of them.
 */
import { once } from "node:events";
import { Redis } from "ioredis";
import type { Logger } from "pino";
import type { LogRow, TaskRow, TimelineRow, WorkerRow } from "../ingest/writer.js";

export interface TaskEventMessage {
  event: TimelineRow;
  task: TaskRow;
}

export interface WorkerEventMessage {
  type: string;
  worker: WorkerRow;
}

export interface PeriodicRunMessage {
  periodicTaskId: string;
  name: string;
  taskId: string;
  taskName: string;
  scheduledFor: string;
  firedAt: string;
}

/** The registry learnt what these workers can run (their answers changed it). */
export interface RegistryChangedMessage {
  workers: string[];
}

/** Topics and their payloads: plain JSON-able rows (they cross Redis as JSON when distributed). */
export type PubSubMap = {
  "task:event": TaskEventMessage;
  "task:updated": TaskRow;
  "worker:event": WorkerEventMessage;
  "task:log": LogRow;
  "periodic:run": PeriodicRunMessage;
  "registry:changed": RegistryChangedMessage;
};

export type Topic = keyof PubSubMap;

export interface SubscribeOptions<T> {
  /** Only messages this accepts are buffered for the subscriber. */
  filter?: (message: T) => boolean;
  /** Messages held for a subscriber that reads slower than they come. Default: 10,000. */
  bufferSize?: number;
}

type Listener = (message: unknown) => void;

/** One subscriber's bounded queue, read as an async iterator. */
class Subscription<T> implements AsyncIterableIterator<T> {
  private readonly queue: T[] = [];
  private waiting: ((result: IteratorResult<T>) => void) | undefined;
  private closed = false;
  dropped = 0;

  constructor(
    private readonly size: number,
    private readonly onClose: () => void,
    private readonly onFirstDrop: () => void,
  ) {}

  push(message: T): void {
    if (this.closed) return;
    if (this.waiting) {
      const resolve = this.waiting;
      this.waiting = undefined;
      resolve({ value: message, done: false });
      return;
    }
    if (this.queue.length >= this.size) {
      this.queue.shift();
      if (this.dropped++ === 0) this.onFirstDrop();
    }
    this.queue.push(message);
  }

  next(): Promise<IteratorResult<T>> {
    if (this.queue.length > 0) return Promise.resolve({ value: this.queue.shift()!, done: false });
    if (this.closed) return Promise.resolve({ value: undefined, done: true });
    return new Promise((resolve) => {
      this.waiting = resolve;
    });
  }

  return(): Promise<IteratorResult<T>> {
    if (!this.closed) {
      this.closed = true;
      this.queue.length = 0;
      this.onClose();
      this.waiting?.({ value: undefined, done: true });
      this.waiting = undefined;
    }
    return Promise.resolve({ value: undefined, done: true });
  }

  [Symbol.asyncIterator]() {
    return this;
  }
}

export class PubSub {
  private readonly listeners = new Map<Topic, Set<Listener>>();
  private readonly redis: { pub: Redis; sub: Redis; prefix: string } | undefined;
  /** Publishes Redis has not answered yet: `close()` lets them finish. */
  private readonly inFlight = new Set<Promise<unknown>>();

  constructor(
    redisUrl: string | null,
    private readonly logger?: Logger,
  ) {
    if (redisUrl) {
      // While Redis is away, messages are not queued up in memory: live streams lose them, as any
      // subscriber that was not listening would, and the history in Postgres is unaffected.
      const pub = new Redis(redisUrl, { enableOfflineQueue: false, maxRetriesPerRequest: 1 });
      const sub = new Redis(redisUrl, { maxRetriesPerRequest: null });
      for (const c of [pub, sub])
        c.on("error", (e) => this.logger?.debug({ err: e }, "pubsub redis error"));
      const prefix = "celeriac:pubsub:";
      sub
        .psubscribe(`${prefix}*`)
        .catch((e) => this.logger?.warn({ err: e }, "pubsub subscribe failed"));
      sub.on("pmessage", (_pattern: string, channel: string, text: string) => {
        let message: unknown;
        try {
          message = JSON.parse(text);
        } catch {
          return; // not ours
        }
        this.dispatch(channel.slice(prefix.length) as Topic, message);
      });
      this.redis = { pub, sub, prefix };
    }
  }

  publish<K extends Topic>(topic: K, message: PubSubMap[K]): void {
    if (!this.redis) {
      this.dispatch(topic, message);
      return;
    }
    const sent = this.redis.pub
      .publish(this.redis.prefix + topic, JSON.stringify(message))
      .catch((e) => this.logger?.debug({ err: e, topic }, "pubsub publish failed"))
      .finally(() => this.inFlight.delete(sent));
    this.inFlight.add(sent);
  }

  /**
   * Whether the Redis connection is up, waiting for it up to `timeoutMs` (true at once in
   * process). Publishes made before that are dropped, as while Redis is away: a short-lived
   * publisher (the command line) waits here.
   */
  async ready(timeoutMs = 5000): Promise<boolean> {
    const pub = this.redis?.pub;
    if (!pub || pub.status === "ready") return true;
    return once(pub, "ready", { signal: AbortSignal.timeout(timeoutMs) }).then(
      () => true,
      () => false,
    );
  }

  private dispatch(topic: Topic, message: unknown): void {
    for (const listener of this.listeners.get(topic) ?? []) {
      // A subscriber's filter meeting a message it did not expect costs it that message only.
      try {
        listener(message);
      } catch (error) {
        this.logger?.debug({ err: error, topic }, "a subscriber could not take a message");
      }
    }
  }

  subscribe<K extends Topic>(
    topic: K,
    options: SubscribeOptions<PubSubMap[K]> = {},
  ): AsyncIterableIterator<PubSubMap[K]> {
    const set = this.listeners.get(topic) ?? new Set<Listener>();
    this.listeners.set(topic, set);
    const subscription = new Subscription<PubSubMap[K]>(
      options.bufferSize ?? 10_000,
      () => set.delete(listener),
      () =>
        this.logger?.warn(
          { topic },
          "a subscriber reads slower than events arrive; dropping its oldest",
        ),
    );
    const filter = options.filter;
    const listener: Listener = (m) => {
      const message = m as PubSubMap[K];
      if (!filter || filter(message)) subscription.push(message);
    };
    set.add(listener);
    return subscription;
  }

  /** Subscribers listening now, per topic (for metrics). */
  subscribers(topic: Topic): number {
    return this.listeners.get(topic)?.size ?? 0;
  }

  async close(): Promise<void> {
    await Promise.allSettled([...this.inFlight]);
    this.redis?.pub.disconnect();
    this.redis?.sub.disconnect();
  }
}
