/**
 * The Redis broker, in kombu 5.2's exact layout, so Python Celery workers and producers share
 * queues with ours: lists per queue and priority step (LPUSH to publish, pop from the right),
 * `unacked` + `unacked_index` for delivered messages, visibility-timeout restore under
 * `unacked_mutex`, `_kombu.binding.*` sets for routing, and PUBLISH/PSUBSCRIBE for fanout.
 */
import { randomUUID } from "node:crypto";
import { Redis, type RedisOptions } from "ioredis";
import { CeleriacError } from "../../errors.js";
import {
  type BroadcastDelivery,
  type Broker,
  type BrokerCapabilities,
  type ConsumeOptions,
  type Consumer,
  type ExchangeDeclaration,
  type Message,
  type QueueDeclaration,
  type QueueInfo,
  queueExchange,
  type Route,
  topicMatches,
  type Unsubscribe,
} from "../broker.js";
import { redact } from "../url.js";
import { RedisConsumer } from "./consumer.js";
import {
  type Envelope,
  encodeEnvelope,
  envelopeToMessage,
  markRedelivered,
  parseEnvelope,
  priorityList,
  SEP,
} from "./envelope.js";
import { type RedisBrokerOptions, resolveRedisBrokerOptions } from "./options.js";
import { ACK, FETCH, REGISTER, RESTORE, UNLOCK } from "./scripts.js";

export const REDIS_CAPABILITIES: BrokerCapabilities = Object.freeze({
  priorities: true,
  priorityOrder: "lower-first",
  redeliversUnacked: true,
  redelivery: "visibility-timeout",
  deadLetter: false,
  durableBroadcast: false,
  // Depends on the server's persistence settings (RDB/AOF); we cannot promise it.
  persistent: false,
  distributed: true,
});

type Scripted = Redis & {
  celeriacFetch(...args: Array<string | number>): Promise<Array<number | string>>;
  celeriacRestore(
    unacked: string,
    index: string,
    list: string,
    tag: string,
    envelope: string,
    side: "left" | "right",
  ): Promise<number>;
  celeriacRegister(
    unacked: string,
    index: string,
    tag: string,
    entry: string,
    now: number,
  ): Promise<null>;
  celeriacAck(unacked: string, index: string, ...tags: string[]): Promise<null>;
  celeriacUnlock(key: string, token: string): Promise<number>;
};

export class RedisBroker implements Broker {
  readonly capabilities = REDIS_CAPABILITIES;
  readonly displayUrl: string;
  readonly options: RedisBrokerOptions;
  private readonly db: number;
  private readonly connection: RedisOptions;
  private cmdClient: Scripted | undefined;
  private corked = false;
  private subClient: Redis | undefined;
  private readonly exchanges = new Map<string, ExchangeDeclaration>();
  private readonly consumers = new Set<RedisConsumer>();
  private readonly subscriptions = new Map<string, Set<(d: BroadcastDelivery) => void>>();
  private readonly subscribedExchange = new Map<string, string>();
  private restoreTimer: NodeJS.Timeout | undefined;
  private connecting: Promise<void> | undefined;
  private pendingAcks: string[] = [];
  private ackFlush: Promise<void> | undefined;
  private readonly id = randomUUID().slice(0, 8);

