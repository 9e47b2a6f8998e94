/**
 * The RabbitMQ broker, with Celery's topology: a durable direct exchange and durable queue per
 * queue name (with `x-max-priority` only when asked, since RabbitMQ refuses a redeclaration with
 * other arguments), persistent messages, publisher confirms, `basic.qos` prefetch and manual
 * acks. The connection comes back by itself after a drop or a broker restart (rabbitmq-client),
 * and every consumer and subscription sets itself up again on the new connection.
 */
import { type Channel, Connection } from "rabbitmq-client";
import { CeleriacError } from "../../errors.js";
import type {
  BroadcastDelivery,
  Broker,
  BrokerCapabilities,
  ConsumeOptions,
  Consumer,
  ExchangeDeclaration,
  Message,
  QueueDeclaration,
  QueueInfo,
  Route,
  SubscribeOptions,
  Unsubscribe,
} from "../broker.js";
import { queueExchange } from "../broker.js";
import { redact } from "../url.js";
import { AmqpConsumer } from "./consumer.js";
import { toFieldTable } from "./message.js";
import { type AmqpBrokerOptions, resolveAmqpBrokerOptions } from "./options.js";

export const AMQP_CAPABILITIES: BrokerCapabilities = Object.freeze({
  priorities: true,
  priorityOrder: "higher-first",
  redeliversUnacked: true,
  redelivery: "on-disconnect",
  deadLetter: true,
  durableBroadcast: true,
  persistent: true,
  distributed: true,
});

/** kombu's `x-` queue arguments for a declaration. */
function queueArguments(q: QueueDeclaration): Record<string, unknown> {
  const args: Record<string, unknown> = {};
  if (q.maxPriority !== undefined) args["x-max-priority"] = q.maxPriority;
  if (q.messageTtl !== undefined) args["x-message-ttl"] = q.messageTtl;
  if (q.expires !== undefined) args["x-expires"] = q.expires;
  if (q.maxLength !== undefined) args["x-max-length"] = q.maxLength;
  if (q.deadLetterExchange !== undefined) args["x-dead-letter-exchange"] = q.deadLetterExchange;
  if (q.deadLetterRoutingKey !== undefined)
    args["x-dead-letter-routing-key"] = q.deadLetterRoutingKey;
  return args;
}

export class AmqpBroker implements Broker {
  readonly capabilities = AMQP_CAPABILITIES;
  readonly displayUrl: string;
  readonly options: AmqpBrokerOptions;
  private readonly connectionOptions: ConstructorParameters<typeof Connection>[0];
  private conn: Connection | undefined;
  private publishChannel: Promise<Channel> | undefined;
  private readonly consumers = new Set<AmqpConsumer>();
  private connecting: Promise<void> | undefined;

  constructor(url: string, options: Partial<AmqpBrokerOptions> = {}) {
    const u = new URL(url.replace(/^pyamqp:/, "amqp:"));
    if (u.protocol !== "amqp:" && u.protocol !== "amqps:")
      throw new CeleriacError("INVALID_URL", `not an AMQP URL: ${redact(url)}`);
    this.options = resolveAmqpBrokerOptions(options);
    // kombu's reading of the path: `//` and `/` both mean the default vhost "/".
    const vhost = decodeURIComponent(u.pathname.slice(1)) || "/";
    this.displayUrl = redact(
      `${u.protocol}//${u.username ? `${u.username}:${u.password ? "***" : ""}@` : ""}${u.host}/${u.pathname.slice(1)}`,
    );
    this.connectionOptions = {
      hostname: u.hostname || "127.0.0.1",
      port: Number(u.port || (u.protocol === "amqps:" ? 5671 : 5672)),
      username: decodeURIComponent(u.username || "guest"),
      password: decodeURIComponent(u.password || "guest"),
      vhost,
      tls: u.protocol === "amqps:",
      heartbeat: this.options.heartbeat,
      connectionName: this.options.connectionName,
      retryLow: 200,
      retryHigh: 5000,
      noDelay: true,
    };
  }

  /** The live connection; rabbitmq-client reconnects it by itself. */
  get connection(): Connection {
    if (!this.conn)
      throw new CeleriacError("CONNECTION_CLOSED", `not connected to ${this.displayUrl}`);
    return this.conn;
  }

