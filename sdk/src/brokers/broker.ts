/**
 * The broker interface: where messages wait.
 *
 * The model is AMQP 0-9-1's, as kombu emulates it on every transport: exchanges route messages to
 * queues by routing key; consumers receive deliveries they must ack or reject. Broadcast
 * exchanges (Celery's `celeryev` events and `celery.pidbox` control) are subscribed to rather
 * than consumed. Each implementation lives in its own folder and passes the shared conformance
 * suite (`test/conformance`); what differs between brokers is stated in {@link BrokerCapabilities}.
 */

/** What a broker can and cannot do; callers branch on these, never on the broker's type. */
export interface BrokerCapabilities {
  /** Message priorities are honoured (Redis: kombu's priority steps; AMQP: `x-max-priority`). */
  readonly priorities: boolean;
  /** Higher priority numbers are served first (AMQP), or lower ones (Redis, where 0 is highest). */
  readonly priorityOrder: "higher-first" | "lower-first" | "none";
  /** Unacked messages of a consumer that vanished are delivered again. */
  readonly redeliversUnacked: boolean;
  /** How unacked messages come back: at once when the connection closes, or after a visibility timeout. */
  readonly redelivery: "on-disconnect" | "visibility-timeout" | "never";
  /** Rejected messages can be dead-lettered through the queue's `deadLetterExchange`. */
  readonly deadLetter: boolean;
  /** Broadcasts published while a subscriber is away are kept for it (a durable queue). */
  readonly durableBroadcast: boolean;
  /** Messages survive a broker restart. */
  readonly persistent: boolean;
  /** Messages are shared between processes (false only for the in-memory broker). */
  readonly distributed: boolean;
}

/** Basic properties of a message, as AMQP defines them. */
export interface MessageProperties {
  correlationId?: string;
  replyTo?: string;
  /** 1 = transient, 2 = persistent. */
  deliveryMode?: 1 | 2;
  priority?: number;
  /** Per-message TTL in milliseconds, as a decimal string (AMQP's `expiration`). */
  expiration?: string;
}

/** A message as it travels, whatever the transport: headers, properties and a serialized body. */
export interface Message {
  body: Buffer;
  contentType: string;
  contentEncoding: string;
  headers: Record<string, unknown>;
  properties: MessageProperties;
}

/** Where a message is sent: an exchange and a routing key (exchange `""` routes to the queue named by the key). */
export interface Route {
  exchange: string;
  routingKey: string;
}

export type ExchangeType = "direct" | "topic" | "fanout";

export interface ExchangeDeclaration {
  name: string;
  type: ExchangeType;
  /** Default true. */
  durable?: boolean;
  /** Default false. */
  autoDelete?: boolean;
}

/**
 * A queue and how it is bound. Celery's default for a queue named `q` is a durable direct
 * exchange `q` with routing key `q`, which is what an omitted `exchange`/`routingKey` means.
 */
export interface QueueDeclaration {
  name: string;
  /** The exchange the queue is bound to; default: one named like the queue. `""` binds none. */
  exchange?: ExchangeDeclaration | string;
  /** Binding key; default: the queue's name. */
  routingKey?: string;
  /** Default true. */
  durable?: boolean;
  /** Default false. */
  autoDelete?: boolean;
  /** Default false. */
  exclusive?: boolean;
  /** `x-max-priority`: must equal what every other declarer of the queue uses (AMQP fails otherwise). */
  maxPriority?: number;
  /** `x-message-ttl` in milliseconds. */
  messageTtl?: number;
  /** `x-expires` in milliseconds: the queue is deleted after being unused that long. */
  expires?: number;
  /** `x-max-length`: oldest messages are dropped past it. */
  maxLength?: number;
  /** `x-dead-letter-exchange` for rejected or expired messages. */
  deadLetterExchange?: string;
  deadLetterRoutingKey?: string;
}

/** One message handed to a consumer, to be acked or rejected exactly once. */
export interface Delivery {
  readonly message: Message;
  /** Unique per delivery; on Redis the kombu `delivery_tag`. */
  readonly deliveryTag: string;
  readonly exchange: string;
  readonly routingKey: string;
  /** The queue it was consumed from. */
  readonly queue: string;
  /** True when the broker delivers it again (after a crash, a requeue or a restore). */
  readonly redelivered: boolean;
  /** Remove the message for good. Settling twice is a no-op. */
  ack(): Promise<void>;
  /** Give the message back (`requeue`), or drop or dead-letter it. Settling twice is a no-op. */
  reject(requeue: boolean): Promise<void>;
  /**
   * Give the message back as a stopping consumer does with what it holds (kombu's
   * `restore_unacked` at warm shutdown): on Redis at the end of its queue that is consumed next,
   * where `reject(true)` puts it at the other end. Brokers without it give back with
   * `reject(true)`. Settling twice is a no-op.
   */
  restore?(): Promise<void>;
}

