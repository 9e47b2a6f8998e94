/**
 * The GraphQL API through `yoga.fetch`, on a real Postgres, with a worker running the example
 * tasks on the in-memory broker (the broker-specific paths have their own suites).
 */
import { randomUUID } from "node:crypto";
import { createApp, createWorker, defineTask, type Worker } from "@celeriac/sdk";
import { pino } from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { z } from "zod";
import { startTestServer, type TestServer } from "../helpers/server.js";

const broker = `memory://graphql-${randomUUID()}`;
let t: TestServer;
let worker: Worker;

const TASK_FIELDS = "id name state args kwargs result exception retries worker queue";

async function waitFor<T>(
  read: () => Promise<T>,
  done: (v: T) => boolean,
  ms = 10_000,
): Promise<T> {
  const until = Date.now() + ms;
  for (;;) {
    const value = await read();
    if (done(value) || Date.now() > until) return value;
    await new Promise((r) => setTimeout(r, 50));
  }
}

beforeAll(async () => {
  t = await startTestServer({ brokerUrl: broker, ingestFlushMs: 10, redactTasks: ["secret.*"] });
  const app = createApp({ broker, resultBackend: null });
  app.task("tasks.add", (_ctx, x: number, y: number) => x + y);
  app.task("tasks.fail", (_ctx, message: string) => {
    throw new Error(message);
  });
  app.task("secret.charge", (_ctx, card: string) => `charged ${card.slice(-4)}`);
  app.task(
    defineTask("tasks.greet", {
      schemas: { args: z.tuple([z.string().min(2), z.number().int()]) },
    }),
    (_ctx, name, times) => name.repeat(times),
  );
  worker = await createWorker(app, {
    hostname: "w1@test",
    concurrency: 4,
    taskEvents: true,
    logger: pino({ level: "silent" }),
  });
  await worker.start();
  await t.server.services.registry.refresh();
});

afterAll(async () => {
  await worker?.stop();
  await t?.close();
});

const send = (input: Record<string, unknown>, token?: string) =>
  t.gql<{ sendTask: Record<string, unknown> }>(
    `mutation ($input: SendTaskInput!) {
      sendTask(input: $input) {
        __typename
        ... on Task { ${TASK_FIELDS} }
        ... on Error { code message }
        ... on InvalidInputError { issues { path message } }
        ... on ForbiddenError { requiredRole }
      }
    }`,
    { input },
    token,
  );

const task = (id: string) =>
  t.gql<{ task: Record<string, unknown> | null }>(
    `query ($id: ID!) { task(id: $id) { ${TASK_FIELDS} timeline { type hostname } } }`,
    { id },
  );

describe("authentication and roles", () => {
  it("refuses requests without a valid token", async () => {
    const none = await t.gql("{ me { name } }", {}, null);
    expect(none.status).toBe(401);
    expect(none.errors?.[0]?.extensions?.code).toBe("UNAUTHENTICATED");
    const bad = await t.gql("{ me { name } }", {}, "cel_not-a-token");
    expect(bad.status).toBe(401);
  });

  it("lets a viewer read but not act, and says which role is needed", async () => {
    const me = await t.gql<{ me: { role: string } }>("{ me { name role } }", {}, t.tokens.viewer);
    expect(me.data?.me.role).toBe("viewer");
    const denied = await send({ name: "tasks.add", args: [1, 2] }, t.tokens.viewer);
    expect(denied.data?.sendTask).toMatchObject({
      __typename: "ForbiddenError",
      code: "FORBIDDEN",
      requiredRole: "operator",
    });
    const tokens = await t.gql("{ apiTokens { name } }", {}, t.tokens.operator);
    expect(tokens.errors?.[0]?.message).toMatch(/admin/);
  });

  it("creates tokens that work, shown once, and revokes them", async () => {
    const created = await t.gql<{
      createApiToken: { data: { token: string; apiToken: { id: string } } };
    }>(
      `mutation { createApiToken(name: "ci", role: operator) {
        ... on CreateApiTokenSuccess { data { token apiToken { id role prefix } } } } }`,
    );
    const { token, apiToken } = created.data!.createApiToken.data;
    expect(token).toMatch(/^cel_/);
    expect(
      (await t.gql<{ me: { name: string } }>("{ me { name } }", {}, token)).data?.me.name,
    ).toBe("ci");
    await t.gql(`mutation ($id: ID!) { revokeApiToken(id: $id) { __typename } }`, {
      id: apiToken.id,
    });
    expect((await t.gql("{ me { name } }", {}, token)).status).toBe(401);
    const listed = await t.gql<{ apiTokens: Array<Record<string, unknown>> }>(
      "{ apiTokens { name prefix } }",
    );
    expect(JSON.stringify(listed.data)).not.toContain(token);
  });
});

