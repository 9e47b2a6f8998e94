/**
 * The mutations that act on workers and tasks, through `yoga.fetch`, against real in-process
 * workers on the in-memory broker: what each one does to the fleet, its typed errors (a worker
 * or task that does not exist, invalid input, a role that may not act) and its audit record.
 */
import { randomUUID } from "node:crypto";
import { createApp, createWorker, type Worker } from "@celeriac/sdk";
import { pino } from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestServer, type TestServer } from "../helpers/server.js";
import { uniqueName } from "../helpers/services.js";
import { audited, publishEvents, readTask, taskEvent, taskIn, waitFor } from "./api-helpers.js";

const broker = `memory://actions-${randomUUID()}`;
const W1 = "w1@actions";
let t: TestServer;
const app = createApp({ broker, resultBackend: null });
const workers: Worker[] = [];

/** Sleeps, or ends early with the reason its run was aborted (revoke with terminate, time limit). */
const sleep = (signal: AbortSignal, seconds: number) =>
  new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => resolve("slept"), seconds * 1000);
    signal.addEventListener("abort", () => {
      clearTimeout(timer);
      reject(signal.reason);
    });
  });

app.task("tasks.add", (_ctx, x: number, y: number) => x + y);
app.task("tasks.fail", (_ctx, message: string) => {
  throw new Error(message);
});
app.task("tasks.sleep", (ctx, seconds: number) => sleep(ctx.signal, seconds));
app.task("tasks.echo", (ctx, ...args: unknown[]) => ({
  args,
  kwargs: ctx.kwargs,
  queue: ctx.deliveryInfo.queue,
}));

async function startWorker(hostname: string, options: Record<string, unknown> = {}) {
  const worker = await createWorker(app, {
    hostname,
    concurrency: 2,
    taskEvents: true,
    logger: pino({ level: "silent" }),
    ...options,
  });
  await worker.start();
  workers.push(worker);
  return worker;
}

/** Wait until the control plane holds the worker's row with `online` as given. */
function workerOnline(hostname: string, online: boolean) {
  return waitFor(
    () =>
      t.gql<{ worker: { online: boolean } | null }>(
        "query ($h: ID!) { worker(hostname: $h) { hostname online } }",
        { h: hostname },
      ),
    (r) => r.data?.worker?.online === online,
  ).then((r) => expect(r.data?.worker?.online).toBe(online));
}

let w1: Worker;

beforeAll(async () => {
  t = await startTestServer({ brokerUrl: broker, ingestFlushMs: 10, controlTimeout: 0.5 });
  w1 = await startWorker(W1, { queues: ["celery", "rerun-q"] });
  await workerOnline(W1, true);
});

afterAll(async () => {
  for (const w of workers) await w.stop({ force: true });
  await app.close();
  await t?.close();
});

const REPLIES = "data { hostname ok message }";
const ERRORS = `... on Error { code message }
  ... on NotFoundError { what missing: id }
  ... on ForbiddenError { requiredRole }
  ... on InvalidInputError { issues { path message } }`;

type Reply = { hostname: string; ok: boolean; message: string | null };
type Result = {
  __typename: string;
  data?: Reply[];
  code?: string;
  message?: string;
  what?: string;
  missing?: string;
  requiredRole?: string;
};

/** A worker-control mutation's result: `field(args)` with its replies or its typed error. */
async function control(field: string, args: string, token?: string): Promise<Result> {
  const r = await t.gql<Record<string, Result>>(
    `mutation { ${field}(${args}) { __typename ... on ${field[0]!.toUpperCase()}${field.slice(1)}Success { ${REPLIES} } ${ERRORS} } }`,
    {},
    token,
  );
  expect(r.errors).toBeUndefined();
  return r.data![field]!;
}

const sendTask = async (input: Record<string, unknown>) => {
  const r = await t.gql<{ sendTask: { __typename: string; id: string } }>(
    `mutation ($input: SendTaskInput!) { sendTask(input: $input) { __typename ... on Task { id } ${ERRORS} } }`,
    { input },
    t.tokens.operator,
  );
  expect(r.data?.sendTask.__typename, JSON.stringify(r)).toBe("Task");
  return r.data!.sendTask.id;
};

