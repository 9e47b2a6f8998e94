/** Build a result backend from its URL; each backend is loaded only when used. */

import { redact } from "../brokers/index.js";
import { CeleriacError } from "../errors.js";
import type { ResultBackend } from "./backend.js";
import { MemoryBackend } from "./memory/backend.js";

export type * from "./backend.js";

export async function createBackend(url: string): Promise<ResultBackend> {
  const scheme = url.slice(0, url.indexOf(":")).toLowerCase();
  switch (scheme) {
    case "memory":
      return new MemoryBackend(url);
    case "redis":
    case "rediss": {
      const { RedisBackend } = await import("./redis/backend.js");
      return new RedisBackend(url);
    }
    default:
      throw new CeleriacError(
        "INVALID_URL",
        `unsupported result backend URL ${JSON.stringify(redact(url))}: use redis://, rediss:// or memory://`,
      );
  }
}
