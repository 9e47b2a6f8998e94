/**
 * Live streams as clients use them, over graphql-ws and over Server-Sent Events through Yoga:
 * one task's changes, task logs shipped by a worker (also stored and served by `task { logs }`),
 * worker events, and stats every interval; and the `stats` query's figures.
 */
import { randomUUID } from "node:crypto";
import { createApp, createWorker, type Worker } from "@celeriac/sdk";
import { pino } from "pino";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { startTestServer, type TestServer } from "../helpers/server.js";
import { uniqueName } from "../helpers/services.js";
import { subscribe, subscribed, wsClient } from "../helpers/subscriptions.js";
import { taskIn, waitFor } from "./api-helpers.js";

const broker = `memory://streams-${randomUUID()}`;
const HOST = "w@streams";
let t: TestServer;
let worker: Worker;
const extra: Worker[] = [];
// With `task-sent` events, as the server's own sends: a task revoked before it reaches a worker
// is then still known by name.
const app = createApp({ broker, resultBackend: null, taskSendSentEvent: true });

app.task("tasks.add", (_ctx, x: number, y: number) => x + y);
app.task("tasks.mul", (_ctx, x: number, y: number) => x * y);
app.task("albums.stats", (ctx, albumId: string) => {
  ctx.logger.info({ albumId }, "computing");
  ctx.logger.debug("below the shipped level");
  ctx.logger.warn("slow disk");
  return albumId.length;
});
app.task("stats.ok", async (_ctx, ms: number) => {
  await new Promise((r) => setTimeout(r, ms));
  return ms;
});
app.task("stats.bad", () => {
  throw new Error("bad");
});
app.task("stats.flaky", (ctx) => {
  if (ctx.retries === 0) ctx.retry({ countdown: 0.05, error: new Error("once more") });
  return "ok";
});

beforeAll(async () => {
  t = await startTestServer({ brokerUrl: broker, ingestFlushMs: 10 });
  worker = await createWorker(app, {
    hostname: HOST,
    concurrency: 4,
    taskEvents: true,
    // Its own logger (silent on stdout) is what ships records as `celeriac-log` events.
    logLevel: "silent",
    shipLogs: "info",
  });
  await worker.start();
});

afterAll(async () => {
  for (const w of [worker, ...extra]) await w?.stop({ force: true });
  await app.close();
  await t?.close();
});

/** Clients of the running test, closed after it whatever its outcome, so counts start at 0. */
const clients: Array<ReturnType<typeof wsClient>> = [];
const client = () => {
  const c = wsClient(t.server.url, t.tokens.viewer);
  clients.push(c);
  return c;
};
afterEach(async () => {
  for (const c of clients.splice(0)) await c.dispose();
  await subscribed(t.server, 0);
});

type TaskUpdate = { taskUpdated: { id: string; state: string; result: string | null } };

