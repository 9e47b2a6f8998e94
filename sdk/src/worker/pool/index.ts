/** Build the pool a worker asked for; isolated pools are loaded only when used. */
import type { ExecutorEnv } from "../executor.js";
import type { ResolvedWorkerOptions } from "../options.js";
import { AsyncPool, type Pool } from "./pool.js";

export async function createPool(options: ResolvedWorkerOptions, env: ExecutorEnv): Promise<Pool> {
  if (options.pool === "async") return new AsyncPool(options.concurrency, env);
  const { IsolatedPool, trackPool } = await import("./isolated/pool.js");
  return trackPool(new IsolatedPool(options.pool, options, env));
}
