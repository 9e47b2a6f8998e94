/**
 * The CLI as users run it: a worker process on Redis and on RabbitMQ, driven by `celeriac send`,
 * `inspect`, `control`, `events` and `purge`. One worker per broker serves every case.
 * (`npm start`'s dev mode is tested in test/server/dev.test.ts.)
 */
import { type ChildProcess, execFile, spawn } from "node:child_process";
import { randomUUID } from "node:crypto";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createApp, TaskRevokedError } from "../../sdk/src/index.js";
import { exited, kill, type Started, startUntil } from "../helpers/processes.js";
import {
  AMQP_URL,
  redisUrl,
  requireRabbitMQ,
  requireRedis,
  uniqueName,
} from "../helpers/services.js";

const run = promisify(execFile);
const CLI = ["sdk/bin/celeriac.mjs"];

interface Fixture {
  name: string;
  broker: string;
  backend: string;
  /** What `inspect stats` names the transport. */
  transport: string;
  setup(): Promise<void>;
}

/** A string as a regular expression that matches it literally. */
const pattern = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");

async function until(check: () => Promise<boolean> | boolean, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > end) throw new Error("condition not met in time");
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function failure(p: Promise<unknown>): Promise<Error> {
  try {
    await p;
  } catch (error) {
    return error as Error;
  }
  throw new Error("expected a failure");
}

/** `celeriac events` running in the background, its output so far, stopped as a user stops it. */
function watchEvents(broker: string, ...args: string[]) {
  const proc = spawn("node", [...CLI, "events", ...args, "--broker", broker], {
    stdio: ["ignore", "pipe", "pipe"],
  });
  let out = "";
  proc.stdout.on("data", (chunk: Buffer) => {
    out += chunk.toString();
  });
  return {
    output: () => out,
    stop: async () => {
      proc.kill("SIGINT");
      expect(await exited(proc)).toBe(0);
    },
  };
}

