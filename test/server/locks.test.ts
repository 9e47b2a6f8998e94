/**
 * Unique-task locks through GraphQL, on Redis with a real worker holding them: who holds what
 * until when (any role), releasing one (operator, audited, NOT_FOUND for no such lock) so that
 * another run of the key can start, keys of redacted tasks, and a server with no lock store.
 */
import { type App, createApp, createWorker, type Worker } from "@celeriac/sdk";
import { pino } from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestServer, type TestServer } from "../helpers/server.js";
import { AMQP_URL, redisUrl, requireRedis, uniqueName } from "../helpers/services.js";

// The unique-task suites' Redis database: lock keys and queues here are this file's own.
const REDIS = redisUrl(2);
const queue = uniqueName("locks");
const hostname = `${queue}@test`;
const albumTask = uniqueName("stats.album");
const secretTask = `secret.${uniqueName("charge")}`;

let t: TestServer;
let app: App;
let worker: Worker;
/** Task ids in the order their runs started; each run waits until its gate is opened. */
const started: string[] = [];
const gates = new Map<string, () => void>();

interface LockRow {
  key: string;
  taskName: string;
  taskId: string;
  worker: string;
  acquiredAt: string;
  expiresAt: string;
  task: { id: string; state: string } | null;
}

const LOCK_FIELDS = "key taskName taskId worker acquiredAt expiresAt task { id state }";
const RELEASE = `mutation ($key: String!) { releaseLock(key: $key) {
  __typename
  ... on Lock { ${LOCK_FIELDS} }
  ... on Error { code message }
  ... on ForbiddenError { requiredRole }
} }`;

async function locks(token = t.tokens.viewer): Promise<LockRow[]> {
  const r = await t.gql<{ locks: LockRow[] }>(`{ locks { ${LOCK_FIELDS} } }`, {}, token);
  if (r.errors) throw new Error(JSON.stringify(r.errors));
  return r.data!.locks.filter((l) => l.taskName === albumTask || l.taskName === secretTask);
}

async function release(key: string, token: string) {
  const r = await t.gql<{ releaseLock: Record<string, unknown> }>(RELEASE, { key }, token);
  if (r.errors) throw new Error(JSON.stringify(r.errors));
  return r.data!.releaseLock;
}