describe("graphql-ws subscriptions", () => {
  it("taskUpdated follows one task to SUCCESS, and no other", async () => {
    const ws = client();
    const id = randomUUID();
    const sub = subscribe<TaskUpdate>(
      ws,
      "subscription ($id: ID!) { taskUpdated(id: $id) { id state result } }",
      { id },
    );
    await subscribed(t.server, 1);
    await app.sendTask("tasks.add", [1, 1]); // another task: not for this subscriber
    await app.sendTask("tasks.add", [20, 22], {}, { taskId: id });
    const done = await sub.until((v) => v.taskUpdated.state === "SUCCESS");
    expect(done.taskUpdated).toEqual({ id, state: "SUCCESS", result: "42" });
    expect(sub.values.every((v) => v.taskUpdated.id === id)).toBe(true);
    // Each change as stored: never back from SUCCESS.
    expect(sub.values.at(-1)?.taskUpdated.state).toBe("SUCCESS");
  });

  it("taskLogs streams a task's shipped log records, which task { logs } then serves", async () => {
    const ws = client();
    type Log = {
      taskLogs: { taskId: string; taskName: string; level: string; msg: string; data: unknown };
    };
    const one = randomUUID();
    const other = randomUUID();
    const QUERY = `subscription ($id: ID) { taskLogs(taskId: $id) { taskId taskName level msg data } }`;
    const mine = subscribe<Log>(ws, QUERY, { id: one });
    const all = subscribe<Log>(ws, QUERY, {});
    await subscribed(t.server, 2);
    await app.sendTask("albums.stats", ["b-side"], {}, { taskId: other });
    await app.sendTask("albums.stats", ["a1"], {}, { taskId: one });
    await mine.until((v) => v.taskLogs.msg === "slow disk");
    await all.until((v) => v.taskLogs.taskId === other && v.taskLogs.msg === "slow disk");
    // The handler's records, in order, at the shipped level and above (the worker adds its own
    // about the task, such as "task succeeded").
    const records = mine.values.map((v) => v.taskLogs);
    expect(records.every((r) => r.taskId === one && r.taskName === "albums.stats")).toBe(true);
    expect(records.filter((r) => r.msg !== "task succeeded")).toEqual([
      {
        taskId: one,
        taskName: "albums.stats",
        level: "info",
        msg: "computing",
        data: expect.objectContaining({ albumId: "a1" }),
      },
      expect.objectContaining({ level: "warn", msg: "slow disk" }),
    ]);

    await taskIn(t, one, "SUCCESS");
    const logs = await waitFor(
      () =>
        t.gql<{ task: { logs: Array<{ level: string; msg: string; data: unknown }> } }>(
          "query ($id: ID!) { task(id: $id) { logs { taskId level msg hostname retries data timestamp } } }",
          { id: one },
          t.tokens.viewer,
        ),
      (r) => r.data?.task.logs.some((l) => l.msg === "slow disk") ?? false,
    );
    expect(logs.data?.task.logs.filter((l) => l.msg !== "task succeeded")).toEqual([
      expect.objectContaining({ level: "info", msg: "computing", hostname: HOST, retries: 0 }),
      expect.objectContaining({ level: "warn", msg: "slow disk", hostname: HOST }),
    ]);
    expect(logs.data?.task.logs[0]?.data).toMatchObject({ albumId: "a1" });
    const firstOnly = await t.gql<{ task: { logs: Array<{ msg: string }> } }>(
      "query ($id: ID!) { task(id: $id) { logs(first: 1) { msg } } }",
      { id: one },
    );
    expect(firstOnly.data?.task.logs).toEqual([{ msg: "computing" }]);
  });

  it("workerEvents tells a worker coming online, beating, and going offline", async () => {
    const ws = client();
    const host = `${uniqueName("late")}@streams`;
    type Event = { workerEvents: { type: string; worker: { hostname: string; online: boolean } } };
    const sub = subscribe<Event>(
      ws,
      "subscription ($h: String) { workerEvents(hostname: $h) { type worker { hostname online } } }",
      { h: host },
    );
    await subscribed(t.server, 1);
    const late = await createWorker(app, {
      hostname: host,
      heartbeatInterval: 0.3,
      logger: pino({ level: "silent" }),
    });
    extra.push(late);
    await late.start();
    const online = await sub.until((v) => v.workerEvents.type === "worker-online");
    expect(online.workerEvents.worker).toEqual({ hostname: host, online: true });
    await sub.until((v) => v.workerEvents.type === "worker-heartbeat");
    await late.stop();
    const offline = await sub.until((v) => v.workerEvents.type === "worker-offline");
    expect(offline.workerEvents.worker).toEqual({ hostname: host, online: false });
    // Only the named worker's events.
    expect(sub.values.every((v) => v.workerEvents.worker.hostname === host)).toBe(true);
  });

  it("stats sends the figures again every interval", async () => {
    const ws = client();
    type Stats = { stats: Array<{ name: string; succeeded: number }> };
    const arrived: number[] = [];
    const sub = subscribe<Stats>(
      ws,
      `subscription { stats(interval: 1, window: 600, names: ["tasks.mul"]) { name succeeded } }`,
    );
    const first = await sub.until(() => true);
    arrived.push(Date.now());
    expect(first.stats).toEqual([]);
    await app.sendTask("tasks.mul", [6, 7]);
    const counted = await sub.until((v) => v.stats[0]?.succeeded === 1, 10_000);
    expect(counted.stats).toEqual([{ name: "tasks.mul", succeeded: 1 }]);
    const n = sub.values.length;
    await sub.until(() => sub.values.length >= n + 1, 5000);
    arrived.push(Date.now());
    // n + 1 results after the first, one per second (timers on a busy machine run late, not early).
    const elapsed = arrived[1]! - arrived[0]!;
    expect(elapsed).toBeGreaterThanOrEqual(n * 1000 - 150);
    expect(elapsed).toBeLessThan((n + 3) * 1000);
  });
});

