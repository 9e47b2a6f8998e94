import { Redis } from "ioredis";
import { redisUrl, requireRedis } from "../helpers/services.js";
import { interopSuite } from "./interop-suite.js";

const broker = redisUrl(3);

interopSuite({
  name: "Redis",
  broker,
  backend: redisUrl(4),
  // kombu's priority steps: 0 is served first.
  priorities: { sent: [9, 0, 5], served: [0, 5, 9] },
  setup: requireRedis,
  async peek(queue) {
    const redis = new Redis(broker);
    // Producers LPUSH, so the oldest message is at the right end; all priority lists included.
    const lists = [queue, `${queue}\x06\x163`, `${queue}\x06\x166`, `${queue}\x06\x169`];
    const raws = (await Promise.all(lists.map((l) => redis.lrange(l, 0, -1)))).flatMap((l) =>
      l.reverse(),
    );
    redis.disconnect();
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
        raw,
      };
    });
  },
});
