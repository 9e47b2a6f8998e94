/**
 * Dev mode as the README starts it (`npm start` runs `celeriac-server dev`): everything in one
 * process on PGlite and the in-memory broker, the dashboard served, a stable admin token; and the
 * same command on a real Postgres and Redis, where a worker of another process joins.
 */
import { mkdtemp, readFile, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createTestDatabase, type TestDatabase } from "../helpers/postgres.js";
import { kill, startUntil } from "../helpers/processes.js";
import { redisUrl, requireRedis } from "../helpers/services.js";

const CLI = "server/bin/celeriac-server.mjs";
const READY = /Admin token:\s+(cel_\S+)/;

/** The environment without the variables that would replace the embedded services. */
function cleanEnv(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  const env = { ...process.env };
  for (const k of ["DATABASE_URL", "BROKER_URL", "RESULT_BACKEND", "PORT", "LOG_LEVEL"])
    delete env[k];
  return { ...env, ...extra };
}

function started(output: string) {
  const token = READY.exec(output)?.[1];
  const url = /Dashboard:\s+(http:\/\/[^/\s]+)\//.exec(output)?.[1];
  if (!token || !url) throw new Error(`no URL or token in:\n${output}`);
  const gql = async <T>(query: string, variables: Record<string, unknown> = {}) => {
    const response = await fetch(`${url}/graphql`, {
      method: "POST",
      headers: { "content-type": "application/json", authorization: `Bearer ${token}` },
      body: JSON.stringify({ query, variables }),
    });
    return ((await response.json()) as { data: T }).data;
  };
  return { token, url, gql };
}

async function until<T>(fn: () => Promise<T>, ok: (v: T) => boolean, ms = 20_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (ok(v) || Date.now() > deadline) return v;
    await new Promise((r) => setTimeout(r, 200));
  }
}

const SEND = `mutation ($input: SendTaskInput!) { sendTask(input: $input) { __typename ... on Task { id } } }`;
const TASK = "query ($id: ID!) { task(id: $id) { state result worker } }";

