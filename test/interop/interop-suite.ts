/**
 * Interop with real Python Celery 5 on one broker: Python producer -> our worker, our producer ->
 * Python worker, the same meaning of countdown, expires and priority, byte-level message shape,
 * and a Python worker and ours sharing one queue. Run for Redis and RabbitMQ by the files beside it.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { EventReceiver } from "../../sdk/src/events/receiver.js";
import { ClusterState } from "../../sdk/src/events/state.js";
import { createApp, RemoteTaskError, TaskRevokedError } from "../../sdk/src/index.js";
import {
  type PythonSide,
  py,
  type RunningWorker,
  requirePythonCelery,
  startCeleriacWorker,
  startPythonWorker,
} from "../helpers/python.js";
import { uniqueName } from "../helpers/services.js";

export interface InteropFixture {
  name: string;
  broker: string;
  backend: string;
  /** Priorities sent, and the order the broker serves them in (Redis: lowest first; AMQP: highest). */
  priorities: { sent: number[]; served: number[]; maxPriority?: number };
  setup(): Promise<void>;
  /** The raw text of the messages waiting in a queue (Redis: the list; AMQP: basic_get), oldest first. */
  peek(queue: string): Promise<
    Array<{
      headers: Record<string, unknown>;
      properties: Record<string, unknown>;
      body: string;
      raw?: string;
    }>
  >;
}

interface Sent {
  id: string;
  result?: unknown;
  error?: { type: string; module: string; message: string };
  state?: string;
}

async function failure(p: Promise<unknown>): Promise<Error> {
  try {
    await p;
  } catch (error) {
    return error as Error;
  }
  throw new Error("expected a failure");
}