describe("worker queries", () => {
  it("reads one worker by node name, with what it runs now, and null for an unknown one", async () => {
    const id = await sendTask({ name: "tasks.sleep", args: [1.5] });
    await taskIn(t, id, "STARTED");
    const r = await t.gql<{ worker: Record<string, unknown> | null; none: unknown }>(
      `query ($h: ID!) {
        worker(hostname: $h) { hostname online pid software system heartbeatInterval queues activeTasks }
        none: worker(hostname: "nobody@nowhere") { hostname } }`,
      { h: W1 },
      t.tokens.viewer,
    );
    expect(r.data?.none).toBeNull();
    expect(r.data?.worker).toMatchObject({
      hostname: W1,
      online: true,
      pid: process.pid,
      software: expect.stringMatching(/^celeriac /),
      heartbeatInterval: 2,
    });
    const active = r.data?.worker?.activeTasks as Array<{ id: string; name: string }>;
    expect(active).toContainEqual(expect.objectContaining({ id, name: "tasks.sleep" }));
    await taskIn(t, id, "SUCCESS");
  });
});

describe("steering workers", () => {
  it("grows and shrinks a worker's pool, and the worker's row follows", async () => {
    const grown = await control("growPool", `hostname: "${W1}", n: 3`, t.tokens.operator);
    expect(grown).toEqual({
      __typename: "GrowPoolSuccess",
      data: [{ hostname: W1, ok: true, message: "pool will grow" }],
    });
    expect(w1.concurrency).toBe(5);
    const concurrency = () =>
      t
        .gql<{ worker: { concurrency: number } }>(
          "query ($h: ID!) { worker(hostname: $h) { concurrency } }",
          { h: W1 },
        )
        .then((r) => r.data?.worker.concurrency);
    expect(await waitFor(concurrency, (n) => n === 5)).toBe(5);

    const shrunk = await control("shrinkPool", `hostname: "${W1}", n: 4`, t.tokens.operator);
    expect(shrunk.data).toEqual([{ hostname: W1, ok: true, message: "pool will shrink" }]);
    expect(w1.concurrency).toBe(1);
    expect(await waitFor(concurrency, (n) => n === 1)).toBe(1);
    await control("growPool", `hostname: "${W1}", n: 1`);
    expect(w1.concurrency).toBe(2);

    const zero = await control("growPool", `hostname: "${W1}", n: 0`);
    expect(zero).toMatchObject({ __typename: "InvalidInputError", code: "INVALID_INPUT" });
    expect(w1.concurrency).toBe(2);

    const [grow] = await audited(t, "growPool", 3);
    expect(grow).toMatchObject({ outcome: "error", actor: "test admin", input: { n: 0 } });
    expect(await audited(t, "shrinkPool")).toEqual([
      {
        action: "shrinkPool",
        actor: "test operator",
        input: { hostname: W1, n: 4 },
        outcome: "ok",
        error: null,
      },
    ]);
  });

  it("answers NotFoundError for a node name never seen", async () => {
    for (const field of ["growPool", "shrinkPool", "shutdownWorker"]) {
      const result = await control(field, `hostname: "nobody@nowhere"`);
      expect(result, field).toEqual({
        __typename: "NotFoundError",
        code: "NOT_FOUND",
        message: "worker nobody@nowhere not found",
        what: "worker",
        missing: "nobody@nowhere",
      });
      const [entry] = await audited(t, field, 1);
      expect(entry).toMatchObject({
        outcome: "error",
        error: "worker nobody@nowhere not found",
        input: { hostname: "nobody@nowhere" },
      });
    }
    const blank = await control("shutdownWorker", `hostname: " "`);
    expect(blank.__typename).toBe("InvalidInputError");
    // Commands to several named workers: none answering is an error, some answering is not.
    const none = await control(
      "setRateLimit",
      `taskName: "tasks.add", rateLimit: "5/s",
      destination: ["nobody@nowhere"]`,
    );
    expect(none).toMatchObject({ __typename: "NotFoundError", missing: "nobody@nowhere" });
    const some = await control(
      "setRateLimit",
      `taskName: "tasks.add", rateLimit: null,
      destination: ["${W1}", "nobody@nowhere"]`,
    );
    expect(some.data).toEqual([
      { hostname: "nobody@nowhere", ok: false, message: "worker nobody@nowhere not found" },
      { hostname: W1, ok: true, message: "rate limit disabled successfully" },
    ]);
  });

  it("answers UnavailableError for a known worker that is offline or does not answer", async () => {
    const gone = uniqueName("gone");
    const goneHost = `${gone}@actions`;
    const worker = await startWorker(goneHost);
    await workerOnline(goneHost, true);
    await worker.stop();
    await workerOnline(goneHost, false);
    for (const field of ["growPool", "shrinkPool", "shutdownWorker"]) {
      const result = await control(field, `hostname: "${goneHost}"`);
      expect(result, field).toMatchObject({ __typename: "UnavailableError", code: "UNAVAILABLE" });
      expect(result.message).toMatch(new RegExp(`worker ${goneHost} is offline .*did not answer`));
    }

    // Online (it sends heartbeats) but deaf to remote control, as a wedged worker would be.
    const deafHost = `${uniqueName("deaf")}@actions`;
    const deaf = await startWorker(deafHost, { control: false });
    await workerOnline(deafHost, true);
    const started = Date.now();
    const grow = await control("growPool", `hostname: "${deafHost}"`);
    expect(grow).toMatchObject({
      __typename: "UnavailableError",
      message: `worker ${deafHost} did not answer within 0.5 s`,
    });
    expect(Date.now() - started).toBeGreaterThanOrEqual(450);
    expect(deaf.concurrency).toBe(2);
    // Celery's workers never answer `shutdown`: from an online worker, silence is not an error.
    const shutdown = await control("shutdownWorker", `hostname: "${deafHost}"`);
    expect(shutdown).toEqual({ __typename: "ShutdownWorkerSuccess", data: [] });
  });

  it("shuts a worker down: it answers, stops, and goes offline", async () => {
    const host = `${uniqueName("w2")}@actions`;
    const worker = await startWorker(host);
    await workerOnline(host, true);
    const stopped = new Promise<void>((resolve) => worker.once("stopped", () => resolve()));
    const result = await control("shutdownWorker", `hostname: "${host}"`, t.tokens.operator);
    expect(result).toEqual({
      __typename: "ShutdownWorkerSuccess",
      data: [{ hostname: host, ok: true, message: "shutting down" }],
    });
    await stopped;
    await workerOnline(host, false);
    const [entry] = await audited(t, "shutdownWorker", 1);
    expect(entry).toMatchObject({ outcome: "ok", input: { hostname: host } });
  });

  it("adds and cancels a consumer; a task revoked before it arrived is discarded", async () => {
    const queue = uniqueName("parked");
    const waiting = await sendTask({ name: "tasks.add", args: [1, 1], queue });
    const doomed = await sendTask({ name: "tasks.add", args: [2, 2], queue });
    // An id nobody has seen: revoked all the same (Celery's revoke before arrival), and said so.
    const early = randomUUID();
    const revokeOne = (id: string) =>
      t.gql<{ revokeTask: { data: { revoked: string[]; unknown: string[]; replies: Reply[] } } }>(
        `mutation ($id: ID!) { revokeTask(id: $id) { ... on RevokeTaskSuccess {
          data { revoked unknown replies { hostname ok message } } } } }`,
        { id },
        t.tokens.operator,
      );
    const known = await revokeOne(doomed);
    expect(known.data?.revokeTask.data).toEqual({
      revoked: [doomed],
      unknown: [],
      replies: [{ hostname: W1, ok: true, message: `tasks ${doomed} flagged as revoked` }],
    });
    const unknown = await revokeOne(early);
    expect(unknown.data?.revokeTask.data).toMatchObject({ revoked: [early], unknown: [early] });
    await app.sendTask("tasks.add", [3, 3], {}, { taskId: early, queue });

    const added = await control("addConsumer", `queue: "${queue}", destination: ["${W1}"]`);
    expect(added.data).toEqual([{ hostname: W1, ok: true, message: `add consumer ${queue}` }]);
    expect(w1.queues).toContain(queue);
    await taskIn(t, waiting, "SUCCESS");
    await taskIn(t, doomed, "REVOKED");
    await taskIn(t, early, "REVOKED");
    const listed = await waitFor(
      () =>
        t.gql<{ queues: Array<{ name: string; workers: string[] }> }>(
          "{ queues { name workers } }",
        ),
      (r) => r.data?.queues.some((q) => q.name === queue && q.workers.includes(W1)) ?? false,
    );
    expect(listed.data?.queues).toContainEqual({ name: queue, workers: [W1] });

    const cancelled = await control("cancelConsumer", `queue: "${queue}", destination: ["${W1}"]`);
    expect(cancelled.data).toEqual([
      { hostname: W1, ok: true, message: `no longer consuming from ${queue}` },
    ]);
    expect(w1.queues).not.toContain(queue);
    const blank = await control("addConsumer", `queue: "  "`);
    expect(blank.__typename).toBe("InvalidInputError");
    const [refused, addedEntry] = await audited(t, "addConsumer", 2);
    expect(refused).toMatchObject({ outcome: "error", error: "a queue name is required" });
    expect(addedEntry).toMatchObject({ outcome: "ok", input: { queue, destination: [W1] } });
    const [cancelEntry] = await audited(t, "cancelConsumer", 1);
    expect(cancelEntry).toMatchObject({ outcome: "ok", input: { queue, destination: [W1] } });
  });

  it("changes a task's time limit on the workers, and the next run obeys it", async () => {
    const set = await control(
      "setTimeLimit",
      `taskName: "tasks.sleep", hard: 0.3,
      destination: ["${W1}"]`,
    );
    expect(set.data).toEqual([{ hostname: W1, ok: true, message: "time limits set successfully" }]);
    const id = await sendTask({ name: "tasks.sleep", args: [20] });
    const failed = await taskIn(t, id, "FAILURE", "id state exception runtime", 10_000);
    expect(failed.exception).toMatch(/TimeLimitExceeded/);
    // Removed again (no soft, no hard): the next run takes its time.
    await control("setTimeLimit", `taskName: "tasks.sleep"`);
    const slow = await sendTask({ name: "tasks.sleep", args: [0.6] });
    await taskIn(t, slow, "SUCCESS");

    const unknownTask = await control("setTimeLimit", `taskName: "tasks.nope", soft: 1`);
    expect(unknownTask.data).toEqual([{ hostname: W1, ok: false, message: "unknown task" }]);
    const negative = await control("setTimeLimit", `taskName: "tasks.sleep", soft: -1`);
    expect(negative).toMatchObject({ __typename: "InvalidInputError" });
    const entries = await audited(t, "setTimeLimit", 4);
    expect(entries.map((e) => e.outcome)).toEqual(["error", "ok", "ok", "ok"]);
    expect(entries[3]?.input).toEqual({ taskName: "tasks.sleep", hard: 0.3, destination: [W1] });
  });

  it("changes a task's rate limit on the workers, as the registry then shows", async () => {
    const set = await control("setRateLimit", `taskName: "tasks.add", rateLimit: "5/m"`);
    expect(set.data).toEqual([
      { hostname: W1, ok: true, message: "new rate limit set successfully" },
    ]);
    const rate = async () => {
      await t.server.services.registry.refresh();
      const r = await t.gql<{ registeredTasks: Array<{ name: string; rateLimit: string | null }> }>(
        "{ registeredTasks { name rateLimit } }",
      );
      return r.data?.registeredTasks.find((x) => x.name === "tasks.add")?.rateLimit;
    };
    expect(await rate()).toBe("5/m");
    await control("setRateLimit", `taskName: "tasks.add", rateLimit: null`);
    expect(await rate()).toBeNull();
    const [entry] = await audited(t, "setRateLimit", 1);
    expect(entry).toMatchObject({
      outcome: "ok",
      input: { taskName: "tasks.add", rateLimit: null },
    });
  });

  it("passes a fleet-wide limit on, and shows each worker's refusal when it has no Redis", async () => {
    // These workers are on the in-memory broker: a global limit needs Redis (tested there).
    const set = await control(
      "setRateLimit",
      `taskName: "tasks.add", rateLimit: "5/s", global: true`,
    );
    expect(set.data).toEqual([
      { hostname: W1, ok: false, message: expect.stringMatching(/globalRateLimit needs Redis/) },
    ]);
    const [entry] = await audited(t, "setRateLimit", 1);
    expect(entry).toMatchObject({
      input: { taskName: "tasks.add", rateLimit: "5/s", global: true },
    });
  });
});

