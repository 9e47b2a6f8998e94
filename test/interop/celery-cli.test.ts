/**
 * Python Celery 5's own command line against our worker, as an operator of a mixed fleet runs it:
 * `celery inspect`, `celery control` and `celery events --dump`, on Redis and on RabbitMQ. Our
 * worker is the CLI on examples/tasks.ts, one per broker for every case.
 */
import { execFile } from "node:child_process";
import { randomUUID } from "node:crypto";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createApp, TaskRevokedError } from "../../sdk/src/index.js";
import { kill, type Started, startUntil } from "../helpers/processes.js";
import { PYTHON, requirePythonCelery } from "../helpers/python.js";
import {
  AMQP_URL,
  redisUrl,
  requireRabbitMQ,
  requireRedis,
  uniqueName,
} from "../helpers/services.js";

const run = promisify(execFile);

interface Fixture {
  name: string;
  broker: string;
  backend: string;
  setup(): Promise<void>;
}

/** A string as a regular expression that matches it literally. */
const pattern = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");

async function until(check: () => Promise<boolean> | boolean, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > end) throw new Error("condition not met in time");
    await new Promise((r) => setTimeout(r, 100));
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

function celeryCliSuite(fixture: Fixture) {
  describe(`celery's command line on our worker, on ${fixture.name}`, () => {
    const queue = uniqueName("celery-cli");
    const node = `${queue}@test`;
    const app = createApp({
      broker: fixture.broker,
      resultBackend: fixture.backend,
      defaultQueue: queue,
    });
    let worker: Started;

    /** `python -m celery -b <broker> ...`; rejects on a non-zero exit. */
    const celery = (...args: string[]) =>
      run(PYTHON, ["-m", "celery", "-b", fixture.broker, ...args], { timeout: 30_000 });
    const json = async <T>(...args: string[]): Promise<T> =>
      JSON.parse((await celery(...args, "--json", "-d", node)).stdout) as T;

    beforeAll(async () => {
      await fixture.setup();
      await requirePythonCelery();
      worker = await startUntil(
        "node",
        [
          "sdk/bin/celeriac.mjs",
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
      if (worker) await kill(worker.proc, "SIGTERM");
      const { broker } = await app.connect();
      await broker.deleteQueue(queue).catch(() => {});
      await app.close();
    });

    it("lists our worker in `celery inspect ping` and `celery inspect registered`", async () => {
      // As operators run it: every worker on the broker, in Celery's text layout.
      const { stdout } = await celery("inspect", "ping");
      expect(stdout).toMatch(new RegExp(`-> +${pattern(node)}: OK\\s+pong`));
      expect(await json("inspect", "ping")).toEqual({ [node]: { ok: "pong" } });
      const registered = await json<Record<string, string[]>>("inspect", "registered");
      expect(registered[node]).toEqual(
        expect.arrayContaining(["tasks.add", "tasks.sleep", "tasks.fail"]),
      );
      // Celery lists its built-in tasks only when asked for them.
      expect(registered[node]).not.toContain("celery.starmap");
    });

    it("shows what our worker runs, holds and schedules, and `celery control terminate` stops a running tasks.sleep", async () => {
      const sleeps = [
        await app.sendTask("tasks.sleep", [30]),
        await app.sendTask("tasks.sleep", [30]),
      ];
      await until(async () => {
        const [reply] = await app.control.inspect("active", { destination: [node] });
        return ((reply?.[node] ?? []) as unknown[]).length === 2;
      });
      // Both slots busy: this one waits in the worker; the other waits for its eta.
      const waiting = await app.sendTask("tasks.add", [1, 1]);
      const later = await app.sendTask("tasks.add", [2, 2], {}, { countdown: 60 });
      await until(async () => {
        const [reply] = await app.control.inspect("reserved", { destination: [node] });
        return ((reply?.[node] ?? []) as unknown[]).length === 1;
      });

      type Info = { id: string; name: string; args: unknown; acknowledged: boolean };
      const active = await json<Record<string, Info[]>>("inspect", "active");
      expect(active[node]?.map((t) => t.id).sort()).toEqual(sleeps.map((r) => r.id).sort());
      expect(active[node]?.[0]).toMatchObject({ name: "tasks.sleep", args: [30] });
      const reserved = await json<Record<string, Info[]>>("inspect", "reserved");
      expect(reserved[node]).toEqual([
        expect.objectContaining({ id: waiting.id, name: "tasks.add", args: [1, 1] }),
      ]);
      const scheduled = await json<Record<string, Array<{ eta: string; request: Info }>>>(
        "inspect",
        "scheduled",
      );
      expect(scheduled[node]).toEqual([
        expect.objectContaining({ request: expect.objectContaining({ id: later.id }) }),
      ]);
      expect(Date.parse(scheduled[node]?.[0]?.eta ?? "") - Date.now()).toBeGreaterThan(30_000);

      // Celery 5.2.6's `celery control revoke` has no --terminate option ("No such option");
      // its command line for a revoke with terminate is `terminate <signal> <ids>`.
      const [first, second] = sleeps.map((r) => r.id);
      const replies = await json<Array<Record<string, { ok: string }>>>(
        "control",
        "terminate",
        "SIGTERM",
        first!,
        second!,
      );
      expect(replies).toHaveLength(1);
      expect(replies[0]?.[node]?.ok).toMatch(/^terminate: /);
      expect(replies[0]?.[node]?.ok).toContain(first);
      expect(replies[0]?.[node]?.ok).toContain(second);
      for (const r of sleeps) {
        const error = await failure(r.get({ timeout: 10 }));
        expect(error).toBeInstanceOf(TaskRevokedError);
        expect(error.message).toBe("terminated");
        expect(await r.state()).toBe("REVOKED");
      }
      // The worker goes on: the task that waited for a slot runs, and new ones too.
      expect(await waiting.get({ timeout: 10 })).toBe(2);
      expect(await (await app.sendTask("tasks.add", [2, 3])).get({ timeout: 10 })).toBe(5);
      // The held one is not left to run after this suite.
      await app.control.revoke(later.id, { reply: true, destination: [node] });
    });

    it("keeps a task revoked with `celery control revoke` from running when it arrives", async () => {
      const id = randomUUID();
      expect(await json("control", "revoke", id)).toEqual([
        { [node]: { ok: `tasks ${id} flagged as revoked` } },
      ]);
      const r = await app.sendTask("tasks.add", [1, 2], {}, { taskId: id });
      const error = await failure(r.get({ timeout: 10 }));
      expect(error).toBeInstanceOf(TaskRevokedError);
      expect(await r.state()).toBe("REVOKED");
    });

    it("shows our worker's events in `celery events --dump`", async () => {
      const dump = await startUntil(
        PYTHON,
        ["-m", "celery", "-b", fixture.broker, "events", "--dump"],
        /starting capture/,
        { timeoutMs: 20_000 },
      );
      try {
        // The dumper wakes every worker with the `heartbeat` command as it starts.
        await until(() => new RegExp(`${pattern(node)} \\[.*\\] heartbeat: `).test(dump.output()));
        const r = await app.sendTask("tasks.add", [20, 22]);
        expect(await r.get({ timeout: 10 })).toBe(42);
        const line = (type: string) =>
          new RegExp(
            `${pattern(node)} \\[.*\\] task ${type}: tasks\\.add\\(${r.id}\\) args=\\(20, 22\\) kwargs=\\{\\}`,
          );
        await until(() => line("succeeded").test(dump.output()));
        expect(dump.output()).toMatch(line("received"));
        expect(dump.output()).toMatch(line("started"));
        expect(dump.output()).toMatch(new RegExp(`${line("succeeded").source}.* result=42,`));
      } finally {
        await kill(dump.proc, "SIGTERM");
      }
    });
  });
}

celeryCliSuite({
  name: "Redis",
  broker: redisUrl(3),
  backend: redisUrl(4),
  setup: requireRedis,
});

celeryCliSuite({
  name: "RabbitMQ",
  broker: AMQP_URL,
  backend: redisUrl(5),
  setup: async () => {
    await requireRabbitMQ();
    await requireRedis();
  },
});