  async connect(): Promise<void> {
    this.connecting ??= (async () => {
      const conn = new Connection(this.connectionOptions);
      conn.on("error", (error) =>
        this.options.logger.warn({ err: error }, "rabbitmq connection error"),
      );
      conn.on("connection", () => {
        this.options.logger.debug("rabbitmq connection (re)established");
        for (const c of this.consumers) c.recover();
      });
      this.conn = conn;
      try {
        await conn.onConnect(this.options.publishTimeout);
      } catch (error) {
        this.conn = undefined;
        await conn.close().catch(() => {});
        throw new CeleriacError(
          "BROKER_ERROR",
          `cannot connect to ${this.displayUrl}: ${(error as Error).message}`,
          { cause: error },
        );
      }
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
    // Closing the channels hands unacked deliveries back to RabbitMQ, which requeues them.
    for (const c of [...this.consumers]) await c.close();
    this.consumers.clear();
    const pub = this.publishChannel;
    this.publishChannel = undefined;
    await pub?.then((ch) => ch.close()).catch(() => {});
    await this.conn?.close().catch(() => {});
    this.conn = undefined;
  }

  async declareExchange(exchange: ExchangeDeclaration): Promise<void> {
    await this.connect();
    await this.connection.exchangeDeclare({
      exchange: exchange.name,
      type: exchange.type,
      durable: exchange.durable ?? true,
      autoDelete: exchange.autoDelete ?? false,
    });
  }

  /** Declare on a given channel (consumers re-declare their queues on each new channel). */
  async declareQueueOn(target: Channel | Connection, queue: QueueDeclaration): Promise<string> {
    const exchange = queueExchange(queue);
    if (exchange)
      await target.exchangeDeclare({
        exchange: exchange.name,
        type: exchange.type,
        durable: exchange.durable ?? true,
        autoDelete: exchange.autoDelete ?? false,
      });
    const ok = await target.queueDeclare({
      queue: queue.name,
      durable: queue.durable ?? true,
      autoDelete: queue.autoDelete ?? false,
      exclusive: queue.exclusive ?? false,
      arguments: queueArguments(queue),
    });
    if (exchange)
      await target.queueBind({
        queue: ok.queue,
        exchange: exchange.name,
        routingKey: queue.routingKey ?? queue.name,
      });
    return ok.queue;
  }

  async declareQueue(queue: QueueDeclaration): Promise<void> {
    await this.connect();
    await this.declareQueueOn(this.connection, queue);
  }

  /** One confirm-mode channel for every publish, replaced when it closes. */
  private channel(): Promise<Channel> {
    const current = this.publishChannel;
    if (current) return current;
    const next = (async () => {
      const ch = await this.connection.acquire();
      if (this.options.confirmPublish) await ch.confirmSelect();
      ch.on("close", () => {
        if (this.publishChannel === next) this.publishChannel = undefined;
      });
      return ch;
    })();
    next.catch(() => {
      if (this.publishChannel === next) this.publishChannel = undefined;
    });
    this.publishChannel = next;
    return next;
  }

  async publish(message: Message, route: Route): Promise<void> {
    await this.connect();
    const p = message.properties;
    const envelope = {
      exchange: route.exchange,
      routingKey: route.routingKey,
      contentType: message.contentType,
      contentEncoding: message.contentEncoding,
      headers: toFieldTable(message.headers) as Record<string, unknown>,
      durable: (p.deliveryMode ?? 2) === 2,
      // rabbitmq-client stamps a timestamp by default; Celery sends none.
      timestamp: undefined,
      ...(p.priority !== undefined ? { priority: p.priority } : {}),
      ...(p.correlationId !== undefined ? { correlationId: p.correlationId } : {}),
      ...(p.replyTo !== undefined ? { replyTo: p.replyTo } : {}),
      ...(p.expiration !== undefined ? { expiration: p.expiration } : {}),
    };
    for (let attempt = 0; ; attempt++) {
      const ch = await this.channel();
      try {
        await ch.basicPublish(envelope, message.body);
        return;
      } catch (error) {
        // A channel lost to a reconnection is replaced once; anything else is the caller's to see.
        if (attempt > 0 || ch.active)
          throw new CeleriacError(
            "BROKER_ERROR",
            `publish to ${route.exchange || "(default)"}/${route.routingKey} failed: ${(error as Error).message}`,
            { cause: error },
          );
      }
    }
  }

  async consume(queues: QueueDeclaration[], options: ConsumeOptions): Promise<Consumer> {
    await this.connect();
    const consumer = new AmqpConsumer(this, queues, options, (c) => this.consumers.delete(c));
    this.consumers.add(consumer);
    await consumer.start();
    return consumer;
  }

  async subscribe(
    exchange: ExchangeDeclaration,
    bindingKey: string,
    onMessage: (d: BroadcastDelivery) => void,
    options: SubscribeOptions = {},
  ): Promise<Unsubscribe> {
    await this.connect();
    await this.declareExchange(exchange);
    // Celery's monitors use a short-lived `celeryev.<uuid>` queue; a durable named queue keeps
    // broadcasts for a subscriber that is away (the control plane's event queue).
    const queue: QueueDeclaration = options.queue
      ? { ...options.queue, exchange, routingKey: bindingKey }
      : {
          name: `${exchange.name}.${crypto.randomUUID()}`,
          exchange,
          routingKey: bindingKey,
          durable: false,
          autoDelete: true,
          messageTtl: 5000,
          expires: 60_000,
        };
    const durable = Boolean(options.queue);
    const consumer = new AmqpConsumer(
      this,
      [queue],
      {
        prefetch: durable ? 100 : 0,
        noAck: !durable,
        onDelivery: (d) => {
          try {
            onMessage({ message: d.message, exchange: d.exchange, routingKey: d.routingKey });
          } finally {
            void d.ack();
          }
        },
      },
      (c) => this.consumers.delete(c),
    );
    this.consumers.add(consumer);
    await consumer.start();
    return () => consumer.close();
  }

  async purge(queue: string): Promise<number> {
    await this.connect();
    const ok = await this.connection.queuePurge({ queue });
    return ok.messageCount;
  }

  async deleteQueue(queue: string): Promise<void> {
    await this.connect();
    await this.connection.queueDelete({ queue });
    await this.connection.exchangeDelete({ exchange: queue }).catch(() => {});
  }

  async inspectQueue(queue: string): Promise<QueueInfo | null> {
    await this.connect();
    // A passive declare of a missing queue closes its channel: use a throwaway one.
    const ch = await this.connection.acquire();
    try {
      const ok = await ch.queueDeclare({ queue, passive: true });
      return { name: queue, messages: ok.messageCount, consumers: ok.consumerCount };
    } catch {
      return null;
    } finally {
      await ch.close().catch(() => {});
    }
  }
}
