/**
 * The `queues` query and `purgeQueue` on the brokers where depth is real: Redis (lists, whose
 * consumers the control plane knows from the workers) and RabbitMQ (which counts them itself).
 */
import { createApp, createWorker, type Worker } from "@celeriac/sdk";
import { pino } from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestServer, type TestServer } from "../helpers/server.js";
import {
  AMQP_URL,
  redisUrl,
  requireRabbitMQ,
  requireRedis,
  uniqueName,
} from "../helpers/services.js";
import { audited, waitFor } from "./api-helpers.js";

type QueueRow = {
  name: string;
  messages: number | null;
  consumers: number | null;
  workers: string[];
};

describe.each([
  { name: "Redis", broker: redisUrl(11), setup: requireRedis },
  { name: "RabbitMQ", broker: AMQP_URL, setup: requireRabbitMQ },
])("queues on $name", ({ broker, setup }) => {
  const parked = uniqueName("parked");
  const served = uniqueName("served");
  const eventQueue = uniqueName("celeriac.events");
  const host = `${uniqueName("queues")}@test`;
  let t: TestServer;
  let worker: Worker;
  const app = createApp({ broker, resultBackend: null });
  app.task("tasks.add", (_ctx, x: number, y: number) => x + y);

  beforeAll(async () => {
    await setup();
    t = await startTestServer({ brokerUrl: broker, eventQueue, ingestFlushMs: 10 });
    worker = await createWorker(app, {
      hostname: host,
      queues: [served],
      taskEvents: true,
      logger: pino({ level: "silent" }),
    });
    await worker.start();
  });

  afterAll(async () => {
    await worker?.stop();
    const { broker: b } = await app.connect();
    for (const q of [parked, served, eventQueue]) await b.deleteQueue(q).catch(() => {});
    await app.close();
    await t?.close();
  });

  const queues = () =>
    t
      .gql<{ queues: QueueRow[] }>(
        "{ queues { name messages consumers workers } }",
        {},
        t.tokens.viewer,
      )
      .then((r) => r.data?.queues ?? []);

  it("reads each queue's depth from the broker, with its consumers", async () => {
    for (let i = 0; i < 3; i++) {
      const r = await t.gql<{ sendTask: { __typename: string } }>(
        `mutation ($q: String) { sendTask(input: { name: "tasks.add", args: [1, 2], queue: $q }) { __typename } }`,
        { q: parked },
        t.tokens.operator,
      );
      expect(r.data?.sendTask.__typename).toBe("Task");
    }
    // The worker's row says which queues it consumes once the registry has asked it.
    await t.server.services.registry.refresh();
    const listed = await waitFor(queues, (qs) =>
      qs.some((q) => q.name === parked && q.messages === 3),
    );
    expect(listed.find((q) => q.name === parked)).toEqual({
      name: parked,
      messages: 3,
      consumers: 0,
      workers: [],
    });
    expect(listed.find((q) => q.name === served)).toEqual({
      name: served,
      messages: 0,
      consumers: 1,
      workers: [host],
    });
  });

  it("purges a queue, saying how many messages went, and refuses an unknown one", async () => {
    const purge = (name: string, token = t.tokens.operator) =>
      t
        .gql<{ purgeQueue: Record<string, unknown> }>(
          `mutation ($name: String!) { purgeQueue(name: $name) { __typename
            ... on PurgeQueueSuccess { data } ... on Error { code message } ... on NotFoundError { what id } } }`,
          { name },
          token,
        )
        .then((r) => r.data?.purgeQueue);
    expect(await purge(parked, t.tokens.viewer)).toMatchObject({ __typename: "ForbiddenError" });
    expect(await purge(parked)).toEqual({ __typename: "PurgeQueueSuccess", data: 3 });
    expect((await queues()).find((q) => q.name === parked)?.messages).toBe(0);
    expect(await purge(parked)).toEqual({ __typename: "PurgeQueueSuccess", data: 0 });
    const missing = uniqueName("no-such-queue");
    expect(await purge(missing)).toEqual({
      __typename: "NotFoundError",
      code: "NOT_FOUND",
      message: `queue ${missing} not found`,
      what: "queue",
      id: missing,
    });
    const [notFound, again, purged] = await audited(t, "purgeQueue", 3);
    expect(purged).toMatchObject({
      actor: "test operator",
      input: { name: parked },
      outcome: "ok",
    });
    expect(again?.outcome).toBe("ok");
    expect(notFound).toMatchObject({ outcome: "error", error: `queue ${missing} not found` });
  });
});
