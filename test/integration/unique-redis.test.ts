import { pino } from "pino";
import { describe, expect, it } from "vitest";
import { RedisLockStore } from "../../sdk/src/index.js";
import { redisUrl, requireRedis } from "../helpers/services.js";
import { uniqueSuite } from "./unique-suite.js";

// The broker is Redis, so the locks live there too.
uniqueSuite({
  name: "Redis",
  brokerUrl: redisUrl(2),
  backendUrl: redisUrl(2),
  setup: requireRedis,
});

describe("the Redis lock store", () => {
  it("reports its connection's errors through the logger, at most one a while", async () => {
    const records: Array<Record<string, unknown>> = [];
    const logger = pino(
      { level: "info" },
      { write: (l: string) => void records.push(JSON.parse(l)) },
    );
    // Nothing listens there: every connection attempt fails.
    const store = new RedisLockStore("redis://127.0.0.1:1/0", "celeriac:lock:", logger);
    const pending = store.list().catch((e: Error) => e);
    const deadline = Date.now() + 5000;
    while (records.length === 0 && Date.now() < deadline)
      await new Promise((r) => setTimeout(r, 20));
    // ioredis retries (and fails) several times more meanwhile.
    await new Promise((r) => setTimeout(r, 1500));
    await store.close();
    await pending;
    expect(records).toHaveLength(1);
    expect(records[0]).toMatchObject({ level: 40, msg: expect.stringMatching(/lock store/) });
    expect(records[0]!.err).toMatchObject({ message: expect.stringMatching(/ECONNREFUSED/) });
  });
});
