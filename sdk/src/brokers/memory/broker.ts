/**
 * The in-memory broker: queues inside this process, for tests of users' code and for dev mode.
 * Every MemoryBroker built with the same URL (`memory://` or `memory://<name>`) shares one hub,
 * so a producer app and a worker app in one process talk to each other as over a real broker.
 */
import { randomUUID } from "node:crypto";
import {
  type BroadcastDelivery,
  type Broker,
  type BrokerCapabilities,
  type ConsumeOptions,
  type Consumer,
  type Delivery,
  type ExchangeDeclaration,
  type Message,
  type QueueDeclaration,
  type QueueInfo,
  queueExchange,
  type Route,
  topicMatches,
} from "../broker.js";
import { memoryName } from "../url.js";

interface Stored {
  message: Message;
  redelivered: boolean;
  exchange: string;
  routingKey: string;
  seq: number;
}

interface Binding {
  queue: string;
  key: string;
}

interface Subscriber {
  exchange: string;
  key: string;
  onMessage(d: BroadcastDelivery): void;
}

/** The shared state behind every MemoryBroker of one name. */
class Hub {
  readonly queues = new Map<string, { items: Stored[]; maxPriority: number }>();
  readonly exchanges = new Map<string, ExchangeDeclaration>();
  readonly bindings = new Map<string, Binding[]>();
  readonly subscribers = new Set<Subscriber>();
  readonly consumers = new Set<MemoryConsumer>();
  private seq = 0;

  nextSeq() {
    return this.seq++;
  }

  enqueue(queue: string, stored: Stored, front = false) {
    const q = this.queues.get(queue) ?? { items: [], maxPriority: 0 };
    this.queues.set(queue, q);
    if (front) q.items.unshift(stored);
    else q.items.push(stored);
    for (const c of this.consumers) c.pump();
  }

  /** Take the next message of a queue: highest priority first (when the queue has priorities), FIFO within one. */
  take(queue: string): Stored | undefined {
    const q = this.queues.get(queue);
    if (!q || q.items.length === 0) return undefined;
    if (q.maxPriority === 0) return q.items.shift();
    let best = 0;
    for (let i = 1; i < q.items.length; i++) {
      if (priorityOf(q.items[i]!, q.maxPriority) > priorityOf(q.items[best]!, q.maxPriority))
        best = i;
    }
    return q.items.splice(best, 1)[0];
  }
}

function priorityOf(s: Stored, max: number): number {
  return Math.min(s.message.properties.priority ?? 0, max);
}

const hubs = new Map<string, Hub>();

export const MEMORY_CAPABILITIES: BrokerCapabilities = Object.freeze({
  priorities: true,
  priorityOrder: "higher-first",
  redeliversUnacked: true,
  redelivery: "on-disconnect",
  deadLetter: false,
  durableBroadcast: false,
  persistent: false,
  distributed: false,
});

export class MemoryBroker implements Broker {
  readonly capabilities = MEMORY_CAPABILITIES;
  readonly displayUrl: string;
  private readonly hub: Hub;
  private readonly mine = new Set<MemoryConsumer>();
  private readonly subscriptions = new Set<Subscriber>();

  constructor(url = "memory://") {
    const { name, displayUrl } = memoryName(url);
    this.displayUrl = displayUrl;
    let hub = hubs.get(name);
    if (!hub) {
      hub = new Hub();
      hubs.set(name, hub);
    }
    this.hub = hub;
  }

  async connect(): Promise<void> {}

  async close(): Promise<void> {
    for (const c of [...this.mine]) c.giveBack();
    this.mine.clear();
    for (const s of this.subscriptions) this.hub.subscribers.delete(s);
    this.subscriptions.clear();
  }

  async declareExchange(exchange: ExchangeDeclaration): Promise<void> {
    if (!this.hub.exchanges.has(exchange.name)) this.hub.exchanges.set(exchange.name, exchange);
  }

  async declareQueue(queue: QueueDeclaration): Promise<void> {
    const existing = this.hub.queues.get(queue.name);
    if (existing) existing.maxPriority = Math.max(existing.maxPriority, queue.maxPriority ?? 0);
    else this.hub.queues.set(queue.name, { items: [], maxPriority: queue.maxPriority ?? 0 });
    const exchange = queueExchange(queue);
    if (!exchange) return;
    await this.declareExchange(exchange);
    const key = queue.routingKey ?? queue.name;
    const list = this.hub.bindings.get(exchange.name) ?? [];
    if (!list.some((b) => b.queue === queue.name && b.key === key))
      list.push({ queue: queue.name, key });
    this.hub.bindings.set(exchange.name, list);
  }

  async publish(message: Message, route: Route): Promise<void> {
    const exchange = this.hub.exchanges.get(route.exchange);
    if (exchange && exchange.type !== "direct") {
      for (const s of this.hub.subscribers) {
        if (s.exchange !== route.exchange) continue;
        if (exchange.type === "topic" && !topicMatches(s.key, route.routingKey)) continue;
        const delivery = { message, exchange: route.exchange, routingKey: route.routingKey };
        queueMicrotask(() => s.onMessage(delivery));
      }
    }
    for (const queue of this.route(route)) {
      this.hub.enqueue(queue, {
        message,
        redelivered: false,
        exchange: route.exchange,
        routingKey: route.routingKey,
        seq: this.hub.nextSeq(),
      });
    }
  }

