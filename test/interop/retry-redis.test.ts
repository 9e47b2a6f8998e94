import { Redis } from "ioredis";
import { redisUrl, requireRedis } from "../helpers/services.js";
import { retryInteropSuite } from "./retry-suite.js";

const broker = redisUrl(3);

retryInteropSuite({
  name: "Redis",
  broker,
  backend: redisUrl(4),
  setup: requireRedis,
  async take(queue) {
    const redis = new Redis(broker);
    try {
      // Producers LPUSH, so the oldest message is at the right end; kombu's priority lists too.
      const lists = [queue, `${queue}\x06\x163`, `${queue}\x06\x166`, `${queue}\x06\x169`];
      const raws: string[] = [];
      for (const list of lists) {
        const [[, items]] = (await redis.multi().lrange(list, 0, -1).del(list).exec()) as [
          [unknown, string[]],
        ];
        raws.push(...items.reverse());
      }
      return raws.map((raw) => {
        const env = JSON.parse(raw) as {
          headers: Record<string, unknown>;
          properties: Record<string, unknown>;
          body: string;
        };
        return {
          headers: env.headers,
          properties: env.properties,
          body: Buffer.from(env.body, "base64").toString("utf8"),
        };
      });
    } finally {
      redis.disconnect();
    }
  },
});