function cliSuite(fixture: Fixture) {
  describe(`celeriac CLI on ${fixture.name}`, () => {
    const queue = uniqueName("cli");
    const node = `${queue}@test`;
    const to = { destination: [node] };
    const client = createApp({
      broker: fixture.broker,
      resultBackend: fixture.backend,
      defaultQueue: queue,
    });
    const queues = [queue];
    let worker: Started;

    const celeriac = (...args: string[]) =>
      run("node", [...CLI, ...args, "--broker", fixture.broker], {
        env: { ...process.env, RESULT_BACKEND: fixture.backend },
        timeout: 30_000,
      });
    /** A command's JSON reply from our worker alone. */
    const reply = async <T>(...args: string[]): Promise<T> =>
      (JSON.parse((await celeriac(...args, "-d", node, "--json")).stdout) as Record<string, T>)[
        node
      ] as T;
    const countOf = async (method: "active" | "reserved" | "scheduled") => {
      const [r] = await client.control.inspect(method, to);
      return ((r?.[node] ?? []) as unknown[]).length;
    };

    beforeAll(async () => {
      await fixture.setup();
      worker = await startUntil(
        "node",
        [
          ...CLI,
          "worker",
          "--app",
          "examples/tasks.ts",
          "--broker",
          fixture.broker,
          "--result-backend",
          fixture.backend,
          "-Q",
          queue,
          "-n",
          node,
          "-c",
          "2",
          "-E",
        ],
        /ready/,
        { timeoutMs: 30_000 },
      );
    }, 60_000);

    afterAll(async () => {
      if (worker) await kill(worker.proc, "SIGKILL");
      const { broker } = await client.connect();
      for (const q of queues) await broker.deleteQueue(q).catch(() => {});
      await client.close();
    });

    it("sends a task, prints its id and, with --wait, its result", async () => {
      const { stdout } = await celeriac(
        "send",
        "tasks.add",
        "--args",
        "[2, 3]",
        "--queue",
        queue,
        "--wait",
        "--timeout",
        "10",
      );
      const [id, result] = stdout.trim().split("\n");
      expect(id).toMatch(/^[0-9a-f-]{36}$/);
      expect(result).toBe("5");
    });

    it("reports a remote failure and exits non-zero", async () => {
      const error = await celeriac(
        "send",
        "tasks.fail",
        "--args",
        '["boom"]',
        "--queue",
        queue,
        "--wait",
        "--timeout",
        "10",
      ).catch((e) => e);
      expect(error.code).toBe(1);
      expect(error.stderr).toContain("boom");
    });

    it("inspects and controls the worker", async () => {
      const ping = await celeriac("inspect", "ping", "-d", node);
      expect(ping.stdout).toContain(`-> ${node}: OK`);
      expect(ping.stdout).toContain("pong");
      const rate = await celeriac("control", "rate_limit", "tasks.add", "10/s", "-d", node);
      expect(rate.stdout).toContain("new rate limit set successfully");
      expect(await reply("inspect", "registered")).toContain("tasks.add [rate_limit=10/s]");
      await client.control.rateLimit("tasks.add", null, { reply: true, ...to });
    });

    it("prints the worker's stats", async () => {
      expect(await reply("inspect", "stats")).toMatchObject({
        pid: worker.proc.pid,
        pool: { "max-concurrency": 2 },
        // Concurrency × the default prefetch multiplier, 4.
        prefetch_count: 8,
        total: { "tasks.add": expect.any(Number) },
        broker: { transport: fixture.transport },
        clock: expect.stringMatching(/^\d+$/),
      });
    });

    it("lists what the worker runs, holds and schedules, and --terminate stops running tasks", async () => {
      const sleeps = [
        await client.sendTask("tasks.sleep", [30]),
        await client.sendTask("tasks.sleep", [30]),
      ];
      await until(async () => (await countOf("active")) === 2);
      // Both slots busy: within its prefetch the worker holds this one until a slot frees, and
      // the other until its eta.
      const waiting = await client.sendTask("tasks.add", [1, 1]);
      const later = await client.sendTask("tasks.add", [2, 2], {}, { countdown: 60 });
      await until(
        async () => (await countOf("reserved")) === 1 && (await countOf("scheduled")) === 1,
      );

      type Info = { id: string; name: string; args: unknown; acknowledged: boolean };
      const active = await reply<Info[]>("inspect", "active");
      expect(active.map((t) => t.id).sort()).toEqual(sleeps.map((r) => r.id).sort());
      expect(active[0]).toMatchObject({ name: "tasks.sleep", args: [30], acknowledged: true });
      expect(await reply("inspect", "reserved")).toEqual([
        expect.objectContaining({ id: waiting.id, name: "tasks.add", args: [1, 1] }),
      ]);
      const [scheduled] = await reply<Array<{ eta: string; priority: number; request: Info }>>(
        "inspect",
        "scheduled",
      );
      expect(scheduled).toMatchObject({ priority: 0, request: { id: later.id, args: [2, 2] } });
      expect(Date.parse(scheduled?.eta ?? "") - Date.now()).toBeGreaterThan(30_000);

      const ids = sleeps.map((r) => r.id);
      const terminated = await celeriac("control", "revoke", ...ids, "--terminate", "-d", node);
      expect(terminated.stdout).toContain(`terminate: ${ids.join(", ")}`);
      for (const r of sleeps) {
        const error = await failure(r.get({ timeout: 10 }));
        expect(error).toBeInstanceOf(TaskRevokedError);
        expect(error.message).toBe("terminated");
      }
      expect(await waiting.get({ timeout: 10 })).toBe(2);
      // A revoke without --terminate flags the held one: it will not run when due.
      const revoked = await celeriac("control", "revoke", later.id, "-d", node);
      expect(revoked.stdout).toContain(`tasks ${later.id} flagged as revoked`);
      const [listed] = await client.control.inspect("revoked", to);
      expect(listed?.[node]).toEqual(expect.arrayContaining([...ids, later.id]));
    });

    it("terminates with the signal first, as Celery's command line takes it", async () => {
      const sleep = await client.sendTask("tasks.sleep", [30]);
      await until(async () => (await countOf("active")) === 1);
      const { stdout } = await celeriac("control", "terminate", "SIGKILL", sleep.id, "-d", node);
      expect(stdout).toContain(`terminate: ${sleep.id}`);
      const error = await failure(sleep.get({ timeout: 10 }));
      expect(error).toBeInstanceOf(TaskRevokedError);
      // The signal was taken as the signal, not revoked as a task id.
      const [listed] = await client.control.inspect("revoked", to);
      expect(listed?.[node]).toContain(sleep.id);
      expect(listed?.[node]).not.toContain("SIGKILL");
    });

    it("grows and shrinks the pool", async () => {
      const stats = async () => {
        const [r] = await client.control.inspect("stats", to);
        return r?.[node] as { pool: { "max-concurrency": number }; prefetch_count: number };
      };
      const before = await stats();
      const grow = await celeriac("control", "pool_grow", "2", "-d", node);
      expect(grow.stdout).toContain("pool will grow");
      expect(await stats()).toMatchObject({
        pool: { "max-concurrency": 4 },
        prefetch_count: before.prefetch_count + 2 * 4,
      });
      // Four run at once now.
      const sleeps = await Promise.all([1, 2, 3, 4].map(() => client.sendTask("tasks.sleep", [1])));
      await until(async () => (await countOf("active")) === 4);
      await Promise.all(sleeps.map((r) => r.get({ timeout: 10 })));
      const shrink = await celeriac("control", "pool_shrink", "2", "-d", node);
      expect(shrink.stdout).toContain("pool will shrink");
      expect(await stats()).toMatchObject({
        pool: { "max-concurrency": 2 },
        prefetch_count: before.prefetch_count,
      });
    });

    it("starts and stops consuming a queue", async () => {
      const extra = uniqueName("cli-extra");
      queues.push(extra);
      const added = await celeriac("control", "add_consumer", extra, "-d", node);
      expect(added.stdout).toContain(`add consumer ${extra}`);
      const consumed = await reply<Array<{ name: string }>>("inspect", "active_queues");
      expect(consumed.map((q) => q.name)).toEqual([queue, extra]);
      const r = await client.sendTask("tasks.add", [3, 4], {}, { queue: extra });
      expect(await r.get({ timeout: 10 })).toBe(7);

      const cancelled = await celeriac("control", "cancel_consumer", extra, "-d", node);
      expect(cancelled.stdout).toContain(`no longer consuming from ${extra}`);
      const [after] = await client.control.inspect("active_queues", to);
      expect(((after?.[node] ?? []) as Array<{ name: string }>).map((q) => q.name)).toEqual([
        queue,
      ]);
      const left = await client.sendTask("tasks.add", [4, 4], {}, { queue: extra });
      await new Promise((r) => setTimeout(r, 1000));
      expect(await left.state()).toBe("PENDING");
      const { broker } = await client.connect();
      expect(await broker.purge(extra)).toBe(1);
    });

    it("addresses nodes with --destination and waits --timeout seconds for replies", async () => {
      const nobody = await celeriac("inspect", "ping", "-d", "nobody@nowhere", "-t", "0.5").catch(
        (e) => e,
      );
      expect(nobody.code).toBe(1);
      expect(nobody.stdout).toBe("");
      expect(nobody.stderr).toContain("No nodes replied within time constraint");

      // Without a destination, replies are collected for the whole timeout.
      let start = Date.now();
      const all = await celeriac("inspect", "ping", "-t", "2");
      expect(Date.now() - start).toBeGreaterThanOrEqual(2000);
      expect(all.stdout).toContain(`-> ${node}: OK`);
      // With one, the reply of every node addressed ends the wait.
      start = Date.now();
      const one = await celeriac("inspect", "ping", "-d", node, "-t", "20");
      expect(Date.now() - start).toBeLessThan(15_000);
      expect(one.stdout).toBe(`-> ${node}: OK\n    pong\n`);
    });

    it("prints the live event stream, one JSON object per line", async () => {
      const events = watchEvents(fixture.broker, "--json");
      try {
        // Live once the worker answers its heartbeat request.
        await until(() => events.output().includes("worker-heartbeat"));
        const r = await client.sendTask("tasks.add", [40, 2]);
        await r.get({ timeout: 10 });
        const parsed = () =>
          events
            .output()
            .split("\n")
            .filter(Boolean)
            .map((l) => JSON.parse(l) as Record<string, unknown>);
        await until(() => parsed().some((e) => e.type === "task-succeeded" && e.uuid === r.id));
        expect(parsed().find((e) => e.type === "task-succeeded" && e.uuid === r.id)).toMatchObject({
          hostname: node,
          result: "42",
        });
      } finally {
        await events.stop();
      }
    });

    it("prints the live event stream, one line per event", async () => {
      const events = watchEvents(fixture.broker);
      try {
        const at = "\\d{4}-\\d\\d-\\d\\dT\\d\\d:\\d\\d:\\d\\d\\.\\d{3}Z";
        await until(() =>
          new RegExp(
            `^${at} ${pattern(node)} worker-heartbeat freq=2 active=\\d+ processed=\\d+`,
            "m",
          ).test(events.output()),
        );
        const r = await client.sendTask("tasks.add", [40, 2]);
        await r.get({ timeout: 10 });
        const line = (rest: string) => new RegExp(`^${at} ${pattern(node)} ${rest}$`, "m");
        await until(() => line(`task-succeeded ${r.id} .*`).test(events.output()));
        const output = events.output();
        expect(output).toMatch(
          line(`task-received ${r.id} name=tasks.add args=\\(40, 2\\) kwargs=\\{\\} .*`),
        );
        expect(output).toMatch(line(`task-started ${r.id}`));
        expect(output).toMatch(line(`task-succeeded ${r.id} result=42 runtime=[\\d.e-]+`));
      } finally {
        await events.stop();
      }
    });

    it("purges a queue", async () => {
      const other = uniqueName("cli-purge");
      queues.push(other);
      for (let i = 0; i < 3; i++) await client.sendTask("tasks.add", [1, 1], {}, { queue: other });
      const { stdout } = await celeriac("purge", "-Q", other);
      expect(stdout.trim()).toBe(`purged 3 messages from ${other}`);
      await client.sendTask("tasks.add", [1, 1], {}, { queue: other });
      const one = await celeriac("purge", "--queue", other);
      expect(one.stdout.trim()).toBe(`purged 1 message from ${other}`);
    });

    it("shuts the worker down on request, warm", async () => {
      const { stdout } = await celeriac("control", "shutdown", "-d", node);
      expect(stdout).toContain("shutting down");
      expect(await exited(worker.proc)).toBe(0);
    });
  });
}

