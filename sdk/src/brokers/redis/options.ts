/**
 * Redis broker options (kombu's transport options), with defaults, validated once. They can also
 * be given in the URL's query, as kombu's names: `redis://host/0?visibility_timeout=600`.
 */
import type { Logger } from "pino";
import { pino } from "pino";
import { z } from "zod";
import { CeleriacError } from "../../errors.js";

export interface RedisBrokerOptions {
  /** Seconds before an unacked message is given to another consumer (kombu's). Default: 3600. */
  visibilityTimeout: number;
  /** Seconds between scans that restore messages past the visibility timeout. Default: 100 (kombu's effective rate). */
  restoreInterval: number;
  /** Most messages restored per scan. Default: 1000. */
  restoreLimit: number;
  /** Seconds a blocking fetch waits before trying again (kombu's BRPOP timeout). Default: 1. */
  pollTimeout: number;
  /** Prefix of every key and channel (kombu's `global_keyprefix`). Default: "". */
  globalKeyprefix: string;
  /** Most messages taken from Redis in one round trip when a queue has many. Default: 100. */
  fetchBatch: number;
  /** Prefix of the client name of every connection (`CLIENT LIST` shows it). Default: "celeriac". */
  connectionName: string;
  /** Where broker problems are logged. Default: silent. */
  logger: Logger;
}

const schema = z.object({
  visibilityTimeout: z.number().positive(),
  restoreInterval: z.number().positive(),
  restoreLimit: z.number().int().positive(),
  pollTimeout: z.number().positive(),
  globalKeyprefix: z.string(),
  fetchBatch: z.number().int().positive().max(10_000),
  connectionName: z.string().regex(/^\S+$/, "no spaces (Redis client names)"),
});

const FROM_QUERY: Record<string, keyof RedisBrokerOptions> = {
  visibility_timeout: "visibilityTimeout",
  restore_interval: "restoreInterval",
  unacked_restore_limit: "restoreLimit",
  polling_interval: "pollTimeout",
  global_keyprefix: "globalKeyprefix",
  fetch_batch: "fetchBatch",
};

export function resolveRedisBrokerOptions(
  url: URL,
  options: Partial<RedisBrokerOptions>,
): RedisBrokerOptions {
  const fromQuery: Partial<Record<keyof RedisBrokerOptions, unknown>> = {};
  for (const [key, value] of url.searchParams) {
    const name = FROM_QUERY[key];
    if (!name) continue;
    fromQuery[name] = name === "globalKeyprefix" ? value : Number(value);
  }
  const resolved: RedisBrokerOptions = {
    visibilityTimeout: 3600,
    restoreInterval: 100,
    restoreLimit: 1000,
    pollTimeout: 1,
    globalKeyprefix: "",
    fetchBatch: 100,
    connectionName: "celeriac",
    logger: pino({ level: "silent" }),
    ...(fromQuery as Partial<RedisBrokerOptions>),
    ...options,
  };
  const { logger: _l, ...checked } = resolved;
  const parsed = schema.safeParse(checked);
  if (!parsed.success)
    throw new CeleriacError("INVALID_OPTION", `redis broker: ${z.prettifyError(parsed.error)}`);
  return resolved;
}
