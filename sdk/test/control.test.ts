import { randomUUID } from "node:crypto";
import { mkdtemp } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { pino } from "pino";
import { afterEach, describe, expect, it } from "vitest";
import { z } from "zod";
import type { CeleryEvent } from "../src/events/event.js";
import { EventReceiver } from "../src/events/receiver.js";
import { ClusterState } from "../src/events/state.js";
import { createApp, createWorker, defineTask, type Worker } from "../src/index.js";

const silent = pino({ level: "silent" });
/** Addressing the one worker returns as soon as it replies, instead of waiting out the timeout. */
const to = { destination: ["w1@test"] };
const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function fleet(options: Parameters<typeof createWorker>[1] = {}) {
  const name = randomUUID();
  const url = `memory://${name}`;
  const app = createApp({ broker: url, resultBackend: url });
  app.task("t.add", (_ctx, x: number, y: number) => x + y, { rateLimit: "100/s" });
  app.task("t.wait", async (ctx) => {
    await new Promise((_, reject) =>
      ctx.signal.addEventListener("abort", () => reject(ctx.signal.reason)),
    );
  });
  const worker = await createWorker(app, {
    concurrency: 2,
    hostname: "w1@test",
    logger: silent,
    heartbeatInterval: 0.1,
    ...options,
  });
  const client = createApp({ broker: url, resultBackend: url });
  const { broker } = await client.connect();
  const receiver = new EventReceiver(broker);
  const events: CeleryEvent[] = [];
  receiver.on("event", (e) => events.push(e));
  await receiver.start();
  await worker.start();
  cleanups.push(async () => {
    await receiver.stop();
    await worker.stop({ force: true });
    await app.close();
    await client.close();
  });
  return { app, worker, client, events };
}

const until = async (check: () => boolean, ms = 3000) => {
  const end = Date.now() + ms;
  while (!check()) {
    if (Date.now() > end) throw new Error("condition not met in time");
    await new Promise((r) => setTimeout(r, 10));
  }
};