async function until<T>(read: () => Promise<T>, done: (v: T) => boolean, what: string) {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const value = await read();
    if (done(value)) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

const open = (id: string) => gates.get(id)?.();

beforeAll(async () => {
  await requireRedis();
  t = await startTestServer({
    brokerUrl: REDIS,
    resultBackendUrl: REDIS,
    redactTasks: ["secret.*"],
    ingestFlushMs: 10,
  });
  app = createApp({ broker: REDIS, resultBackend: REDIS, defaultQueue: queue });
  const hold = async (id: string) => {
    started.push(id);
    await new Promise<void>((resolve) => gates.set(id, resolve));
    return id;
  };
  app.task(albumTask, (ctx, _albumId: string) => hold(ctx.id), {
    unique: { by: "args", ttl: 30, onConflict: "fail" },
  });
  app.task(secretTask, (ctx, _card: string) => hold(ctx.id), { unique: { by: "args", ttl: 30 } });
  worker = await createWorker(app, {
    hostname,
    concurrency: 4,
    taskEvents: true,
    logger: pino({ level: "silent" }),
  });
  await worker.start();
}, 60_000);

afterAll(async () => {
  for (const resolve of gates.values()) resolve();
  await worker?.stop({ force: true });
  await app?.close();
  await t?.close();
});

describe("locks", () => {
  it("lists a running unique task's lock with its holder and expiry, to a viewer", async () => {
    const run = await app.sendTask(albumTask, ["a1"]);
    const [lock] = await until(locks, (l) => l.length === 1, "the lock");
    expect(lock).toMatchObject({
      key: `${albumTask}:["a1"]`,
      taskName: albumTask,
      taskId: run.id,
      worker: hostname,
    });
    const acquired = new Date(lock!.acquiredAt).getTime();
    const expires = new Date(lock!.expiresAt).getTime();
    expect(acquired).toBeLessThanOrEqual(Date.now());
    // Taken for its ttl (30 s), and pushed further each time it is renewed.
    expect(expires - acquired).toBeGreaterThanOrEqual(29_000);
    expect(expires).toBeGreaterThan(Date.now());
    // Linked to the task history once the worker's events are ingested.
    const linked = await until(locks, (l) => l[0]?.task?.state === "STARTED", "the holder");
    expect(linked[0]!.task).toEqual({ id: run.id, state: "STARTED" });

    open(run.id);
    await run.get({ timeout: 10 });
    expect(await until(locks, (l) => l.length === 0, "the release at the end")).toEqual([]);
  });

  it("lets an operator, not a viewer, free a lock; another run of its key can then start", async () => {
    const first = await app.sendTask(albumTask, ["a2"]);
    const [lock] = await until(locks, (l) => l.length === 1, "the lock");
    const key = `${albumTask}:["a2"]`;
    expect(lock).toMatchObject({ key, taskId: first.id });

    // Held: a second run of the key is refused (onConflict "fail").
    const refused = await app.sendTask(albumTask, ["a2"]);
    await expect(refused.get({ timeout: 10 })).rejects.toMatchObject({
      name: "UniqueConflictError",
    });

    expect(await release(key, t.tokens.viewer)).toMatchObject({
      __typename: "ForbiddenError",
      code: "FORBIDDEN",
      requiredRole: "operator",
    });
    expect(await locks()).toHaveLength(1);
    expect(await release(`${albumTask}:["nobody"]`, t.tokens.operator)).toMatchObject({
      __typename: "NotFoundError",
      code: "NOT_FOUND",
    });

    expect(await release(key, t.tokens.operator)).toMatchObject({
      __typename: "Lock",
      key,
      taskId: first.id,
      worker: hostname,
    });
    expect(await locks()).toEqual([]);

    // The first run goes on; a new run of the same key starts beside it and takes the lock.
    const second = await app.sendTask(albumTask, ["a2"]);
    await until(
      async () => started,
      (s) => s.includes(second.id),
      "the second run to start",
    );
    expect((await until(locks, (l) => l.length === 1, "the new holder"))[0]!.taskId).toBe(
      second.id,
    );
    open(first.id);
    open(second.id);
    expect(await first.get({ timeout: 10 })).toBe(first.id);
    expect(await second.get({ timeout: 10 })).toBe(second.id);

    const audit = await t.gql<{
      auditLog: { edges: Array<{ node: Record<string, unknown> }> };
    }>(
      `{ auditLog(first: 10, action: "releaseLock") { edges { node { actor input outcome error } } } }`,
    );
    expect(audit.data!.auditLog.edges.map((e) => e.node)).toEqual([
      { actor: "test operator", input: { key }, outcome: "ok", error: null },
      {
        actor: "test operator",
        input: { key: `${albumTask}:["nobody"]` },
        outcome: "error",
        error: `lock ${albumTask}:["nobody"] not found`,
      },
      {
        actor: "test viewer",
        input: {},
        outcome: "error",
        error: "forbidden: needs the operator role",
      },
    ]);
  });

  it("hides a redacted task's arguments in its key, which still releases it", async () => {
    const run = await app.sendTask(secretTask, ["4242 4242 4242 4242"]);
    const [lock] = await until(locks, (l) => l.length === 1, "the lock");
    expect(lock!.key).toBe(`${secretTask}:[redacted]:${run.id}`);
    // Its raw key is refused, as if wrong: otherwise it would confirm guesses of the arguments.
    const raw = `${secretTask}:["4242 4242 4242 4242"]`;
    expect(await release(raw, t.tokens.operator)).toMatchObject({ code: "NOT_FOUND" });
    expect(await release(lock!.key, t.tokens.operator)).toMatchObject({
      __typename: "Lock",
      key: lock!.key,
      taskId: run.id,
    });
    expect(await locks()).toEqual([]);
    const audit = await t.gql(
      `{ auditLog(first: 5, action: "releaseLock") { edges { node { input } } } }`,
    );
    expect(JSON.stringify(audit.data)).not.toContain("4242");
    open(run.id);
    await run.get({ timeout: 10 });
  });
});

describe("a server without a lock store", () => {
  it("says so (UNAVAILABLE) rather than showing no locks", async () => {
    // RabbitMQ and no result backend: no Redis to find the workers' locks in.
    const bare = await startTestServer({ brokerUrl: AMQP_URL }, { start: false });
    try {
      const r = await bare.gql(`{ locks { key } }`);
      expect(r.errors?.[0]).toMatchObject({
        message: expect.stringMatching(/no lock store/),
        extensions: { code: "UNAVAILABLE" },
      });
    } finally {
      await bare.close();
    }
  });
});