export interface ConsumeOptions {
  /** Most deliveries handed out and not yet settled; 0 means no limit. */
  prefetch: number;
  /** Deliveries are not to be acked (events, replies): the broker forgets them on delivery. */
  noAck?: boolean;
  onDelivery(delivery: Delivery): void;
}

/** A running consumer of one or more queues. */
export interface Consumer {
  /** Change the prefetch window (Celery raises it by one per held ETA task). */
  setPrefetch(prefetch: number): Promise<void>;
  /** Start consuming one more queue (declaring it). */
  addQueue(queue: QueueDeclaration): Promise<void>;
  /** Stop consuming a queue; deliveries already handed out stay valid. */
  removeQueue(name: string): Promise<void>;
  /** The queues being consumed, in order. */
  readonly queues: readonly string[];
  /**
   * Stop receiving. Deliveries handed out and not settled stay valid until `close()` of the
   * broker, which gives them back (AMQP: channel close; Redis: restore of this consumer's unacked).
   */
  cancel(): Promise<void>;
}

export interface QueueInfo {
  name: string;
  /** Messages ready to be delivered. */
  messages: number;
  /** Consumers attached, where the broker knows (AMQP); null when it cannot tell (Redis). */
  consumers: number | null;
}

/** A broadcast received by a subscriber. */
export interface BroadcastDelivery {
  readonly message: Message;
  readonly exchange: string;
  readonly routingKey: string;
}

export interface SubscribeOptions {
  /**
   * A named durable queue to bind instead of an anonymous one, so broadcasts sent while the
   * subscriber is away are kept (only where `capabilities.durableBroadcast`).
   */
  queue?: QueueDeclaration;
}

export type Unsubscribe = () => Promise<void>;

export interface Broker {
  /** The URL with its password hidden, for logs. */
  readonly displayUrl: string;
  readonly capabilities: BrokerCapabilities;
  /** Connect; idempotent. Brokers reconnect by themselves afterwards. */
  connect(): Promise<void>;
  /** Close, giving back deliveries not yet settled; idempotent. */
  close(): Promise<void>;
  declareExchange(exchange: ExchangeDeclaration): Promise<void>;
  declareQueue(queue: QueueDeclaration): Promise<void>;
  /** Publish; resolves when the broker has taken the message (publisher confirm on AMQP). */
  publish(message: Message, route: Route): Promise<void>;
  consume(queues: QueueDeclaration[], options: ConsumeOptions): Promise<Consumer>;
  /** Subscribe to a broadcast exchange with a binding key (`#` and `*` wildcards on topic exchanges). */
  subscribe(
    exchange: ExchangeDeclaration,
    bindingKey: string,
    onMessage: (delivery: BroadcastDelivery) => void,
    options?: SubscribeOptions,
  ): Promise<Unsubscribe>;
  /** Remove every ready message of a queue; returns how many. */
  purge(queue: string): Promise<number>;
  /** Delete a queue, its messages and its bindings. */
  deleteQueue(queue: string): Promise<void>;
  /** Depth and consumers of a queue, or null when it does not exist. */
  inspectQueue(queue: string): Promise<QueueInfo | null>;
  /**
   * Seconds after which an unsettled delivery is given to another consumer (Redis's visibility
   * timeout); absent where unsettled deliveries come back only when their consumer disconnects.
   */
  readonly visibilityTimeout?: number;
  /**
   * Restart the visibility timeout of these unsettled deliveries, so messages held longer than
   * it (ETA tasks, long late-acked tasks) are not delivered twice. Present with `visibilityTimeout`.
   */
  extendVisibility?(deliveryTags: string[]): Promise<void>;
}

/** Celery's default exchanges for events and remote control. */
export const EVENT_EXCHANGE: ExchangeDeclaration = {
  name: "celeryev",
  type: "topic",
  durable: true,
};
export const PIDBOX_EXCHANGE: ExchangeDeclaration = {
  name: "celery.pidbox",
  type: "fanout",
  durable: false,
};
export const REPLY_EXCHANGE: ExchangeDeclaration = {
  name: "reply.celery.pidbox",
  type: "direct",
  durable: false,
};

/** Normalize a queue declaration's exchange to Celery's defaults. */
export function queueExchange(queue: QueueDeclaration): ExchangeDeclaration | null {
  const ex = queue.exchange ?? queue.name;
  if (ex === "") return null;
  return typeof ex === "string" ? { name: ex, type: "direct", durable: queue.durable ?? true } : ex;
}

/** AMQP topic matching: `*` is one word, `#` zero or more; words are separated by dots. */
export function topicMatches(bindingKey: string, routingKey: string): boolean {
  const pattern = bindingKey
    .split(".")
    .map((w) => (w === "#" ? "#" : w === "*" ? "[^.]+" : w.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")))
    .join("\\.")
    .replace(/\\\.#$/, "(\\..*)?")
    .replace(/^#\\\./, "(.*\\.)?")
    .replace(/\\\.#\\\./g, "(\\..*)?\\.")
    .replace(/^#$/, ".*");
  return new RegExp(`^${pattern}$`).test(routingKey);
}
