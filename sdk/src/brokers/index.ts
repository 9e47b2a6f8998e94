/** Build a broker from its URL; each transport is loaded only when used. */
import { CeleriacError } from "../errors.js";
import type { Broker } from "./broker.js";
import { MemoryBroker } from "./memory/broker.js";
import { redact } from "./url.js";

export type * from "./broker.js";
export { redact } from "./url.js";

export async function createBroker(url: string): Promise<Broker> {
  const scheme = url.slice(0, url.indexOf(":")).toLowerCase();
  switch (scheme) {
    case "memory":
      return new MemoryBroker(url);
    case "redis":
    case "rediss": {
      const { RedisBroker } = await import("./redis/broker.js");
      return new RedisBroker(url);
    }
    case "amqp":
    case "amqps":
    case "pyamqp": {
      const { AmqpBroker } = await import("./amqp/broker.js");
      return new AmqpBroker(url);
    }
    default:
      throw new CeleriacError(
        "INVALID_URL",
        `unsupported broker URL ${JSON.stringify(redact(url))}: use redis://, rediss://, amqp://, amqps:// or memory://`,
      );
  }
}