  constructor(
    private readonly url: string,
    options: Partial<RedisBrokerOptions> = {},
  ) {
    const u = new URL(url);
    if (u.protocol !== "redis:" && u.protocol !== "rediss:")
      throw new CeleriacError("INVALID_URL", `not a Redis URL: ${redact(url)}`);
    this.options = resolveRedisBrokerOptions(u, options);
    this.db = Number(u.pathname.replace(/^\//, "") || 0);
    if (!Number.isInteger(this.db) || this.db < 0)
      throw new CeleriacError("INVALID_URL", `bad Redis database in ${redact(url)}`);
    this.displayUrl = redact(
      `${u.protocol}//${u.username ? `${u.username}:` : ""}${u.password ? `${u.password}@` : u.username ? "@" : ""}${u.host}/${this.db}`,
    );
    this.connection = {
      host: u.hostname || "127.0.0.1",
      port: Number(u.port || 6379),
      db: this.db,
      ...(u.username ? { username: decodeURIComponent(u.username) } : {}),
      ...(u.password ? { password: decodeURIComponent(u.password) } : {}),
      ...(u.protocol === "rediss:" ? { tls: {} } : {}),
      lazyConnect: true,
      // Commands wait through reconnections instead of failing: a worker rides out a Redis restart.
      maxRetriesPerRequest: null,
      retryStrategy: (times) => Math.min(100 * 2 ** Math.min(times, 5), 2000),
    };
  }

  /** @internal The URL it was built with (password included): other stores share this Redis. */
  get redisUrl(): string {
    return this.url;
  }

  get visibilityTimeout(): number {
    return this.options.visibilityTimeout;
  }

  /** A new connection; every one is named so operators (and tests) can find it. */
  client(role: string, extra: RedisOptions = {}): Redis {
    const client = new Redis({
      ...this.connection,
      connectionName: `${this.options.connectionName}:${role}:${this.id}`,
      ...extra,
    });
    client.on("error", (error) =>
      this.options.logger.debug({ err: error, role }, "redis connection error"),
    );
    return client;
  }

  /**
   * Hold the command connection's writes until the end of this tick, so that a burst of sends
   * (a producer's, the beat's) goes out in one write, as auto-pipelining would, without a
   * pipeline object per tick.
   */
  private coalesceWrites(): void {
    const client = this.cmd;
    if (this.corked || client.status !== "ready") return;
    const socket = client.stream;
    this.corked = true;
    socket.cork();
    process.nextTick(() => {
      this.corked = false;
      socket.uncork();
    });
  }

  /**
   * The command connection, with our scripts. Not auto-pipelined: ioredis builds a pipeline
   * object per turn of the event loop for that, and at a worker's steady rate those outlive
   * young collections, which then take several times longer (a worker's CPU at 1,000 tasks/s
   * fell by a fifth without it). Publishes are coalesced by `coalesceWrites` instead.
   */
  get cmd(): Scripted {
    if (!this.cmdClient) {
      const c = this.client("cmd") as Scripted;
      c.defineCommand("celeriacFetch", { lua: FETCH });
      c.defineCommand("celeriacRestore", { numberOfKeys: 3, lua: RESTORE });
      c.defineCommand("celeriacUnlock", { numberOfKeys: 1, lua: UNLOCK });
      c.defineCommand("celeriacRegister", { numberOfKeys: 2, lua: REGISTER });
      c.defineCommand("celeriacAck", { numberOfKeys: 2, lua: ACK });
      this.cmdClient = c;
    }
    return this.cmdClient;
  }

  key(name: string): string {
    return this.options.globalKeyprefix + name;
  }

  async connect(): Promise<void> {
    this.connecting ??= (async () => {
      await this.cmd.connect().catch((error: Error) => {
        // ioredis keeps retrying in the background; the first failure is still worth reporting.
        if (
          this.cmd.status !== "ready" &&
          this.cmd.status !== "connecting" &&
          this.cmd.status !== "reconnecting"
        )
          throw error;
      });
      await this.cmd.ping();
      this.restoreTimer = setInterval(
        () =>
          void this.restoreVisible().catch((e) =>
            this.options.logger.warn({ err: e }, "restore failed"),
          ),
        this.options.restoreInterval * 1000,
      );
      this.restoreTimer.unref();
      void this.restoreVisible().catch((e) =>
        this.options.logger.warn({ err: e }, "restore failed"),
      );
    })();
    this.connecting.catch(() => {
      this.connecting = undefined;
    });
    return this.connecting;
  }

  async close(): Promise<void> {
    const connecting = this.connecting;
    this.connecting = undefined;
    if (!connecting) return;
    await connecting.catch(() => {});
    if (this.restoreTimer) clearInterval(this.restoreTimer);
    for (const c of [...this.consumers]) await c.close(true);
    this.consumers.clear();
    this.subscriptions.clear();
    this.subClient?.disconnect();
    this.subClient = undefined;
    await this.cmdClient?.quit().catch(() => this.cmdClient?.disconnect());
    this.cmdClient = undefined;
  }

  async declareExchange(exchange: ExchangeDeclaration): Promise<void> {
    this.exchanges.set(exchange.name, exchange);
  }

  async declareQueue(queue: QueueDeclaration): Promise<void> {
    const exchange = queueExchange(queue);
    if (!exchange) return;
    if (!this.exchanges.has(exchange.name)) this.exchanges.set(exchange.name, exchange);
    await this.cmd.sadd(
      this.key(`_kombu.binding.${exchange.name}`),
      `${queue.routingKey ?? queue.name}${SEP}${SEP}${queue.name}`,
    );
  }

  /** The channel of a fanout publish, as kombu names it: `/{db}.{exchange}[/{routing key}]`. */
  fanoutChannel(exchange: string, routingKey: string): string {
    const base = `${this.options.globalKeyprefix}/${this.db}.${exchange}`;
    return routingKey ? `${base}/${routingKey}` : base;
  }

  /** Queues a routing key reaches through an exchange's bindings. */
  async resolve(exchange: string, routingKey: string): Promise<string[]> {
    if (exchange === "") return [routingKey];
    const type = this.exchanges.get(exchange)?.type ?? "direct";
    const members = await this.cmd.smembers(this.key(`_kombu.binding.${exchange}`));
    const queues: string[] = [];
    for (const m of members) {
      const [key = "", , queue = ""] = m.split(SEP);
      if (
        type === "fanout" ||
        (type === "topic" ? topicMatches(key, routingKey) : key === routingKey)
      )
        queues.push(queue);
    }
    return queues;
  }

  async publish(message: Message, route: Route): Promise<void> {
    await this.connect();
    const exchange = this.exchanges.get(route.exchange);
    // Fanout and topic exchanges (events, pidbox) are pub/sub on Redis, as Celery sets them up.
    if (exchange && exchange.type !== "direct") {
      const { text } = encodeEnvelope(message, route.exchange, route.routingKey);
      this.coalesceWrites();
      await this.cmd.publish(this.fanoutChannel(route.exchange, route.routingKey), text);
      return;
    }
    const queues = await this.resolve(route.exchange, route.routingKey);
    if (queues.length === 0) {
      this.options.logger.warn(
        { exchange: route.exchange, routingKey: route.routingKey },
        "message dropped: no queue bound",
      );
      return;
    }
    const priority = message.properties.priority ?? 0;
    for (const queue of queues) {
      // Each copy needs its own delivery tag: the tag is the ack key.
      const { text } = encodeEnvelope(message, route.exchange, route.routingKey);
      this.coalesceWrites();
      await this.cmd.lpush(this.key(priorityList(queue, priority)), text);
    }
  }

  async consume(queues: QueueDeclaration[], options: ConsumeOptions): Promise<Consumer> {
    await this.connect();
    for (const q of queues) await this.declareQueue(q);
    const consumer = new RedisConsumer(
      this,
      queues.map((q) => q.name),
      options,
      (c) => this.consumers.delete(c),
    );
    this.consumers.add(consumer);
    consumer.start();
    return consumer;
  }

  /** Fetch up to `max` messages from these lists, registered as unacked, in one round trip. */
  fetch(lists: string[], max: number, noAck = false): Promise<Array<number | string>> {
    return this.cmd.celeriacFetch(
      lists.length + 2,
      ...lists.map((l) => this.key(l)),
      this.key("unacked"),
      this.key("unacked_index"),
      max,
      Date.now() / 1000,
      lists.length,
      noAck ? "1" : "0",
    );
  }

  /** Record a message won by a blocking pop as unacked. */
  async register(tag: string, raw: string, env: Envelope): Promise<void> {
    const info = env.properties.delivery_info ?? { exchange: "", routing_key: "" };
    await this.cmd.celeriacRegister(
      this.key("unacked"),
      this.key("unacked_index"),
      tag,
      `[${raw}, ${JSON.stringify(info.exchange ?? "")}, ${JSON.stringify(info.routing_key ?? "")}]`,
      Date.now() / 1000,
    );
  }

  /**
   * Acks are coalesced: every ack of one turn of the event loop goes out as one script call,
   * instead of two commands per message.
   */
  ack(tag: string): Promise<void> {
    // Settling after close: the message was already restored by close().
    if (!this.connecting) return Promise.resolve();
    this.pendingAcks.push(tag);
    this.ackFlush ??= new Promise<void>((resolve, reject) => {
      setImmediate(() => {
        const tags = this.pendingAcks;
        this.pendingAcks = [];
        this.ackFlush = undefined;
        this.cmd
          .celeriacAck(this.key("unacked"), this.key("unacked_index"), ...tags)
          .then(() => resolve(), reject);
      });
    });
    return this.ackFlush;
  }

  /**
   * Put an unacked message back on its queue, marked redelivered: at the back (`left`, a reject
   * with requeue) or at the front (`right`, a restore). Does nothing if it was settled meanwhile.
   */
  async restoreTag(tag: string, side: "left" | "right"): Promise<boolean> {
    if (!this.cmdClient) return false;
    const stored = await this.cmd.hget(this.key("unacked"), tag);
    if (stored === null) {
      await this.cmd.zrem(this.key("unacked_index"), tag);
      return false;
    }
    let env: Envelope;
    let exchange = "";
    let routingKey = "";
    try {
      const parsed = JSON.parse(stored) as [Envelope, string, string];
      [env, exchange, routingKey] = parsed;
      if (!env || typeof env !== "object") throw new Error("no envelope");
    } catch {
      // Not something any consumer could use: drop the entry rather than restore it forever.
      await this.ack(tag);
      return false;
    }
    const queues = await this.resolve(exchange, routingKey);
    const text = markRedelivered(env);
    const list = this.key(priorityList(queues[0] ?? routingKey, env.properties.priority ?? 0));
    const done = await this.cmd.celeriacRestore(
      this.key("unacked"),
      this.key("unacked_index"),
      list,
      tag,
      text,
      side,
    );
    for (const extra of queues.slice(1))
      await this.cmd.rpush(this.key(priorityList(extra, env.properties.priority ?? 0)), text);
    return done === 1;
  }

  /**
   * Restore unacked messages older than the visibility timeout (any consumer's, like kombu's
   * QoS.restore_visible), under kombu's `unacked_mutex` so workers do not restore twice.
   */
  async restoreVisible(): Promise<number> {
    const token = randomUUID();
    const mutex = this.key("unacked_mutex");
    if ((await this.cmd.set(mutex, token, "PX", 300_000, "NX")) !== "OK") return 0;
    try {
      const ceiling = Date.now() / 1000 - this.options.visibilityTimeout;
      const tags = await this.cmd.zrevrangebyscore(
        this.key("unacked_index"),
        ceiling,
        0,
        "LIMIT",
        0,
        this.options.restoreLimit,
      );
      let n = 0;
      for (const tag of tags) if (await this.restoreTag(tag, "right")) n++;
      if (n)
        this.options.logger.info(
          { restored: n },
          "restored unacked messages past the visibility timeout",
        );
      return n;
    } finally {
      await this.cmd.celeriacUnlock(mutex, token);
    }
  }

  async extendVisibility(deliveryTags: string[]): Promise<void> {
    if (deliveryTags.length === 0) return;
    const now = Date.now() / 1000;
    await this.cmd.zadd(this.key("unacked_index"), "XX", ...deliveryTags.flatMap((t) => [now, t]));
  }

  private subscriber(): Redis {
    if (!this.subClient) {
      const sub = this.client("sub");
      sub.on("pmessage", (pattern: string, channel: string, text: string) => {
        const handlers = this.subscriptions.get(pattern);
        if (!handlers?.size) return;
        let message: Message;
        try {
          message = envelopeFromText(text);
        } catch (error) {
          this.options.logger.warn({ err: error, channel }, "ignored a malformed broadcast");
          return;
        }
        const exchange = this.subscribedExchange.get(pattern) ?? "";
        const routingKey = channel
          .slice(this.fanoutChannel(exchange, "").length)
          .replace(/^\//, "");
        const delivery = { message, exchange, routingKey };
        for (const h of handlers) h(delivery);
      });
      this.subClient = sub;
    }
    return this.subClient;
  }

  async subscribe(
    exchange: ExchangeDeclaration,
    bindingKey: string,
    onMessage: (d: BroadcastDelivery) => void,
  ): Promise<Unsubscribe> {
    await this.connect();
    await this.declareExchange(exchange);
    // kombu's subscription topic, with AMQP's `#` turned into Redis's `*`.
    const pattern = this.fanoutChannel(exchange.name, bindingKey.replace(/#/g, "*"));
    const sub = this.subscriber();
    let handlers = this.subscriptions.get(pattern);
    if (!handlers) {
      handlers = new Set();
      this.subscriptions.set(pattern, handlers);
      this.subscribedExchange.set(pattern, exchange.name);
      await sub.psubscribe(pattern);
    }
    handlers.add(onMessage);
    return async () => {
      const set = this.subscriptions.get(pattern);
      set?.delete(onMessage);
      if (set && set.size === 0) {
        this.subscriptions.delete(pattern);
        await this.subClient?.punsubscribe(pattern);
      }
    };
  }

  async purge(queue: string): Promise<number> {
    await this.connect();
    const lists = [0, 3, 6, 9].map((p) => this.key(priorityList(queue, p)));
    const counts = await Promise.all(lists.map((l) => this.cmd.llen(l)));
    await this.cmd.del(...lists);
    return counts.reduce((a, b) => a + b, 0);
  }

  async deleteQueue(queue: string): Promise<void> {
    await this.purge(queue);
    await this.cmd.srem(this.key(`_kombu.binding.${queue}`), `${queue}${SEP}${SEP}${queue}`);
  }

  async inspectQueue(queue: string): Promise<QueueInfo | null> {
    await this.connect();
    const counts = await Promise.all(
      [0, 3, 6, 9].map((p) => this.cmd.llen(this.key(priorityList(queue, p)))),
    );
    return { name: queue, messages: counts.reduce((a, b) => a + b, 0), consumers: null };
  }
}

export function envelopeFromText(text: string): Message {
  return envelopeToMessage(parseEnvelope(text));
}