/** Server-Sent Events as Yoga writes them: `event: next` / `data: <result>` blocks, ending with `complete`. */
async function* sseResults<T>(response: Response): AsyncGenerator<T> {
  const reader = response.body!.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      buffer += value;
      for (let end = buffer.indexOf("\n\n"); end >= 0; end = buffer.indexOf("\n\n")) {
        const block = buffer.slice(0, end).split("\n");
        buffer = buffer.slice(end + 2);
        const event = block
          .find((l) => l.startsWith("event:"))
          ?.slice(6)
          .trim();
        const data = block
          .filter((l) => l.startsWith("data:"))
          .map((l) => l.slice(5).trim())
          .join("\n");
        if (event === "complete") return;
        if (data) yield JSON.parse(data) as T;
      }
    }
  } finally {
    await reader.cancel().catch(() => {});
  }
}

describe("subscriptions over SSE", () => {
  const sseRequest = (
    query: string,
    variables: object,
    token: string | null,
    signal?: AbortSignal,
  ) => ({
    method: "POST",
    headers: {
      accept: "text/event-stream",
      "content-type": "application/json",
      ...(token ? { authorization: `Bearer ${token}` } : {}),
    },
    body: JSON.stringify({ query, variables }),
    signal,
  });

  /** Until the pubsub has `n` subscribers on the topic: SSE streams are not counted as sockets are. */
  const listening = (topic: "task:updated" | "task:event", n: number) =>
    waitFor(
      async () => t.server.services.pubsub.subscribers(topic),
      (k) => k === n,
      5000,
    ).then((k) => expect(k).toBe(n));

  it("follows a task through yoga.fetch, and stops when the client leaves", async () => {
    const id = randomUUID();
    const abort = new AbortController();
    const response = await t.server.yoga.fetch(
      "http://celeriac.test/graphql",
      sseRequest(
        "subscription ($id: ID!) { taskUpdated(id: $id) { id state result } }",
        { id },
        t.tokens.viewer,
        abort.signal,
      ),
    );
    expect(response.status).toBe(200);
    expect(response.headers.get("content-type")).toMatch(/^text\/event-stream/);
    const results = sseResults<{ data?: TaskUpdate; errors?: unknown }>(response);
    await listening("task:updated", 1);
    await app.sendTask("tasks.add", [2, 3], {}, { taskId: id });
    const states: string[] = [];
    for await (const result of results) {
      expect(result.errors).toBeUndefined();
      expect(result.data?.taskUpdated.id).toBe(id);
      states.push(result.data!.taskUpdated.state);
      if (result.data?.taskUpdated.state === "SUCCESS") {
        expect(result.data.taskUpdated.result).toBe("5");
        break;
      }
    }
    expect(states.at(-1)).toBe("SUCCESS");
    abort.abort();
    await listening("task:updated", 0);
  });

  it("streams task events over HTTP to a client with a token, and refuses one without", async () => {
    const query = `subscription { taskEvents(filter: { names: ["tasks.mul"], types: ["task-succeeded"] }) {
      event { type hostname } task { id state result } } }`;
    const refused = await fetch(`${t.server.url}/graphql`, sseRequest(query, {}, null));
    expect(refused.status).toBe(401);
    await refused.body?.cancel();

    const abort = new AbortController();
    const response = await fetch(
      `${t.server.url}/graphql`,
      sseRequest(query, {}, t.tokens.viewer, abort.signal),
    );
    expect(response.status).toBe(200);
    type Event = { taskEvents: { event: { type: string }; task: { id: string; result: string } } };
    const results = sseResults<{ data?: Event }>(response);
    await listening("task:event", 1);
    const sent = await app.sendTask("tasks.mul", [3, 4]);
    const { value } = await results.next();
    expect(value?.data?.taskEvents).toEqual({
      event: { type: "task-succeeded", hostname: HOST },
      task: { id: sent.id, state: "SUCCESS", result: "12" },
    });
    abort.abort();
    await results.return(undefined);
    await listening("task:event", 0);
  });
});