describe("celeriac-server dev", () => {
  let dataDir: string;
  beforeAll(async () => {
    dataDir = await mkdtemp(path.join(os.tmpdir(), "celeriac-dev-"));
  });
  afterAll(async () => {
    await rm(dataDir, { recursive: true, force: true });
  });

  it("runs the server, beat, a worker and a demo load on PGlite with nothing installed, and serves the dashboard", {
    timeout: 240_000,
  }, async () => {
    const first = await startUntil(
      "node",
      [CLI, "dev", "--port", "0", "--data-dir", dataDir],
      READY,
      {
        env: cleanEnv(),
        timeoutMs: 180_000,
      },
    );
    let token: string;
    try {
      const dev = started(first.output());
      token = dev.token;
      expect(first.output()).toContain(`pglite://${path.join(dataDir, "db")}`);
      expect((await readFile(path.join(dataDir, "admin-token"), "utf8")).trim()).toBe(token);

      // The dashboard, with the single-page app's fallback.
      const index = await fetch(`${dev.url}/`);
      expect(index.status).toBe(200);
      expect(await index.text()).toContain('<div id="root">');
      const deep = await fetch(`${dev.url}/tasks/some-id`);
      expect(deep.headers.get("content-type")).toContain("text/html");
      expect((await fetch(`${dev.url}/assets/missing.js`)).status).toBe(404);

      // The admin token works; the demo load and the worker are busy; a task sent runs.
      const me = await dev.gql<{ me: { role: string } }>("{ me { role } }");
      expect(me.me.role).toBe("admin");
      const busy = await until(
        () =>
          dev.gql<{ tasks: { totalCount: number } }>(
            '{ tasks(filter: { states: ["SUCCESS"] }) { totalCount } }',
          ),
        (d) => d.tasks.totalCount > 3,
      );
      expect(busy.tasks.totalCount).toBeGreaterThan(3);
      const sent = await dev.gql<{ sendTask: { id: string } }>(SEND, {
        input: { name: "tasks.add", args: [2, 3] },
      });
      const done = await until(
        () =>
          dev.gql<{ task: { state: string; result: string } | null }>(TASK, {
            id: sent.sendTask.id,
          }),
        (d) => d.task?.state === "SUCCESS",
      );
      expect(done.task).toMatchObject({ state: "SUCCESS", result: "5" });

      // The example with an argument schema, for the dashboard's form; the demo's periodic task.
      const known = await until(
        () =>
          dev.gql<{
            registeredTasks: Array<{ name: string; argsSchema: unknown }>;
            periodicTasks: { edges: Array<{ node: { name: string; enabled: boolean } }> };
          }>(
            "{ registeredTasks { name argsSchema } periodicTasks { edges { node { name enabled } } } }",
          ),
        (d) => d.registeredTasks.some((t) => t.name === "reports.render"),
      );
      expect(
        known.registeredTasks.find((t) => t.name === "reports.render")?.argsSchema,
      ).toMatchObject({
        type: "array",
      });
      expect(known.periodicTasks.edges.map((e) => e.node.name)).toContain("demo: echo every 30 s");
    } finally {
      await kill(first.proc, "SIGINT");
    }
    expect(first.proc.exitCode).toBe(0);

    // Started again: the same data, the same token, no second demo schedule.
    const second = await startUntil(
      "node",
      [CLI, "dev", "--port", "0", "--data-dir", dataDir, "--no-demo"],
      READY,
      {
        env: cleanEnv(),
        timeoutMs: 120_000,
      },
    );
    try {
      const dev = started(second.output());
      expect(dev.token).toBe(token);
      const schedules = await dev.gql<{ periodicTasks: { totalCount: number } }>(
        "{ periodicTasks { totalCount } }",
      );
      expect(schedules.periodicTasks.totalCount).toBe(1);
    } finally {
      await kill(second.proc, "SIGTERM");
    }
  });

  describe("with DATABASE_URL and BROKER_URL", () => {
    let database: TestDatabase;
    beforeAll(async () => {
      await requireRedis();
      database = await createTestDatabase("celeriac_dev");
    });
    afterAll(async () => {
      await database?.drop();
    });

    it("uses them instead, and a worker of another process joins", {
      timeout: 180_000,
    }, async () => {
      const broker = redisUrl(11);
      const env = cleanEnv({
        DATABASE_URL: database.url,
        BROKER_URL: broker,
        RESULT_BACKEND: broker,
      });
      const dev = await startUntil(
        "node",
        [CLI, "dev", "--port", "0", "--data-dir", dataDir, "--no-demo"],
        READY,
        {
          env,
          timeoutMs: 120_000,
        },
      );
      const queue = `dev-ext-${process.pid}`;
      const worker = await startUntil(
        "node",
        [
          "sdk/bin/celeriac.mjs",
          "worker",
          "--app",
          "examples/tasks.ts",
          "-E",
          "-n",
          "ext@test",
          "-Q",
          queue,
          "-c",
          "2",
        ],
        /ready/,
        { env, timeoutMs: 60_000 },
      );
      try {
        expect(dev.output()).toContain(broker);
        const d = started(dev.output());
        const workers = await until(
          () =>
            d.gql<{ workers: Array<{ hostname: string; online: boolean }> }>(
              "{ workers { hostname online } }",
            ),
          (w) => w.workers.some((x) => x.hostname === "ext@test" && x.online),
        );
        expect(workers.workers.filter((w) => w.online).map((w) => w.hostname)).toEqual(
          expect.arrayContaining(["ext@test", expect.stringMatching(/^dev@/)]),
        );
        const sent = await d.gql<{ sendTask: { id: string } }>(SEND, {
          input: { name: "tasks.mul", args: [6, 7], queue },
        });
        const done = await until(
          () =>
            d.gql<{ task: { state: string; result: string; worker: string } | null }>(TASK, {
              id: sent.sendTask.id,
            }),
          (t) => t.task?.state === "SUCCESS",
        );
        expect(done.task).toMatchObject({ state: "SUCCESS", result: "42", worker: "ext@test" });
      } finally {
        await kill(worker.proc, "SIGKILL");
        await kill(dev.proc, "SIGTERM");
      }
    });
  });
});