cliSuite({
  name: "Redis",
  broker: redisUrl(9),
  backend: redisUrl(9),
  transport: "redis",
  setup: requireRedis,
});

cliSuite({
  name: "RabbitMQ",
  broker: AMQP_URL,
  backend: redisUrl(9),
  transport: "amqp",
  setup: async () => {
    await requireRabbitMQ();
    await requireRedis();
  },
});

describe("celeriac worker --statedb on Redis", () => {
  const broker = redisUrl(9);
  const celeriac = (...args: string[]) =>
    run("node", [...CLI, ...args, "--broker", broker], { timeout: 30_000 });
  beforeAll(requireRedis);

  it("keeps revoked ids across a restart of the worker process", async () => {
    const q = uniqueName("cli-statedb");
    const n = `${q}@test`;
    const dir = await mkdtemp(path.join(os.tmpdir(), "celeriac-statedb-"));
    const stateDb = path.join(dir, "state.json");
    const args = [
      ...CLI,
      "worker",
      "--app",
      "examples/tasks.ts",
      "--broker",
      broker,
      "--result-backend",
      broker,
      "-Q",
      q,
      "-n",
      n,
      "-c",
      "1",
      "--statedb",
      stateDb,
    ];
    const app = createApp({ broker, resultBackend: broker });
    let proc: ChildProcess | undefined;
    try {
      ({ proc } = await startUntil("node", args, /ready/));
      const id = randomUUID();
      const revoked = await celeriac("control", "revoke", id, "-d", n);
      expect(revoked.stdout).toContain(id);
      // A warm shutdown (SIGTERM) writes the state db; a new process reads it back.
      proc.kill("SIGTERM");
      expect(await exited(proc)).toBe(0);
      expect(
        JSON.parse(await readFile(stateDb, "utf8")).revoked.map((e: [string]) => e[0]),
      ).toContain(id);
      ({ proc } = await startUntil("node", args, /ready/));
      const listed = await celeriac("inspect", "revoked", "-d", n, "--json");
      expect(JSON.parse(listed.stdout)[n]).toContain(id);
      const r = await app.sendTask("tasks.add", [1, 2], {}, { taskId: id, queue: q });
      await expect(r.get({ timeout: 10 })).rejects.toThrow("revoked");
      // Not a worker that refuses everything: other tasks still run.
      expect(
        await (await app.sendTask("tasks.add", [2, 2], {}, { queue: q })).get({ timeout: 10 }),
      ).toBe(4);
    } finally {
      if (proc) await kill(proc, "SIGKILL");
      await app.close();
      await rm(dir, { recursive: true, force: true });
    }
  });
});
