/**
 * The broker conformance suite: what every broker must do, run against each implementation.
 * A broker-specific behaviour is tested here only through its capability flag.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import type {
  BroadcastDelivery,
  Broker,
  Consumer,
  Delivery,
  Message,
  QueueDeclaration,
} from "../../sdk/src/brokers/broker.js";
import { uniqueName } from "../helpers/services.js";

export interface BrokerFixture {
  /** A new, unconnected broker on the shared test server. */
  create(): Broker;
  /** Called once before the suite (e.g. to check that the service is up). */
  setup?(): Promise<void>;
  /**
   * Cut the broker's connections from the server side (Redis `CLIENT KILL`, RabbitMQ
   * `close_connection`), for the reconnection test. Brokers without connections have none.
   */
  dropConnections?(broker: Broker): Promise<void>;
}

function message(body: string, extra: Partial<Message> = {}): Message {
  return {
    body: Buffer.from(body),
    contentType: "application/json",
    contentEncoding: "utf-8",
    headers: {},
    properties: { deliveryMode: 2, priority: 0 },
    ...extra,
  };
}

/** Collects deliveries and lets a test wait for a count. */
class Inbox<T> {
  readonly items: T[] = [];
  private waiters: Array<() => void> = [];
  push = (item: T) => {
    this.items.push(item);
    for (const w of this.waiters.splice(0)) w();
  };
  async waitFor(count: number, timeoutMs = 5000): Promise<T[]> {
    const deadline = Date.now() + timeoutMs;
    while (this.items.length < count) {
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`expected ${count} deliveries, got ${this.items.length}`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
    return this.items;
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const bodies = (ds: Delivery[]) => ds.map((d) => d.message.body.toString());

export function brokerConformance(name: string, fixture: BrokerFixture) {
  describe(`broker conformance: ${name}`, () => {
    const open: Broker[] = [];
    const consumers: Consumer[] = [];
    const queues: string[] = [];
    let broker: Broker;

    const connected = async () => {
      const b = fixture.create();
      open.push(b);
      await b.connect();
      return b;
    };
    const queue = async (b: Broker, opts: { maxPriority?: number } = {}) => {
      const q = uniqueName("conf");
      queues.push(q);
      await b.declareQueue({ name: q, ...opts });
      return q;
    };
    // Consumers declare their queues exactly as the publisher did (RabbitMQ refuses otherwise).
    const consume = async (
      b: Broker,
      qs: string[],
      prefetch = 0,
      declaration: Partial<QueueDeclaration> = {},
    ) => {
      const inbox = new Inbox<Delivery>();
      const c = await b.consume(
        qs.map((n) => ({ name: n, ...declaration })),
        { prefetch, onDelivery: inbox.push },
      );
      consumers.push(c);
      return { inbox, consumer: c };
    };

    beforeAll(async () => {
      await fixture.setup?.();
      broker = await connected();
    });
    afterEach(async () => {
      for (const c of consumers.splice(0)) await c.cancel();
    });
    afterAll(async () => {
      for (const q of queues) await broker.deleteQueue(q).catch(() => {});
      for (const b of open) await b.close();
    });

    it("connects and closes idempotently", async () => {
      const b = fixture.create();
      await b.connect();
      await b.connect();
      await b.close();
      await b.close();
      expect(b.displayUrl).not.toMatch(/:(?!\*\*\*@)[^:@/]+@/); // no password in the display URL
    });

    it("delivers published messages in order, with their headers and properties", async () => {
      const q = await queue(broker);
      const headers = {
        task: "tasks.add",
        id: "x1",
        eta: null,
        timelimit: [null, 30],
        nested: { a: [1, "b", true] },
        n: 1.5,
      };
      await broker.publish(
        message("one", {
          headers,
          properties: { correlationId: "x1", replyTo: "r", deliveryMode: 2, priority: 0 },
        }),
        { exchange: "", routingKey: q },
      );
      await broker.publish(message("two"), { exchange: "", routingKey: q });
      await broker.publish(message("three"), { exchange: "", routingKey: q });
      const { inbox } = await consume(broker, [q]);
      const got = await inbox.waitFor(3);
      expect(bodies(got)).toEqual(["one", "two", "three"]);
      const first = got[0]!;
      expect(first.message.headers).toMatchObject(headers);
      expect(first.message.properties).toMatchObject({ correlationId: "x1", replyTo: "r" });
      expect(first.message.contentType).toBe("application/json");
      expect(first.message.contentEncoding).toBe("utf-8");
      expect(first.queue).toBe(q);
      expect(first.routingKey).toBe(q);
      expect(first.redelivered).toBe(false);
      expect(new Set(got.map((d) => d.deliveryTag)).size).toBe(3);
      for (const d of got) await d.ack();
    });

    it("keeps binary-safe UTF-8 bodies intact", async () => {
      const q = await queue(broker);
      const text = '[["é", "日本", "🎉"], {}, {}]';
      await broker.publish(message(text), { exchange: "", routingKey: q });
      const { inbox } = await consume(broker, [q]);
      const [d] = await inbox.waitFor(1);
      expect(d!.message.body.toString("utf8")).toBe(text);
      await d!.ack();
    });

    it("removes acked messages and redelivers requeued ones", async () => {
      const q = await queue(broker);
      await broker.publish(message("a"), { exchange: "", routingKey: q });
      await broker.publish(message("b"), { exchange: "", routingKey: q });
      const { inbox, consumer } = await consume(broker, [q]);
      const [a, b] = await inbox.waitFor(2);
      await a!.ack();
      await a!.ack(); // settling twice is a no-op
      await b!.reject(true);
      const again = await inbox.waitFor(3);
      expect(again[2]!.message.body.toString()).toBe("b");
      expect(again[2]!.redelivered).toBe(true);
      await again[2]!.ack();
      await consumer.cancel();
      expect((await broker.inspectQueue(q))?.messages).toBe(0);
    });

    it("serves and requeues messages of a queue named with quotes and backslashes", async () => {
      // JSON escapes these in an envelope: whatever reads one back must unescape them.
      const q = `${uniqueName("conf")}-"odd"\\name`;
      queues.push(q);
      await broker.declareQueue({ name: q });
      await broker.publish(message("x"), { exchange: "", routingKey: q });
      const { inbox, consumer } = await consume(broker, [q]);
      const [first] = await inbox.waitFor(1);
      expect(first!.routingKey).toBe(q);
      expect(first!.queue).toBe(q);
      await first!.reject(true);
      const [, again] = await inbox.waitFor(2);
      expect(again!.message.body.toString()).toBe("x");
      expect(again!.routingKey).toBe(q);
      await again!.ack();
      await consumer.cancel();
      expect((await broker.inspectQueue(q))?.messages).toBe(0);
    });

    it("drops messages rejected without requeue", async () => {
      const q = await queue(broker);
      await broker.publish(message("bad"), { exchange: "", routingKey: q });
      const { inbox, consumer } = await consume(broker, [q]);
      const [d] = await inbox.waitFor(1);
      await d!.reject(false);
      await sleep(200);
      expect(inbox.items).toHaveLength(1);
      await consumer.cancel();
      expect((await broker.inspectQueue(q))?.messages).toBe(0);
    });

    it("holds no more unsettled deliveries than the prefetch window, and grows it on demand", async () => {
      const q = await queue(broker);
      for (let i = 0; i < 6; i++)
        await broker.publish(message(`m${i}`), { exchange: "", routingKey: q });
      const { inbox, consumer } = await consume(broker, [q], 2);
      await inbox.waitFor(2);
      await sleep(300);
      expect(inbox.items).toHaveLength(2);
      await inbox.items[0]!.ack();
      await inbox.waitFor(3);
      await sleep(200);
      expect(inbox.items).toHaveLength(3);
      await consumer.setPrefetch(4);
      await inbox.waitFor(5);
      await sleep(200);
      expect(inbox.items).toHaveLength(5);
      for (const d of inbox.items.slice(1)) await d.ack();
      await inbox.waitFor(6);
      await inbox.items[5]!.ack();
    });

    it("gives unsettled deliveries back when the broker is closed", async () => {
      const q = await queue(broker);
      const b1 = await connected();
      await broker.publish(message("kept"), { exchange: "", routingKey: q });
      const inbox = new Inbox<Delivery>();
      await b1.consume([{ name: q }], { prefetch: 1, onDelivery: inbox.push });
      await inbox.waitFor(1);
      await b1.close();
      const { inbox: again } = await consume(broker, [q]);
      const [d] = await again.waitFor(1);
      expect(d!.message.body.toString()).toBe("kept");
      expect(d!.redelivered).toBe(true);
      await d!.ack();
    });

    it("consumes several queues and adds and removes queues while running", async () => {
      const q1 = await queue(broker);
      const q2 = await queue(broker);
      const q3 = await queue(broker);
      await broker.publish(message("from-q1"), { exchange: "", routingKey: q1 });
      await broker.publish(message("from-q2"), { exchange: "", routingKey: q2 });
      const { inbox, consumer } = await consume(broker, [q1, q2]);
      await inbox.waitFor(2);
      expect(bodies(inbox.items).sort()).toEqual(["from-q1", "from-q2"]);
      await consumer.addQueue({ name: q3 });
      expect(consumer.queues).toContain(q3);
      await broker.publish(message("from-q3"), { exchange: "", routingKey: q3 });
      await inbox.waitFor(3);
      expect(inbox.items[2]!.queue).toBe(q3);
      await consumer.removeQueue(q1);
      expect(consumer.queues).not.toContain(q1);
      await broker.publish(message("late-q1"), { exchange: "", routingKey: q1 });
      await sleep(1500);
      expect(inbox.items).toHaveLength(3);
      for (const d of inbox.items) await d.ack();
      expect((await broker.inspectQueue(q1))?.messages).toBe(1);
    });

    it("routes through a named direct exchange by its bindings", async () => {
      const q = uniqueName("conf");
      queues.push(q);
      const exchange = uniqueName("conf-ex");
      await broker.declareQueue({
        name: q,
        exchange: { name: exchange, type: "direct" },
        routingKey: "key.a",
      });
      await broker.publish(message("routed"), { exchange, routingKey: "key.a" });
      await broker.publish(message("unrouted"), { exchange, routingKey: "key.b" });
      const { inbox } = await consume(broker, [q]);
      await inbox.waitFor(1);
      await sleep(300);
      expect(bodies(inbox.items)).toEqual(["routed"]);
      await inbox.items[0]!.ack();
    });

    it("purges a queue and reports its depth", async () => {
      const q = await queue(broker);
      for (let i = 0; i < 5; i++)
        await broker.publish(message(`p${i}`), { exchange: "", routingKey: q });
      expect((await broker.inspectQueue(q))?.messages).toBe(5);
      expect(await broker.purge(q)).toBe(5);
      expect((await broker.inspectQueue(q))?.messages).toBe(0);
    });

    it("serves higher-priority messages first where priorities are supported", async () => {
      if (!broker.capabilities.priorities) {
        expect(broker.capabilities.priorityOrder).toBe("none");
        return;
      }
      const q = await queue(broker, { maxPriority: 10 });
      const order = broker.capabilities.priorityOrder;
      const urgent = order === "higher-first" ? 9 : 0;
      const lazy = order === "higher-first" ? 0 : 9;
      await broker.publish(
        { ...message("lazy"), properties: { priority: lazy } },
        { exchange: "", routingKey: q },
      );
      await broker.publish(
        { ...message("lazy2"), properties: { priority: lazy } },
        { exchange: "", routingKey: q },
      );
      await broker.publish(
        { ...message("urgent"), properties: { priority: urgent } },
        { exchange: "", routingKey: q },
      );
      const { inbox } = await consume(broker, [q], 1, { maxPriority: 10 });
      await inbox.waitFor(1);
      expect(bodies(inbox.items)[0]).toBe("urgent");
      for (let i = 0; i < 3; i++) {
        await inbox.waitFor(i + 1);
        await inbox.items[i]!.ack();
      }
    });

    it("broadcasts to every subscriber, filtered by binding key on topic exchanges", async () => {
      const exchange = { name: uniqueName("conf-ev"), type: "topic" as const, durable: true };
      const all = new Inbox<BroadcastDelivery>();
      const tasksOnly = new Inbox<BroadcastDelivery>();
      const b2 = await connected();
      await broker.declareExchange(exchange);
      const unsubAll = await broker.subscribe(exchange, "#", all.push);
      const unsubTasks = await b2.subscribe(exchange, "task.*", tasksOnly.push);
      await sleep(200);
      await broker.publish(
        message('{"type": "task-started"}', { properties: { deliveryMode: 1 } }),
        { exchange: exchange.name, routingKey: "task.started" },
      );
      await broker.publish(
        message('{"type": "worker-heartbeat"}', { properties: { deliveryMode: 1 } }),
        { exchange: exchange.name, routingKey: "worker.heartbeat" },
      );
      await all.waitFor(2);
      await tasksOnly.waitFor(1);
      await sleep(200);
      expect(all.items.map((d) => d.routingKey).sort()).toEqual([
        "task.started",
        "worker.heartbeat",
      ]);
      expect(tasksOnly.items.map((d) => d.routingKey)).toEqual(["task.started"]);
      await unsubAll();
      await unsubTasks();
      await broker.publish(message("after"), { exchange: exchange.name, routingKey: "task.after" });
      await sleep(200);
      expect(all.items).toHaveLength(2);
    });

    it("broadcasts on fanout exchanges whatever the routing key", async () => {
      const exchange = { name: uniqueName("conf-fan"), type: "fanout" as const, durable: false };
      const inbox = new Inbox<BroadcastDelivery>();
      await broker.declareExchange(exchange);
      const unsub = await broker.subscribe(exchange, "", inbox.push);
      await sleep(200);
      await broker.publish(message('{"method": "ping"}'), {
        exchange: exchange.name,
        routingKey: "",
      });
      const [d] = await inbox.waitFor(1);
      expect(d!.message.body.toString()).toBe('{"method": "ping"}');
      await unsub();
    });

    // In-process brokers have no connection to lose, so the test exists only where one can drop.
    if (fixture.dropConnections)
      it("reconnects by itself after the connection drops", async () => {
        const b = await connected();
        const q = await queue(b);
        const inbox = new Inbox<Delivery>();
        await b.consume([{ name: q }], { prefetch: 0, onDelivery: inbox.push });
        await fixture.dropConnections!(b);
        await broker.publish(message("after-drop"), { exchange: "", routingKey: q });
        const [d] = await inbox.waitFor(1, 15000);
        expect(d!.message.body.toString()).toBe("after-drop");
        await d!.ack();
      }, 20000);
  });
}