describe("acting on tasks", () => {
  type Revoked = { revoked: string[]; unknown: string[]; replies: Reply[] };

  it("revokes a running task with terminate, which stops it", async () => {
    const id = await sendTask({ name: "tasks.sleep", args: [30] });
    await taskIn(t, id, "STARTED");
    const r = await t.gql<{ revokeTask: { __typename: string; data: Revoked } }>(
      `mutation ($id: ID!) { revokeTask(id: $id, terminate: true, signal: "SIGKILL") {
        __typename ... on RevokeTaskSuccess { data { revoked unknown replies { hostname ok message } } } } }`,
      { id },
      t.tokens.operator,
    );
    expect(r.data?.revokeTask.data).toEqual({
      revoked: [id],
      unknown: [],
      replies: [{ hostname: W1, ok: true, message: `terminate: ${id}` }],
    });
    const row = await taskIn(t, id, "REVOKED", "id state revokedAt timeline { type fields }");
    expect(row.revokedAt).toEqual(expect.any(String));
    const revoked = (row.timeline as Array<{ type: string; fields: Record<string, unknown> }>).find(
      (e) => e.type === "task-revoked",
    );
    expect(revoked?.fields).toMatchObject({ terminated: true, signum: 9 });
    expect(await audited(t, "revokeTask", 1)).toEqual([
      {
        action: "revokeTask",
        actor: "test operator",
        input: { id, terminate: true, signal: "SIGKILL" },
        outcome: "ok",
        error: null,
      },
    ]);

    const badSignal = await t.gql<{ revokeTask: Result }>(
      `mutation { revokeTask(id: "x", signal: "kill -9") { __typename ${ERRORS} } }`,
    );
    expect(badSignal.data?.revokeTask).toMatchObject({ __typename: "InvalidInputError" });
    const blank = await t.gql<{ revokeTask: Result }>(
      `mutation { revokeTask(id: "") { __typename ${ERRORS} } }`,
    );
    expect(blank.data?.revokeTask).toMatchObject({ __typename: "InvalidInputError" });
  });

  it("revokes every task of a selection", async () => {
    const queue = uniqueName("bulk");
    const ids = [];
    for (let i = 0; i < 3; i++)
      ids.push(await sendTask({ name: "tasks.add", args: [i, i], queue }));
    const r = await t.gql<{ revokeTasks: { data: Revoked } }>(
      `mutation ($q: [String!]) { revokeTasks(filter: { queues: $q }) {
        ... on RevokeTasksSuccess { data { revoked unknown replies { hostname ok } } } } }`,
      { q: [queue] },
      t.tokens.operator,
    );
    expect(new Set(r.data?.revokeTasks.data.revoked)).toEqual(new Set(ids));
    expect(r.data?.revokeTasks.data).toMatchObject({
      unknown: [],
      replies: [{ hostname: W1, ok: true }],
    });
    await control("addConsumer", `queue: "${queue}", destination: ["${W1}"]`);
    for (const id of ids) await taskIn(t, id, "REVOKED");
    await control("cancelConsumer", `queue: "${queue}", destination: ["${W1}"]`);

    const nothing = await t.gql<{ revokeTasks: { data: Revoked } }>(
      `mutation { revokeTasks(filter: { queues: ["${uniqueName("empty")}"] }) {
        ... on RevokeTasksSuccess { data { revoked unknown replies { hostname } } } } }`,
    );
    expect(nothing.data?.revokeTasks.data).toEqual({ revoked: [], unknown: [], replies: [] });
    const [entry] = await audited(t, "revokeTasks", 2).then((e) => e.slice(1));
    expect(entry).toMatchObject({
      outcome: "ok",
      actor: "test operator",
      input: { filter: { queues: [queue] }, terminate: false, signal: "SIGTERM" },
    });
  });

  it("re-runs every task of a selection, skipping those whose arguments are not known", async () => {
    const marker = uniqueName("bulk-retry");
    const a = await sendTask({ name: "tasks.fail", args: [`${marker} a`] });
    const b = await sendTask({ name: "tasks.fail", args: [`${marker} b`] });
    // Tasks whose arguments, or keyword arguments, are only known as a repr that is not a
    // literal (a Python object): sending them again without would run another task.
    const opaque = randomUUID();
    const opaqueKwargs = randomUUID();
    const now = Date.now();
    await publishEvents(app, [
      taskEvent("task-received", opaque, now, {
        name: "tasks.fail",
        args: "(<object object at 0x7f3a2c1e0>,)",
        kwargs: "{}",
      }),
      taskEvent("task-failed", opaque, now + 5, { exception: `ValueError('${marker} c')` }),
      taskEvent("task-received", opaqueKwargs, now, {
        name: "tasks.fail",
        args: "('d',)",
        kwargs: "{'at': <object object at 0x7f3a2c1f0>}",
      }),
      taskEvent("task-failed", opaqueKwargs, now + 5, { exception: `ValueError('${marker} d')` }),
    ]);
    await taskIn(t, a, "FAILURE");
    await taskIn(t, b, "FAILURE");
    await taskIn(t, opaque, "FAILURE");
    await taskIn(t, opaqueKwargs, "FAILURE");

    const r = await t.gql<{
      retryTasks: {
        __typename: string;
        data: { sent: Array<{ rerunOf: string; name: string; args: unknown }>; skipped: string[] };
      };
    }>(
      `mutation ($ids: [ID!]) { retryTasks(filter: { ids: $ids, states: ["FAILURE"] }) {
        __typename ... on RetryTasksSuccess { data { sent { id name args rerunOf } skipped } } } }`,
      { ids: [a, b, opaque, opaqueKwargs] },
      t.tokens.operator,
    );
    expect(r.data?.retryTasks.__typename).toBe("RetryTasksSuccess");
    const { sent, skipped } = r.data!.retryTasks.data;
    expect(skipped.sort()).toEqual([opaque, opaqueKwargs].sort());
    expect(sent.map((s) => s.rerunOf).sort()).toEqual([a, b].sort());
    for (const s of sent) {
      expect(s.name).toBe("tasks.fail");
      expect(s.args).toEqual([`${marker} ${s.rerunOf === a ? "a" : "b"}`]);
    }
    // The re-runs run (and fail again, with the same arguments).
    for (const s of sent as Array<{ id?: string }>) await taskIn(t, s.id!, "FAILURE");
    const [entry] = await audited(t, "retryTasks", 1);
    expect(entry).toMatchObject({
      outcome: "ok",
      input: { filter: { ids: [a, b, opaque, opaqueKwargs] } },
    });
    // Each re-run is audited as its own retryTask, linked to what it re-runs.
    const reruns = await audited(t, "retryTask", 10);
    expect(reruns.map((e) => e.input.rerunOf)).toEqual(expect.arrayContaining([a, b]));
  });

  it("re-runs a task with its name, arguments, keyword arguments, queue and expiry", async () => {
    const id = await sendTask({
      name: "tasks.echo",
      args: [1, "two"],
      kwargs: { three: 3 },
      queue: "rerun-q",
      expires: 600,
    });
    const FIELDS = "id state result queue sentAt expires";
    const original = await taskIn(t, id, "SUCCESS", FIELDS);
    const expiresIn = (task: Record<string, unknown>) =>
      (Date.parse(String(task.expires)) - Date.parse(String(task.sentAt))) / 1000;
    expect(expiresIn(original)).toBeCloseTo(600, 0);
    const r = await t.gql<{
      retryTask: { __typename: string; id: string } & Record<string, unknown>;
    }>(
      `mutation ($id: ID!) { retryTask(id: $id) { __typename
        ... on Task { id name args kwargs queue rerunOf } ${ERRORS} } }`,
      { id },
      t.tokens.operator,
    );
    expect(r.data?.retryTask).toMatchObject({
      __typename: "Task",
      name: "tasks.echo",
      args: [1, "two"],
      kwargs: { three: 3 },
      queue: "rerun-q",
      rerunOf: id,
    });
    const rerun = await taskIn(t, r.data!.retryTask.id, "SUCCESS", FIELDS);
    // Its expiry is as long after it was sent as the original's was.
    expect(Math.abs(expiresIn(rerun) - 600)).toBeLessThan(2);
    // It ran with the same arguments, delivered from the same queue.
    expect(rerun.result).toBe(original.result);
    expect(String(rerun.result)).toContain("rerun-q");
    const reruns = await t.gql<{ task: { reruns: Array<{ id: string }> } }>(
      "query ($id: ID!) { task(id: $id) { reruns { id } } }",
      { id },
    );
    expect(reruns.data?.task.reruns).toEqual([{ id: r.data!.retryTask.id }]);
  });

  it("answers NotFoundError for a task id never seen, and audits it", async () => {
    const id = randomUUID();
    const r = await t.gql<{ retryTask: Result }>(
      `mutation ($id: ID!) { retryTask(id: $id) { __typename ${ERRORS} } }`,
      { id },
      t.tokens.operator,
    );
    expect(r.data?.retryTask).toEqual({
      __typename: "NotFoundError",
      code: "NOT_FOUND",
      message: `task ${id} not found`,
      what: "task",
      missing: id,
    });
    expect(await readTask(t, id)).toBeNull();
    const [entry] = await audited(t, "retryTask", 1);
    expect(entry).toMatchObject({ outcome: "error", input: { id }, error: `task ${id} not found` });
  });
});