describe("sending and following tasks", () => {
  it("sends a task, stores it at once, and follows it to SUCCESS through the events", async () => {
    const sent = await send({ name: "tasks.add", args: [2, 3] }, t.tokens.operator);
    const created = sent.data!.sendTask;
    expect(created).toMatchObject({ __typename: "Task", name: "tasks.add", args: [2, 3] });
    const done = await waitFor(
      () => task(created.id as string),
      (r) => r.data?.task?.state === "SUCCESS",
    );
    expect(done.data?.task).toMatchObject({ state: "SUCCESS", result: "5", worker: "w1@test" });
    const types = ((done.data?.task?.timeline ?? []) as Array<{ type: string }>).map((e) => e.type);
    expect(types).toEqual(
      expect.arrayContaining(["task-received", "task-started", "task-succeeded"]),
    );
  });

  it("validates arguments against the schema a worker declared", async () => {
    const registered = await t.gql<{
      registeredTasks: Array<{ name: string; argsSchema: unknown }>;
    }>("{ registeredTasks { name workers argsSchema } }");
    const greet = registered.data?.registeredTasks.find((r) => r.name === "tasks.greet");
    expect(greet?.argsSchema).toMatchObject({ type: "array" });
    const bad = await send({ name: "tasks.greet", args: ["x", 1.5] });
    expect(bad.data?.sendTask).toMatchObject({
      __typename: "InvalidInputError",
      code: "INVALID_INPUT",
    });
    const paths = ((bad.data?.sendTask.issues ?? []) as Array<{ path: string[] }>).map((i) =>
      i.path.join("."),
    );
    expect(paths).toEqual(expect.arrayContaining(["args.0", "args.1"]));
    const good = await send({ name: "tasks.greet", args: ["ab", 2] });
    expect(good.data?.sendTask.__typename).toBe("Task");
  });

  it("rejects malformed input with a typed error and sends nothing", async () => {
    const before = await t.gql<{ tasks: { totalCount: number } }>("{ tasks { totalCount } }");
    const bad = await send({ name: "", args: { not: "an array" } });
    expect(bad.data?.sendTask).toMatchObject({ __typename: "InvalidInputError" });
    const after = await t.gql<{ tasks: { totalCount: number } }>("{ tasks { totalCount } }");
    expect(after.data?.tasks.totalCount).toBe(before.data?.tasks.totalCount);
  });

  it("re-runs a failed task with the same arguments, linked to the original", async () => {
    const sent = await send({ name: "tasks.fail", args: ["boom"] });
    const id = sent.data!.sendTask.id as string;
    const failed = await waitFor(
      () => task(id),
      (r) => r.data?.task?.state === "FAILURE",
    );
    expect(failed.data?.task?.exception).toMatch(/boom/);
    const rerun = await t.gql<{ retryTask: Record<string, unknown> }>(
      `mutation ($id: ID!) { retryTask(id: $id) { __typename ... on Task { id name args rerunOf } } }`,
      { id },
    );
    expect(rerun.data?.retryTask).toMatchObject({
      __typename: "Task",
      args: ["boom"],
      rerunOf: id,
    });
    expect(rerun.data?.retryTask.id).not.toBe(id);
    const missing = await t.gql<{ retryTask: Record<string, unknown> }>(
      `mutation { retryTask(id: "nope") { __typename ... on NotFoundError { code what } } }`,
    );
    expect(missing.data?.retryTask).toMatchObject({ __typename: "NotFoundError", what: "task" });
  });

  it("hides the arguments and results of redacted tasks, in answers and in the audit trail", async () => {
    const sent = await send({ name: "secret.charge", args: ["4111111111111111"] });
    const id = sent.data!.sendTask.id as string;
    expect(sent.data?.sendTask.args).toBe("[redacted]");
    const done = await waitFor(
      () => task(id),
      (r) => r.data?.task?.state === "SUCCESS",
    );
    expect(done.data?.task).toMatchObject({ args: "[redacted]", result: "[redacted]" });
    // Nor in its timeline's event fields, nor guessable through text search.
    const timeline = await t.gql(
      `query ($id: ID!) { task(id: $id) { timeline { type fields } } }`,
      {
        id,
      },
    );
    expect(JSON.stringify(timeline.data)).toContain("task-received");
    expect(JSON.stringify(timeline.data)).not.toMatch(/4111|1111|charged/);
    const found = await t.gql<{ tasks: { totalCount: number } }>(
      `{ tasks(filter: { search: "4111" }) { totalCount } }`,
    );
    expect(found.data?.tasks.totalCount).toBe(0);
    const audit = await t.gql<{
      auditLog: { edges: Array<{ node: { action: string; input: unknown } }> };
    }>(`{ auditLog(first: 50) { edges { node { action actor input outcome } } } }`);
    expect(JSON.stringify(audit.data)).not.toContain("4111111111111111");
  });
});