export function interopSuite(fixture: InteropFixture) {
  describe(`interop with Python Celery 5 on ${fixture.name}`, () => {
    const tsQueue = uniqueName("interop-ts");
    const pyQueue = uniqueName("interop-py");
    const shared = uniqueName("interop-shared");
    const side: PythonSide = { broker: fixture.broker, backend: fixture.backend };
    const app = createApp({ broker: fixture.broker, resultBackend: fixture.backend });
    let ours: RunningWorker;
    let theirs: RunningWorker;

    beforeAll(async () => {
      await fixture.setup();
      await requirePythonCelery();
      [ours, theirs] = await Promise.all([
        startCeleriacWorker(side, uniqueName("ts"), [tsQueue, shared]),
        startPythonWorker(side, uniqueName("py"), [pyQueue, shared]),
      ]);
    }, 60_000);

    afterAll(async () => {
      await Promise.all([ours?.stop(), theirs?.stop()]);
      const { broker } = await app.connect();
      for (const q of [tsQueue, pyQueue, shared]) await broker.deleteQueue(q).catch(() => {});
      await app.close();
    }, 60_000);

    describe("Python producer -> Celeriac worker", () => {
      it("runs tasks.add and Python's get() returns the result", async () => {
        const sent = await py<Sent>(side, {
          op: "send",
          task: "tasks.add",
          args: [2, 3],
          options: { queue: tsQueue },
          wait: true,
        });
        expect(sent).toMatchObject({ result: 5, state: "SUCCESS" });
      });

      it("makes Python's get() raise our failure with its message", async () => {
        const sent = await py<Sent>(side, {
          op: "send",
          task: "tasks.fail",
          args: ["boom from ts"],
          options: { queue: tsQueue },
          wait: true,
        });
        expect(sent.state).toBe("FAILURE");
        expect(sent.error).toMatchObject({ type: "Error", message: "boom from ts" });
      });

      it("fails an unknown task with NotRegistered, which Python re-raises", async () => {
        const sent = await py<Sent>(side, {
          op: "send",
          task: "tasks.nope",
          options: { queue: tsQueue },
          wait: true,
        });
        expect(sent.error).toMatchObject({ type: "NotRegistered", module: "celery.exceptions" });
      });

      it("holds a Python countdown until due", async () => {
        const before = Date.now() / 1000;
        const sent = await py<Sent & { result: { at: number } }>(side, {
          op: "send",
          task: "interop.stamp",
          args: ["later"],
          options: { queue: tsQueue, countdown: 2 },
          wait: true,
        });
        expect(sent.result.at - before).toBeGreaterThanOrEqual(1.9);
      });

      it("does not run a message Python sent already expired", async () => {
        const sent = await py<Sent>(side, {
          op: "send",
          task: "tasks.add",
          args: [1, 1],
          options: { queue: tsQueue, expires_in: -5 },
          wait: true,
        });
        expect(sent.state).toBe("REVOKED");
        expect(sent.error?.type).toBe("TaskRevokedError");
      });

      it("passes kwargs and positional args as Python sent them", async () => {
        const sent = await py<Sent>(side, {
          op: "send",
          task: "tasks.echo",
          args: [1, "two", [3]],
          kwargs: { k: { v: true } },
          options: { queue: tsQueue },
          wait: true,
        });
        expect(sent.result).toEqual({ args: [1, "two", [3]], kwargs: { k: { v: true } } });
      });
    });

    describe("Celeriac producer -> Python worker", () => {
      it("gets a Python worker's result", async () => {
        const r = await app.sendTask<number>("tasks.mul", [6, 7], {}, { queue: pyQueue });
        expect(await r.get({ timeout: 10 })).toBe(42);
      });

      it("re-throws a Python failure with its type and message", async () => {
        const r = await app.sendTask("tasks.fail", ["boom from py"], {}, { queue: pyQueue });
        const error = (await failure(r.get({ timeout: 10 }))) as RemoteTaskError;
        expect(error).toBeInstanceOf(RemoteTaskError);
        expect(error.name).toBe("ValueError");
        expect(error.message).toBe("boom from py");
        expect(error.remoteTraceback).toContain("ValueError: boom from py");
      });

      it("has Python hold our countdown and drop our expired message", async () => {
        const before = Date.now() / 1000;
        const later = await app.sendTask<{ at: number }>(
          "interop.stamp",
          ["later"],
          {},
          { queue: pyQueue, countdown: 2 },
        );
        const expired = await app.sendTask(
          "tasks.add",
          [1, 1],
          {},
          { queue: pyQueue, expires: new Date(Date.now() - 5000) },
        );
        expect((await later.get({ timeout: 15 })).at - before).toBeGreaterThanOrEqual(1.9);
        expect(await failure(expired.get({ timeout: 10 }))).toBeInstanceOf(TaskRevokedError);
      });

      it("sends kwargs Python receives as keyword arguments", async () => {
        const r = await app.sendTask("tasks.echo", [1, 2], { name: "é日本" }, { queue: pyQueue });
        expect(await r.get({ timeout: 10 })).toEqual({ args: [1, 2], kwargs: { name: "é日本" } });
      });
    });

    describe("priorities", () => {
      const { sent, served, maxPriority } = fixture.priorities;
      const prioritySide = { ...side, ...(maxPriority ? { maxPriority } : {}) };
      type Stamp = { label: string; seq: number };
      const order = (stamps: Stamp[]) =>
        [...stamps].sort((a, b) => a.seq - b.seq).map((s) => Number(s.label));

      it("are served in the same order by our worker for Python's messages", async () => {
        const queue = uniqueName("interop-prio");
        const ids: string[] = [];
        for (const p of sent)
          ids.push(
            (
              await py<Sent>(prioritySide, {
                op: "send",
                task: "interop.stamp",
                args: [String(p)],
                options: { queue, priority: p },
              })
            ).id,
          );
        const worker = await startCeleriacWorker(prioritySide, uniqueName("ts-prio"), [queue], {
          concurrency: 1,
          extra: ["--prefetch-multiplier", "1"],
        });
        try {
          const stamps = await Promise.all(
            ids.map((id) => app.asyncResult<Stamp>(id).get({ timeout: 15 })),
          );
          expect(order(stamps)).toEqual(served);
        } finally {
          await worker.stop();
        }
      }, 60_000);

      it("are served in the same order by a Python worker for our messages", async () => {
        const queue = uniqueName("interop-prio");
        const producer = createApp({
          broker: fixture.broker,
          resultBackend: fixture.backend,
          ...(maxPriority ? { queueMaxPriority: maxPriority } : {}),
        });
        const results = [];
        for (const p of sent)
          results.push(
            await producer.sendTask<Stamp>(
              "interop.stamp",
              [String(p)],
              {},
              { queue, priority: p },
            ),
          );
        const worker = await startPythonWorker(prioritySide, uniqueName("py-prio"), [queue], {
          concurrency: 1,
          extra: ["--prefetch-multiplier", "1"],
        });
        try {
          const stamps = await Promise.all(results.map((r) => r.get({ timeout: 15 })));
          expect(order(stamps)).toEqual(served);
        } finally {
          await worker.stop();
          await producer.close();
        }
      }, 60_000);
    });

    describe("on the wire", () => {
      it("writes the same message shape as Celery for the same call", async () => {
        const queue = uniqueName("interop-wire");
        const { broker } = await app.connect();
        await app.sendTask(
          "tasks.add",
          [2, 3],
          { z: 1 },
          { queue, countdown: 10, expires: 60, priority: 3 },
        );
        await app.sendTask(
          "tasks.add",
          [2, 3],
          { z: 1 },
          { queue, countdown: 10, expires: 60, priority: 3 },
        );
        await py(side, {
          op: "send",
          task: "tasks.add",
          args: [2, 3],
          kwargs: { z: 1 },
          options: { queue, countdown: 10, expires: 60, priority: 3 },
        });
        const [mine, mine2, python] = await fixture.peek(queue);
        await broker.deleteQueue(queue);
        expect(mine && mine2 && python).toBeTruthy();
        // Three-element body with Python's JSON formatting.
        expect(mine!.body).toBe(python!.body);
        expect(mine!.body).toBe(
          '[[2, 3], {"z": 1}, {"callbacks": null, "errbacks": null, "chain": null, "chord": null}]',
        );
        // Celery 5.2's header set, in its order; values of the same kinds.
        expect(Object.keys(mine!.headers)).toEqual(Object.keys(python!.headers));
        for (const key of [
          "task",
          "argsrepr",
          "kwargsrepr",
          "retries",
          "timelimit",
          "shadow",
          "group",
          "group_index",
          "parent_id",
          "ignore_result",
        ]) {
          expect(mine!.headers[key], key).toEqual(python!.headers[key]);
        }
        expect(Object.keys(mine!.properties).sort()).toEqual(
          Object.keys(python!.properties).sort(),
        );
        expect(mine!.properties.expiration).toBe(python!.properties.expiration);
        expect(mine!.properties.priority).toBe(3);
        if (mine!.raw && python!.raw) {
          // Redis: the stored envelope has kombu's key order and formatting.
          const shape = (raw: string) => raw.replace(/"[^"]*"/g, '""').replace(/\d+(\.\d+)?/g, "0");
          expect(shape(mine!.raw)).toBe(shape(python!.raw));
          const tag = (raw: string) =>
            (JSON.parse(raw) as { properties: { delivery_tag: string } }).properties.delivery_tag;
          expect(tag(mine!.raw)).not.toBe(tag(mine2!.raw ?? ""));
        }
      });
    });

    describe("remote control and events", () => {
      type Replies = { replies: Record<string, unknown> | Array<Record<string, unknown>> | null };
      const until = async (check: () => Promise<boolean> | boolean, ms = 10_000) => {
        const end = Date.now() + ms;
        while (!(await check())) {
          if (Date.now() > end) throw new Error("condition not met in time");
          await new Promise((r) => setTimeout(r, 100));
        }
      };

      it("lists our worker in Python's inspect ping and registered", async () => {
        const ping = await py<Replies>(side, {
          op: "control",
          method: "ping",
          destination: [ours.hostname],
        });
        expect(ping.replies).toEqual({ [ours.hostname]: { ok: "pong" } });
        const registered = await py<{ replies: Record<string, string[]> }>(side, {
          op: "control",
          method: "registered",
          destination: [ours.hostname],
        });
        expect(registered.replies[ours.hostname]).toEqual(
          expect.arrayContaining(["tasks.add", "tasks.sleep", "interop.whoami"]),
        );
      });

      it("lets Python's revoke --terminate stop a task running on our worker", async () => {
        const r = await app.sendTask("tasks.sleep", [30], {}, { queue: tsQueue });
        await until(async () => {
          const [reply] = await app.control.inspect("active", { destination: [ours.hostname] });
          return ((reply?.[ours.hostname] ?? []) as Array<{ id: string }>).some(
            (t) => t.id === r.id,
          );
        });
        const revoke = await py<{ replies: Array<Record<string, { ok: string }>> }>(side, {
          op: "control",
          method: "revoke",
          id: r.id,
          terminate: true,
          signal: "SIGKILL",
          destination: [ours.hostname],
        });
        expect(revoke.replies[0]?.[ours.hostname]?.ok).toBe(`terminate: ${r.id}`);
        const error = await failure(r.get({ timeout: 10 }));
        expect(error).toBeInstanceOf(TaskRevokedError);
        expect(error.message).toBe("terminated");
      });

      it("shows our events to Python's event receiver, with the fields Celery expects", async () => {
        const capture = py<{
          events: Array<Record<string, unknown>>;
          workers: Record<string, { alive: boolean; sw_ident: string }>;
          tasks: Record<string, { state: string; name: string; result: string }>;
        }>(side, { op: "events", seconds: 5 });
        await new Promise((r) => setTimeout(r, 1500));
        const sent = await app.sendTask("tasks.add", [20, 22], {}, { queue: tsQueue });
        await sent.get({ timeout: 10 });
        const seen = await capture;
        const mine = seen.events.filter((e) => e.hostname === ours.hostname);
        expect(mine.map((e) => e.type)).toEqual(
          expect.arrayContaining([
            "worker-heartbeat",
            "task-received",
            "task-started",
            "task-succeeded",
          ]),
        );
        const succeeded = mine.find((e) => e.type === "task-succeeded" && e.uuid === sent.id);
        expect(succeeded).toMatchObject({
          result: "42",
          pid: expect.any(Number),
          clock: expect.any(Number),
          utcoffset: expect.any(Number),
          timestamp: expect.any(Number),
          runtime: expect.any(Number),
        });
        expect(seen.tasks[sent.id]).toMatchObject({
          state: "SUCCESS",
          name: "tasks.add",
          result: "42",
        });
        expect(seen.workers[ours.hostname]).toMatchObject({ alive: true, sw_ident: "celeriac" });
      }, 30_000);

      it("pings and inspects a Python worker from our control client", async () => {
        expect(await app.control.ping({ destination: [theirs.hostname] })).toEqual([
          { [theirs.hostname]: { ok: "pong" } },
        ]);
        const [stats] = await app.control.inspect("stats", { destination: [theirs.hostname] });
        expect(stats?.[theirs.hostname]).toMatchObject({
          pid: expect.any(Number),
          pool: expect.any(Object),
        });
      });

      it("stops a task running on a Python worker with our revoke --terminate", async () => {
        const r = await app.sendTask("tasks.sleep", [30], {}, { queue: pyQueue });
        await until(async () => {
          const [reply] = await app.control.inspect("active", { destination: [theirs.hostname] });
          return ((reply?.[theirs.hostname] ?? []) as Array<{ id: string }>).some(
            (t) => t.id === r.id,
          );
        });
        const [reply] = await app.control.revoke(r.id, {
          terminate: true,
          signal: "SIGKILL",
          reply: true,
          destination: [theirs.hostname],
        });
        expect(reply).toEqual({ [theirs.hostname]: { ok: `terminate: ${r.id}` } });
        const error = await failure(r.get({ timeout: 10 }));
        expect(error).toBeInstanceOf(TaskRevokedError);
      });

      it("follows a Python worker's events and heartbeats, and marks it offline when they stop", async () => {
        const { broker } = await app.connect();
        const receiver = new EventReceiver(broker);
        const state = new ClusterState();
        receiver.on("event", (e) => state.apply(e));
        await receiver.start();
        const queue = uniqueName("interop-events");
        const worker = await startPythonWorker(side, uniqueName("py-events"), [queue]);
        try {
          await until(() => state.isAlive(worker.hostname));
          const r = await app.sendTask("tasks.add", [1, 2], {}, { queue });
          await r.get({ timeout: 10 });
          await until(() => state.tasks.get(r.id)?.state === "SUCCESS");
          expect(state.tasks.get(r.id)).toMatchObject({
            name: "tasks.add",
            hostname: worker.hostname,
            fields: { result: "3" },
          });
          expect(state.workers.get(worker.hostname)?.heartbeats.length).toBeGreaterThan(0);
          // Killed outright: no worker-offline event, only silence; offline after 2 × its interval.
          await worker.kill();
          await until(() => !state.isAlive(worker.hostname), 8000);
        } finally {
          await worker.kill();
          await receiver.stop();
          await broker.deleteQueue(queue).catch(() => {});
        }
      }, 60_000);
    });

    describe("sharing one queue", () => {
      it("splits the work between a Python worker and ours without losing or duplicating a task", async () => {
        const n = 400;
        const half = n / 2;
        const fromUs = await Promise.all(
          Array.from({ length: half }, (_, i) =>
            app.sendTask<{ n: number; worker: string }>(
              "interop.whoami",
              [i],
              {},
              { queue: shared },
            ),
          ),
        );
        const fromPython = await py<{ ids: string[] }>(side, {
          op: "many",
          task: "interop.whoami",
          queue: shared,
          args_list: Array.from({ length: half }, (_, i) => [half + i]),
        });
        const results = await Promise.all(
          [
            ...fromUs,
            ...fromPython.ids.map((id) => app.asyncResult<{ n: number; worker: string }>(id)),
          ].map((r) => r.get({ timeout: 30 })),
        );
        expect(results.map((r) => r.n).sort((a, b) => a - b)).toEqual(
          Array.from({ length: n }, (_, i) => i),
        );
        const byWorker = new Map<string, number>();
        for (const r of results) byWorker.set(r.worker, (byWorker.get(r.worker) ?? 0) + 1);
        expect([...byWorker.keys()].sort()).toEqual([ours.hostname, theirs.hostname].sort());
        // Each ran exactly once: the workers' own counters add up to n.
        const stats = await py<{ replies: Record<string, { total: Record<string, number> }> }>(
          side,
          { op: "control", method: "stats", destination: [ours.hostname, theirs.hostname] },
        );
        const ran = Object.values(stats.replies).reduce(
          (sum, s) => sum + (s.total["interop.whoami"] ?? 0),
          0,
        );
        expect(ran).toBe(n);
      }, 60_000);
    });
  });
}