describe("remote control", () => {
  it("answers ping, stats, registered and active_queues", async () => {
    const { client } = await fleet();
    expect(await client.control.ping(to)).toEqual([{ "w1@test": { ok: "pong" } }]);
    const [stats] = await client.control.inspect("stats", to);
    expect(stats?.["w1@test"]).toMatchObject({ pid: process.pid, pool: { "max-concurrency": 2 } });
    // As Celery answers with its default info items: the rate limit where one is set.
    expect(await client.control.inspect("registered", to)).toEqual([
      { "w1@test": ["t.add [rate_limit=100/s]", "t.wait"] },
    ]);
    const [queues] = await client.control.inspect("active_queues", to);
    expect(((queues?.["w1@test"] ?? []) as Array<{ name: string }>).map((q) => q.name)).toEqual([
      "celery",
    ]);
  });

  it("returns each task's argument schema to callers that ask, as JSON Schema", async () => {
    const { client, app } = await fleet();
    app.task(
      defineTask("t.typed", {
        schemas: { args: z.tuple([z.string().email(), z.number().int().min(1)]) },
      }),
      () => "ok",
    );
    const [reply] = await client.control.inspect("registered", to, { taskinfoitems: ["schema"] });
    const tasks = (reply?.["w1@test"] ?? []) as Array<{ name: string; schema: unknown }>;
    const typed = tasks.find((t) => t.name === "t.typed");
    expect(typed?.schema).toMatchObject({
      type: "array",
      prefixItems: [
        { type: "string", format: "email" },
        { type: "integer", minimum: 1 },
      ],
    });
    const plain = tasks.find((t) => t.name === "t.add");
    expect(plain?.schema).toBeNull();
  });

  it("replies only for its destination and errors on unknown commands", async () => {
    const { client } = await fleet();
    expect(await client.control.ping({ destination: ["other@host"], timeout: 0.3 })).toEqual([]);
    expect(await client.control.broadcast("nope", {}, { reply: true, timeout: 0.5 })).toEqual([
      { "w1@test": { error: "KeyError('nope')" } },
    ]);
    expect(await client.control.ping({ pattern: "w1@*" })).toHaveLength(1);
  });

  it("lists and terminates active tasks, and revokes ones not yet received", async () => {
    const { client, worker } = await fleet({
      stateDb: path.join(await mkdtemp(path.join(os.tmpdir(), "celeriac-")), "state.json"),
    });
    const running = await client.sendTask("t.wait");
    await until(() => worker.active.has(running.id));
    const [active] = await client.control.inspect("active", to);
    expect(((active?.["w1@test"] ?? []) as Array<{ id: string }>).map((t) => t.id)).toEqual([
      running.id,
    ]);
    expect(
      await client.control.revoke(running.id, {
        terminate: true,
        signal: "SIGKILL",
        reply: true,
        ...to,
      }),
    ).toEqual([{ "w1@test": { ok: `terminate: ${running.id}` } }]);
    await expect(running.get({ timeout: 3 })).rejects.toThrow("terminated");
    const later = randomUUID();
    await client.control.revoke(later, { reply: true, ...to });
    const r = await client.sendTask("t.add", [1, 2], {}, { taskId: later });
    await expect(r.get({ timeout: 3 })).rejects.toThrow("revoked");
  });

  it("changes rate and time limits, the pool size and consumed queues at run time", async () => {
    const { client, worker } = await fleet();
    expect(await client.control.rateLimit("t.add", "5/s", { reply: true, ...to })).toEqual([
      { "w1@test": { ok: "new rate limit set successfully" } },
    ]);
    expect(worker.rateLimitOf("t.add")).toBe("5/s");
    expect(await client.control.rateLimit("t.nope", "5/s", { reply: true, ...to })).toEqual([
      { "w1@test": { error: "unknown task" } },
    ]);
    expect(await client.control.rateLimit("t.add", "fast", { reply: true, ...to })).toEqual([
      { "w1@test": { error: "Invalid rate limit string: fast" } },
    ]);
    expect(
      await client.control.timeLimit("t.add", { soft: 1, hard: 2 }, { reply: true, ...to }),
    ).toEqual([{ "w1@test": { ok: "time limits set successfully" } }]);
    expect(worker.effectiveTask("t.add")?.options).toMatchObject({
      softTimeLimit: 1,
      timeLimit: 2,
    });
    await client.control.poolGrow(3, { reply: true, ...to });
    expect(worker.concurrency).toBe(5);
    await client.control.poolShrink(1, { reply: true, ...to });
    expect(worker.concurrency).toBe(4);
    expect(await client.control.addConsumer("extra", { reply: true, ...to })).toEqual([
      { "w1@test": { ok: "add consumer extra" } },
    ]);
    expect(worker.queues).toContain("extra");
    const r = await client.sendTask("t.add", [2, 2], {}, { queue: "extra" });
    expect(await r.get({ timeout: 3 })).toBe(4);
    await client.control.cancelConsumer("extra", { reply: true, ...to });
    expect(worker.queues).not.toContain("extra");
  });

  it("remembers revoked ids across a restart with a state db", async () => {
    const stateDb = path.join(await mkdtemp(path.join(os.tmpdir(), "celeriac-")), "state.json");
    const { client, worker, app } = await fleet({ stateDb });
    const id = randomUUID();
    await client.control.revoke(id, { reply: true, ...to });
    await worker.stop();
    const restarted = await createWorker(app, {
      concurrency: 1,
      hostname: "w2@test",
      logger: silent,
      stateDb,
    });
    await restarted.start();
    cleanups.push(() => restarted.stop({ force: true }));
    expect(restarted.revoked.has(id)).toBe(true);
    const r = await client.sendTask("t.add", [1, 2], {}, { taskId: id });
    await expect(r.get({ timeout: 3 })).rejects.toThrow("revoked");
  });

  it("shuts a worker down", async () => {
    const { client, worker } = await fleet();
    const stopped = new Promise<void>((resolve) => worker.once("stopped", () => resolve()));
    await client.control.shutdown({ reply: true, ...to });
    await stopped;
    expect(worker.isRunning).toBe(false);
  });
});