describe("history queries", () => {
  it("filters, searches, sorts and pages through tasks", async () => {
    for (let i = 0; i < 6; i++) await send({ name: "tasks.add", args: [i, 1000] });
    await waitFor(
      () =>
        t.gql<{ tasks: { totalCount: number } }>(
          `{ tasks(filter: { names: ["tasks.add"], states: ["SUCCESS"], search: "1000" }) { totalCount } }`,
        ),
      (r) => r.data?.tasks.totalCount === 6,
    );
    const page1 = await t.gql<{
      tasks: {
        edges: Array<{ node: { args: number[] } }>;
        pageInfo: { endCursor: string; hasNextPage: boolean };
      };
    }>(
      `{ tasks(first: 4, filter: { search: "1000" }, sort: { field: CREATED_AT, direction: ASC }) {
        edges { node { args } } pageInfo { endCursor hasNextPage } } }`,
    );
    expect(page1.data?.tasks.edges.map((e) => e.node.args[0])).toEqual([0, 1, 2, 3]);
    expect(page1.data?.tasks.pageInfo.hasNextPage).toBe(true);
    const page2 = await t.gql<{ tasks: { edges: Array<{ node: { args: number[] } }> } }>(
      `query ($after: String) { tasks(first: 4, after: $after, filter: { search: "1000" },
        sort: { field: CREATED_AT, direction: ASC }) { edges { node { args } } } }`,
      { after: page1.data?.tasks.pageInfo.endCursor },
    );
    expect(page2.data?.tasks.edges.map((e) => e.node.args[0])).toEqual([4, 5]);
  });

  it("lists workers with their liveness, and stats per task name", async () => {
    const workers = await t.gql<{ workers: Array<Record<string, unknown>> }>(
      "{ workers { hostname online software queues concurrency processed } }",
    );
    expect(workers.data?.workers).toContainEqual(
      expect.objectContaining({
        hostname: "w1@test",
        online: true,
        queues: ["celery"],
        concurrency: 4,
      }),
    );
    const stats = await t.gql<{
      stats: Array<{ name: string; succeeded: number; failed: number }>;
    }>("{ stats(window: 600) { name succeeded failed throughput runtimeP50 runtimeP99 } }");
    const add = stats.data?.stats.find((s) => s.name === "tasks.add");
    expect(add?.succeeded).toBeGreaterThanOrEqual(7);
    const series = await t.gql<{ statsSeries: Array<{ succeeded: number }> }>(
      "{ statsSeries(window: 600, bucket: 60) { at succeeded failed runtimeP95 } }",
    );
    expect(series.data?.statsSeries).toHaveLength(10);
    expect(series.data?.statsSeries.reduce((n, b) => n + b.succeeded, 0)).toBeGreaterThanOrEqual(7);
  });

  it("refuses queries that are too deep or too costly", async () => {
    const deep = await t.gql(
      `{ tasks(first: 500) { edges { node { parent { parent { parent { parent { parent { parent { parent { parent { parent { id } } } } } } } } } } } } }`,
    );
    expect(deep.errors?.[0]?.message).toMatch(/depth/i);
    const costly = await t.gql(
      `{ tasks(first: 500) { edges { node { id children { id timeline { type fields hostname } } } } } }`,
    );
    expect(costly.errors?.[0]?.message).toMatch(/complexity/i);
    const page = await t.gql<{ tasks: { edges: unknown[] } }>(
      `{ tasks(first: 100) { edges { node { id name state args kwargs result exception worker queue
        retries runtime createdAt updatedAt startedAt succeededAt failedAt } } } }`,
    );
    expect(page.errors).toBeUndefined();
  });
});

describe("steering workers", () => {
  it("pings workers and changes a rate limit, with the workers' replies", async () => {
    const ping = await t.gql<{
      pingWorkers: { data: Array<{ hostname: string; ok: boolean; message: string }> };
    }>(
      `mutation { pingWorkers { ... on PingWorkersSuccess { data { hostname ok message } } } }`,
      {},
      t.tokens.operator,
    );
    expect(ping.data?.pingWorkers.data).toEqual([
      { hostname: "w1@test", ok: true, message: "pong" },
    ]);
    const bad = await t.gql<{ setRateLimit: Record<string, unknown> }>(
      `mutation { setRateLimit(taskName: "tasks.add", rateLimit: "fast") { __typename } }`,
    );
    expect(bad.data?.setRateLimit.__typename).toBe("InvalidInputError");
    const ok = await t.gql<{ setRateLimit: { data: Array<{ ok: boolean }> } }>(
      `mutation { setRateLimit(taskName: "tasks.add", rateLimit: "100/s") {
        ... on SetRateLimitSuccess { data { hostname ok message } } } }`,
    );
    expect(ok.data?.setRateLimit.data).toEqual([
      expect.objectContaining({ hostname: "w1@test", ok: true }),
    ]);
  });

  it("records every mutation in the audit trail, failures included", async () => {
    const audit = await t.gql<{ auditLog: { edges: Array<{ node: Record<string, unknown> }> } }>(
      `{ auditLog(first: 200) { edges { node { action actor outcome error } } } }`,
    );
    const nodes = audit.data!.auditLog.edges.map((e) => e.node);
    expect(nodes).toContainEqual(
      expect.objectContaining({ action: "setRateLimit", outcome: "error", actor: "test admin" }),
    );
    expect(nodes).toContainEqual(
      expect.objectContaining({ action: "pingWorkers", outcome: "ok", actor: "test operator" }),
    );
  });
});
