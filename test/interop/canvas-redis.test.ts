import { Redis } from "ioredis";
import { requireRedis } from "../helpers/services.js";
import { BACKEND_URL, canvasInteropSuite } from "./canvas-suite.js";

canvasInteropSuite({
  name: "Redis",
  broker: BACKEND_URL,
  setup: requireRedis,
  async peek(queue) {
    const redis = new Redis(BACKEND_URL);
    // Producers LPUSH: the oldest message is at the right end.
    const raws = (await redis.lrange(queue, 0, -1)).reverse();
    redis.disconnect();
    return raws.map((raw) => {
      const env = JSON.parse(raw) as { headers: Record<string, unknown>; body: string };
      return { headers: env.headers, body: Buffer.from(env.body, "base64").toString("utf8") };
    });
  },
});