describe("events", () => {
  it("publishes worker events always and task events when enabled, with Celery's fields", async () => {
    const { client, events } = await fleet({ taskEvents: false });
    await until(() => events.some((e) => e.type === "worker-online"));
    const r = await client.sendTask("t.add", [1, 1]);
    await r.get({ timeout: 3 });
    await until(() => events.filter((e) => e.type === "worker-heartbeat").length >= 2);
    expect(events.some((e) => e.type.startsWith("task-"))).toBe(false);
    expect(await client.control.enableEvents({ reply: true, ...to })).toEqual([
      { "w1@test": { ok: "task events enabled" } },
    ]);
    const r2 = await client.sendTask("t.add", [2, 2]);
    await r2.get({ timeout: 3 });
    await until(() => events.some((e) => e.type === "task-succeeded" && e.uuid === r2.id));
    const succeeded = events.find((e) => e.type === "task-succeeded")!;
    expect(succeeded).toMatchObject({
      hostname: "w1@test",
      pid: process.pid,
      result: "4",
      uuid: r2.id,
    });
    expect(typeof succeeded.clock).toBe("number");
    expect(typeof succeeded.timestamp).toBe("number");
    expect(typeof succeeded.runtime).toBe("number");
    const heartbeat = events.find((e) => e.type === "worker-heartbeat")!;
    expect(heartbeat).toMatchObject({
      freq: 0.1,
      sw_ident: "celeriac",
      active: expect.any(Number),
      processed: expect.any(Number),
    });
    expect(events.find((e) => e.type === "task-received" && e.uuid === r2.id)).toMatchObject({
      name: "t.add",
      args: "(2, 2)",
      kwargs: "{}",
    });
  });

  it("keeps task states moving forward and marks silent workers offline", async () => {
    let now = 1000;
    const state = new ClusterState(() => now);
    const base = { hostname: "w@h", utcoffset: 0, pid: 1, clock: 1, timestamp: now };
    state.apply({ ...base, type: "task-received", uuid: "a", name: "t.x" });
    state.apply({ ...base, type: "task-succeeded", uuid: "a", result: "1" });
    state.apply({ ...base, type: "task-started", uuid: "a" });
    expect(state.tasks.get("a")?.state).toBe("SUCCESS");
    expect(state.tasks.get("a")?.name).toBe("t.x");
    state.apply({ ...base, type: "worker-heartbeat", freq: 2, local_received: now });
    expect(state.isAlive("w@h")).toBe(true);
    now += 3.9;
    expect(state.isAlive("w@h")).toBe(true);
    now += 0.2;
    expect(state.isAlive("w@h")).toBe(false);
    state.apply({ ...base, type: "worker-heartbeat", freq: 2, local_received: now });
    state.apply({ ...base, type: "worker-offline", freq: 2 });
    expect(state.isAlive("w@h")).toBe(false);
  });

  it("sends task-sent from producers that ask for it", async () => {
    const name = randomUUID();
    const app = createApp({ broker: `memory://${name}`, taskSendSentEvent: true });
    const { broker } = await app.connect();
    const receiver = new EventReceiver(broker, { types: ["task-sent"] });
    const seen: CeleryEvent[] = [];
    receiver.on("event", (e) => seen.push(e));
    await receiver.start();
    const r = await app.sendTask("t.x", [1], { a: 2 }, { queue: "q1" });
    await until(() => seen.length === 1);
    expect(seen[0]).toMatchObject({
      type: "task-sent",
      uuid: r.id,
      name: "t.x",
      args: "(1,)",
      kwargs: "{'a': 2}",
      queue: "q1",
      routing_key: "q1",
      exchange: "",
    });
    await receiver.stop();
    await app.close();
  });

  it("sends task-received only for tasks it will run, as Celery's consumer does", async () => {
    const url = `memory://${randomUUID()}`;
    const app = createApp({ broker: url, resultBackend: url });
    app.task("t.add", (_ctx, x: number, y: number) => x + y);
    const { broker } = await app.connect();
    // One delivery is held back until the consumer is cancelled, as one in flight on AMQP
    // arrives while the worker shuts down.
    let holdNext = false;
    let heldBack: (() => void) | undefined;
    const consume = broker.consume.bind(broker);
    broker.consume = async (queues, options) => {
      const consumer = await consume(queues, {
        ...options,
        onDelivery: (d) => {
          if (!holdNext) return options.onDelivery(d);
          holdNext = false;
          heldBack = () => options.onDelivery(d);
        },
      });
      const cancel = consumer.cancel.bind(consumer);
      consumer.cancel = async () => {
        await cancel();
        heldBack?.();
      };
      return consumer;
    };
    const worker = await createWorker(app, { concurrency: 1, hostname: "w1@test", logger: silent });
    const received: string[] = [];
    worker.on("task", (e) => {
      if (e.type === "task-received") received.push(e.uuid);
    });
    await worker.start();
    cleanups.push(async () => {
      await worker.stop({ force: true });
      await app.close();
    });
    const ok = await app.sendTask("t.add", [1, 1]);
    expect(await ok.get({ timeout: 3 })).toBe(2);
    // Unknown (on_unknown_task), revoked and expired (the strategy's revoked check comes first).
    await expect((await app.sendTask("t.nope")).get({ timeout: 3 })).rejects.toThrow("t.nope");
    const revokedId = randomUUID();
    worker.revoke([revokedId]);
    const revoked = await app.sendTask("t.add", [1, 2], {}, { taskId: revokedId });
    await expect(revoked.get({ timeout: 3 })).rejects.toThrow("revoked");
    const expired = await app.sendTask(
      "t.add",
      [1, 3],
      {},
      { expires: new Date(Date.now() - 1000) },
    );
    await expect(expired.get({ timeout: 3 })).rejects.toThrow("expired");
    holdNext = true;
    const late = await app.sendTask("t.add", [1, 4]);
    await until(() => heldBack !== undefined);
    await worker.stop();
    expect(received).toEqual([ok.id]);
    // Given back untouched: waiting in its queue again, never run.
    expect((await broker.inspectQueue("celery"))?.messages).toBe(1);
    expect(await late.state()).toBe("PENDING");
  });
});

export type { Worker };