describe("the stats query", () => {
  it("counts outcomes per task name over the window, with runtime percentiles", async () => {
    const ok = await Promise.all([30, 60, 90].map((ms) => app.sendTask("stats.ok", [ms])));
    const bad = await Promise.all([1, 2].map(() => app.sendTask("stats.bad")));
    const flaky = await app.sendTask("stats.flaky");
    const revokedId = randomUUID();
    await app.control.revoke(revokedId, { reply: true, destination: [HOST] });
    await app.sendTask("stats.ok", [1], {}, { taskId: revokedId });
    for (const r of ok) await taskIn(t, r.id, "SUCCESS");
    for (const r of bad) await taskIn(t, r.id, "FAILURE");
    await taskIn(t, flaky.id, "SUCCESS");
    await taskIn(t, revokedId, "REVOKED");

    type Row = {
      name: string;
      succeeded: number;
      failed: number;
      retried: number;
      revoked: number;
      throughput: number;
      runtimeP50: number | null;
      runtimeP95: number | null;
      runtimeP99: number | null;
    };
    const r = await t.gql<{ stats: Row[] }>(
      `{ stats(window: 600, names: ["stats.ok", "stats.bad", "stats.flaky"]) {
        name succeeded failed retried revoked throughput runtimeP50 runtimeP95 runtimeP99 } }`,
      {},
      t.tokens.viewer,
    );
    const by = Object.fromEntries((r.data?.stats ?? []).map((s) => [s.name, s]));
    expect(Object.keys(by).sort()).toEqual(["stats.bad", "stats.flaky", "stats.ok"]);
    expect(by["stats.ok"]).toMatchObject({ succeeded: 3, failed: 0, retried: 0, revoked: 1 });
    expect(by["stats.ok"]?.throughput).toBeCloseTo(3 / 600, 6);
    expect(by["stats.bad"]).toMatchObject({ succeeded: 0, failed: 2, revoked: 0 });
    expect(by["stats.flaky"]).toMatchObject({ succeeded: 1, failed: 0, retried: 1 });
    // The median of 30, 60 and 90 ms runs (timers run late, never early).
    const okRow = by["stats.ok"]!;
    expect(okRow.runtimeP50).toBeGreaterThanOrEqual(0.055);
    expect(okRow.runtimeP50).toBeLessThan(0.5);
    expect(okRow.runtimeP95!).toBeGreaterThanOrEqual(okRow.runtimeP50!);
    expect(okRow.runtimeP99!).toBeGreaterThanOrEqual(okRow.runtimeP95!);
    // A window that starts after these tasks finished: nothing.
    await new Promise((r) => setTimeout(r, 1100));
    const later = await t.gql<{ stats: Row[] }>(
      `{ stats(window: 1, names: ["stats.bad"]) { name } }`,
    );
    expect(later.data?.stats).toEqual([]);
  });
});