describe("roles", () => {
  const MUTATIONS: Record<string, string> = {
    growPool: `hostname: "${W1}", n: 2`,
    shrinkPool: `hostname: "${W1}"`,
    shutdownWorker: `hostname: "${W1}"`,
    addConsumer: `queue: "viewer-q"`,
    cancelConsumer: `queue: "celery"`,
    setRateLimit: `taskName: "tasks.add", rateLimit: "1/h"`,
    setTimeLimit: `taskName: "tasks.add", hard: 1`,
    pingWorkers: "",
    purgeQueue: `name: "celery"`,
    revokeTask: `id: "${randomUUID()}"`,
    revokeTasks: `filter: { names: ["tasks.add"] }`,
    retryTasks: `filter: { names: ["tasks.add"] }`,
    retryTask: `id: "${randomUUID()}"`,
    sendTask: `input: { name: "tasks.add", args: [1, 2] }`,
  };

  it("refuses every action to a viewer, says which role it needs, and audits the refusal", async () => {
    const before = w1.concurrency;
    for (const [field, args] of Object.entries(MUTATIONS)) {
      const r = await t.gql<Record<string, Result>>(
        `mutation { ${field}${args ? `(${args})` : ""} { __typename ${ERRORS} } }`,
        {},
        t.tokens.viewer,
      );
      expect(r.data?.[field], field).toEqual({
        __typename: "ForbiddenError",
        code: "FORBIDDEN",
        message: "this needs the operator role",
        requiredRole: "operator",
      });
    }
    expect(w1.concurrency).toBe(before);
    expect(w1.queues).toEqual(["celery", "rerun-q"]);
    // Refusals are written without holding up the answer: wait for the last of them.
    for (const field of Object.keys(MUTATIONS)) {
      const entries = await waitFor(
        () => audited(t, field, 1),
        (e) => e[0]?.actor === "test viewer",
      );
      expect(entries[0], field).toMatchObject({
        actor: "test viewer",
        outcome: "error",
        error: "forbidden: needs the operator role",
      });
    }
  });
});
