/**
 * The Redis result backend as Celery lays it out: `celery-task-meta-<id>` keys holding Celery's
 * JSON, kept for `result_expires` (a day), announced on a channel of the same name so that
 * `get()` waits on pub/sub and never polls; and a URL's user and password reach Redis.
 */
import { randomUUID } from "node:crypto";
import { Redis } from "ioredis";
import { pino } from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createApp, createWorker, type Worker } from "../../sdk/src/index.js";
import { redisUrl, requireRedis, uniqueName } from "../helpers/services.js";

const url = redisUrl(3);
const queue = uniqueName("backend");
const app = createApp({ broker: url, resultBackend: url, defaultQueue: queue });
const add = app.task("backend.add", (_ctx, x: number, y: number) => x + y);
const nap = app.task("backend.nap", async (_ctx, ms: number) => {
  await new Promise((r) => setTimeout(r, ms));
  return ms;
});
let worker: Worker;
let redis: Redis;

beforeAll(async () => {
  await requireRedis();
  redis = new Redis(url);
  worker = await createWorker(app, {
    hostname: `${queue}@test`,
    queues: [queue],
    logger: pino({ level: "silent" }),
  });
  await worker.start();
});

afterAll(async () => {
  await worker?.stop();
  await app.close();
  redis?.disconnect();
});

describe("the Redis result backend", () => {
  it("stores Celery's meta under celery-task-meta-<id>, kept for a day", async () => {
    const result = await add.delay(2, 3);
    expect(await result.get({ timeout: 10 })).toBe(5);
    const key = `celery-task-meta-${result.id}`;
    const meta = JSON.parse((await redis.get(key)) ?? "null") as Record<string, unknown>;
    expect(meta).toEqual({
      status: "SUCCESS",
      result: 5,
      traceback: null,
      children: [],
      date_done: expect.stringMatching(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}$/),
      task_id: result.id,
    });
    const ttl = await redis.ttl(key);
    expect(ttl).toBeGreaterThan(86_400 - 60);
    expect(ttl).toBeLessThanOrEqual(86_400);
  });

  it("wakes get() through pub/sub, without reading the key again while it waits", async () => {
    const taskId = randomUUID();
    const key = `celery-task-meta-${taskId}`;
    const monitor = await new Redis(url).monitor();
    const reads: string[] = [];
    monitor.on("monitor", (_time: string, args: string[]) => {
      if (args[1] === key && args[0]?.toUpperCase() === "GET") reads.push(args[0]);
    });
    try {
      const result = await nap.applyAsync([1500], { taskId });
      const waited = result.get({ timeout: 10 });
      // Wait, subscribed, while the task naps; then the value comes with its announcement.
      expect(await waited).toBe(1500);
      // Read once when get() starts (the result may be there already), never in a loop.
      expect(reads.length).toBeLessThanOrEqual(2);
    } finally {
      monitor.disconnect();
    }
  });

  it("signs in with the user and password of its URL", async () => {
    const user = uniqueName("celeriac-test");
    const password = `p@ss/${randomUUID()}`;
    await redis.call("ACL", "SETUSER", user, "on", `>${password}`, "~*", "&*", "+@all");
    const authed = new URL(url);
    authed.username = user;
    authed.password = encodeURIComponent(password);
    const other = createApp({ broker: url, resultBackend: authed.toString(), defaultQueue: queue });
    try {
      const { backend } = await other.connect();
      expect(backend?.displayUrl).not.toContain(password);
      const result = await other.sendTask("backend.add", [20, 22]);
      expect(await result.get({ timeout: 10 })).toBe(42);
      const clients = (await redis.call("CLIENT", "LIST")) as string;
      expect(clients).toContain(`user=${user}`);
    } finally {
      await other.close();
      await redis.call("ACL", "DELUSER", user);
    }
  });
});
