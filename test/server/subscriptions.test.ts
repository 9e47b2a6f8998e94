/**
 * Subscriptions as dashboards use them: many clients on the same operation share one execution
 * and each still gets whole results; batches group what arrives together; a client that leaves
 * does not stop the others.
 */
import { randomUUID } from "node:crypto";
import { createApp, createWorker, type Worker } from "@celeriac/sdk";
import { pino } from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestServer, type TestServer } from "../helpers/server.js";
import { subscribe, subscribed, wsClient } from "../helpers/subscriptions.js";

const broker = `memory://subscriptions-${randomUUID()}`;
let t: TestServer;
let worker: Worker;
const app = createApp({ broker, resultBackend: null });
app.task("tasks.add", (_ctx, x: number, y: number) => x + y);
app.task("tasks.mul", (_ctx, x: number, y: number) => x * y);

beforeAll(async () => {
  t = await startTestServer({ brokerUrl: broker, ingestFlushMs: 10 });
  worker = await createWorker(app, {
    hostname: "w@subs",
    taskEvents: true,
    logger: pino({ level: "silent" }),
  });
  await worker.start();
});

afterAll(async () => {
  await worker?.stop();
  await app.close();
  await t?.close();
});

type Update = {
  taskEvents: {
    event: { type: string };
    task: { id: string; name: string; result: string | null };
  };
};
const QUERY = `subscription ($names: [String!]) {
  taskEvents(filter: { names: $names, types: ["task-succeeded"] }) { event { type } task { id name result } } }`;

describe("subscriptions", () => {
  it("give every client of a shared operation whole results, and others their own", async () => {
    const clients = Array.from({ length: 3 }, () => wsClient(t.server.url, t.tokens.viewer));
    const adds = clients
      .slice(0, 2)
      .map((c) => subscribe<Update>(c, QUERY, { names: ["tasks.add"] }));
    const muls = subscribe<Update>(clients[2]!, QUERY, { names: ["tasks.mul"] });
    await subscribed(t.server, 3);
    const add = await app.sendTask("tasks.add", [2, 3]);
    const mul = await app.sendTask("tasks.mul", [2, 3]);
    for (const sub of adds) {
      const got = await sub.until((v) => v.taskEvents.task.id === add.id);
      expect(got).toEqual({
        taskEvents: {
          event: { type: "task-succeeded" },
          task: { id: add.id, name: "tasks.add", result: "5" },
        },
      });
    }
    const got = await muls.until((v) => v.taskEvents.task.id === mul.id);
    expect(got.taskEvents.task.result).toBe("6");
    expect(muls.values.some((v) => v.taskEvents.task.name === "tasks.add")).toBe(false);

    // One of the two sharing clients leaves: the other keeps receiving.
    adds[0]!.close();
    const again = await app.sendTask("tasks.add", [20, 22]);
    expect(
      (await adds[1]!.until((v) => v.taskEvents.task.id === again.id)).taskEvents.task.result,
    ).toBe("42");
    for (const s of [...adds, muls]) s.close();
    for (const c of clients) await c.dispose();
  });

  it("batch events that arrive together", async () => {
    const client = wsClient(t.server.url, t.tokens.viewer);
    const sub = subscribe<{ taskEventBatches: { events: Array<{ task: { id: string } }> } }>(
      client,
      `subscription { taskEventBatches(filter: { types: ["task-succeeded"] }, maxDelayMs: 300) { events { task { id } } } }`,
    );
    await subscribed(t.server, 1);
    const sent = await Promise.all(
      Array.from({ length: 20 }, (_, i) => app.sendTask("tasks.add", [i, i])),
    );
    const ids = new Set(sent.map((r) => r.id));
    const seen = () =>
      sub.values
        .flatMap((b) => b.taskEventBatches.events.map((e) => e.task.id))
        .filter((id) => ids.has(id));
    await sub.until(() => seen().length === 20);
    expect(new Set(seen()).size).toBe(20);
    // Twenty tasks finished within a few milliseconds arrive in far fewer messages than twenty.
    expect(sub.values.length).toBeLessThan(10);
    sub.close();
    await client.dispose();
  });

  it("end a revoked token's open sessions at once", async () => {
    const { token, record } = await t.server.services.tokens.create("short-lived", "viewer");
    const client = wsClient(t.server.url, token);
    const sub = subscribe(client, "subscription { taskEvents { event { type } } }");
    await subscribed(t.server, 1);
    await t.gql(`mutation ($id: ID!) { revokeApiToken(id: $id) { __typename } }`, {
      id: record.id,
    });
    await expect(sub.until(() => false, 5000)).rejects.toThrow(/4403 Forbidden/);
    await subscribed(t.server, 0);
    await client.dispose();
  });
});