  private route(route: Route): string[] {
    if (route.exchange === "") return [route.routingKey];
    const exchange = this.hub.exchanges.get(route.exchange);
    const bindings = this.hub.bindings.get(route.exchange) ?? [];
    return bindings
      .filter((b) =>
        exchange?.type === "fanout"
          ? true
          : exchange?.type === "topic"
            ? topicMatches(b.key, route.routingKey)
            : b.key === route.routingKey,
      )
      .map((b) => b.queue);
  }

  async consume(queues: QueueDeclaration[], options: ConsumeOptions): Promise<Consumer> {
    for (const q of queues) await this.declareQueue(q);
    const consumer = new MemoryConsumer(
      this.hub,
      queues.map((q) => q.name),
      options,
      (q) => this.declareQueue(q),
      (c) => this.mine.delete(c),
    );
    this.mine.add(consumer);
    this.hub.consumers.add(consumer);
    consumer.pump();
    return consumer;
  }

  async subscribe(
    exchange: ExchangeDeclaration,
    bindingKey: string,
    onMessage: (d: BroadcastDelivery) => void,
  ) {
    await this.declareExchange(exchange);
    const sub: Subscriber = { exchange: exchange.name, key: bindingKey, onMessage };
    this.hub.subscribers.add(sub);
    this.subscriptions.add(sub);
    return async () => {
      this.hub.subscribers.delete(sub);
      this.subscriptions.delete(sub);
    };
  }

  async purge(queue: string): Promise<number> {
    const q = this.hub.queues.get(queue);
    if (!q) return 0;
    const n = q.items.length;
    q.items = [];
    return n;
  }

  async deleteQueue(queue: string): Promise<void> {
    this.hub.queues.delete(queue);
    for (const [ex, list] of this.hub.bindings)
      this.hub.bindings.set(
        ex,
        list.filter((b) => b.queue !== queue),
      );
  }

  async inspectQueue(queue: string): Promise<QueueInfo | null> {
    const q = this.hub.queues.get(queue);
    if (!q) return null;
    let consumers = 0;
    for (const c of this.hub.consumers) if (c.queues.includes(queue)) consumers++;
    return { name: queue, messages: q.items.length, consumers };
  }
}

class MemoryConsumer implements Consumer {
  private names: string[];
  private prefetch: number;
  private readonly unsettled = new Map<string, { stored: Stored; queue: string }>();
  private active = true;
  private next = 0;
  private scheduled = false;

  constructor(
    private readonly hub: Hub,
    queues: string[],
    private readonly options: ConsumeOptions,
    private readonly declare: (q: QueueDeclaration) => Promise<void>,
    private readonly forget: (c: MemoryConsumer) => void,
  ) {
    this.names = [...queues];
    this.prefetch = options.prefetch;
  }

  get queues(): readonly string[] {
    return this.names;
  }

  /** Hand out messages on a later tick, as a network broker would, until the window is full. */
  pump() {
    if (this.scheduled || !this.active) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      this.drain();
    });
  }

  private drain() {
    while (this.active && (this.prefetch === 0 || this.unsettled.size < this.prefetch)) {
      const got = this.takeRoundRobin();
      if (!got) return;
      this.deliver(got.stored, got.queue);
    }
  }

  private takeRoundRobin(): { stored: Stored; queue: string } | undefined {
    for (let i = 0; i < this.names.length; i++) {
      const queue = this.names[(this.next + i) % this.names.length]!;
      const stored = this.hub.take(queue);
      if (stored) {
        this.next = (this.next + i + 1) % this.names.length;
        return { stored, queue };
      }
    }
    return undefined;
  }

  private deliver(stored: Stored, queue: string) {
    const tag = randomUUID();
    let settled = false;
    const settle = (requeue: boolean) => {
      if (settled) return;
      settled = true;
      this.unsettled.delete(tag);
      if (requeue) this.hub.enqueue(queue, { ...stored, redelivered: true });
      this.pump();
    };
    if (!this.options.noAck) this.unsettled.set(tag, { stored, queue });
    const delivery: Delivery = {
      message: stored.message,
      deliveryTag: tag,
      exchange: stored.exchange,
      routingKey: stored.routingKey,
      queue,
      redelivered: stored.redelivered,
      ack: async () => settle(false),
      reject: async (requeue) => settle(requeue),
    };
    this.options.onDelivery(delivery);
  }

  async setPrefetch(prefetch: number) {
    this.prefetch = prefetch;
    this.pump();
  }

  async addQueue(queue: QueueDeclaration) {
    await this.declare(queue);
    if (!this.names.includes(queue.name)) this.names.push(queue.name);
    this.pump();
  }

  async removeQueue(name: string) {
    this.names = this.names.filter((n) => n !== name);
  }

  async cancel() {
    this.active = false;
    this.hub.consumers.delete(this);
  }

  /** The broker closed: unsettled deliveries go back to the front of their queues, as AMQP does. */
  giveBack() {
    this.active = false;
    this.hub.consumers.delete(this);
    this.forget(this);
    const entries = [...this.unsettled.values()].sort((a, b) => b.stored.seq - a.stored.seq);
    this.unsettled.clear();
    for (const { stored, queue } of entries)
      this.hub.enqueue(queue, { ...stored, redelivered: true }, true);
  }
}
