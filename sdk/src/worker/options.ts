/**
 * Worker options: every default in one place, validated once when the worker is built.
 */
import os from "node:os";
import type { Logger } from "pino";
import { z } from "zod";
import { CeleriacError } from "../errors.js";
import { LOG_LEVELS, type LogLevel } from "../logs/event.js";
import { rejectUnknownOptions } from "../options.js";

export type PoolKind = "async" | "threads" | "processes";

export interface WorkerOptions {
  /** Tasks run at once. Default: the number of CPUs, as Celery. */
  concurrency?: number;
  /** Messages fetched ahead per concurrency slot (prefetch = concurrency × this). Default: 4. */
  prefetchMultiplier?: number;
  /** Queues to consume. Default: the app's default queue ("celery"). */
  queues?: string[];
  /** Node name `name@host`. Default: `celeriac@<hostname>`. */
  hostname?: string;
  /**
   * Where tasks run: "async" in this process's event loop; "threads" in worker threads and
   * "processes" in child processes, which can stop a task that never yields (hard time limit)
   * and recycle leaky code. Default: "async".
   */
  pool?: PoolKind;
  /** The module that defines the app, loaded by each thread or child process. Required for "threads" and "processes". */
  appModule?: string;
  /** Replace a thread or child after it ran this many tasks (Celery's `--max-tasks-per-child`). Default: none. */
  maxTasksPerChild?: number;
  /** Replace a thread or child whose resident memory passed this many KiB after a task (`--max-memory-per-child`). Default: none. */
  maxMemoryPerChild?: number;
  /** Seconds a warm shutdown waits for running tasks before aborting them. Default: 60. */
  shutdownTimeout?: number;
  /** Hard time limit for every task without its own, seconds. Default: none. */
  timeLimit?: number;
  /** Soft time limit for every task without its own, seconds. Default: none. */
  softTimeLimit?: number;
  /** Log level: trace, debug, info, warn, error, fatal, silent. Default: "info". */
  logLevel?: string;
  /**
   * A pino logger to write to instead of the worker's own: it replaces standard output and the
   * app's `logDestinations`, and cannot be combined with `shipLogs`.
   */
  logger?: Logger;
  /**
   * Publish log records (the tasks' `ctx.logger` and the worker's own) on the broker's event
   * exchange as `celeriac-log` events, at this level and above (`true`: "info"). Default: false.
   */
  shipLogs?: boolean | LogLevel;
  /** Publish task events (`-E`); worker events are sent regardless. Default: false. */
  taskEvents?: boolean;
  /** Seconds between `worker-heartbeat` events. Default: 2 (Celery's). */
  heartbeatInterval?: number;
  /** Send no worker events at all (online, heartbeat, offline). Default: false. */
  withoutHeartbeat?: boolean;
  /** Answer remote control commands. Default: true. */
  control?: boolean;
  /** A file keeping revoked ids across restarts (Celery's `--statedb`). Default: none. */
  stateDb?: string;
}

export interface ResolvedWorkerOptions {
  concurrency: number;
  prefetchMultiplier: number;
  queues: string[] | undefined;
  hostname: string;
  pool: PoolKind;
  appModule: string | undefined;
  maxTasksPerChild: number | undefined;
  maxMemoryPerChild: number | undefined;
  shutdownTimeout: number;
  timeLimit: number | undefined;
  softTimeLimit: number | undefined;
  logLevel: string;
  logger: Logger | undefined;
  shipLogs: LogLevel | null;
  taskEvents: boolean;
  heartbeatInterval: number;
  withoutHeartbeat: boolean;
  control: boolean;
  stateDb: string | undefined;
}

const schema = z.object({
  concurrency: z.number().int().min(1).max(10_000),
  prefetchMultiplier: z.number().int().min(0),
  queues: z.array(z.string().min(1)).min(1).optional(),
  hostname: z.string().regex(/^[^@\s]+@[^@\s]+$/, "a node name such as worker1@host"),
  pool: z.enum(["async", "threads", "processes"]),
  appModule: z.string().min(1).optional(),
  maxTasksPerChild: z.number().int().positive().optional(),
  maxMemoryPerChild: z.number().int().positive().optional(),
  shutdownTimeout: z.number().min(0),
  timeLimit: z.number().positive().optional(),
  softTimeLimit: z.number().positive().optional(),
  logLevel: z.enum(["trace", "debug", "info", "warn", "error", "fatal", "silent"]),
  shipLogs: z.enum(LOG_LEVELS).nullable(),
  taskEvents: z.boolean(),
  heartbeatInterval: z.number().positive(),
  withoutHeartbeat: z.boolean(),
  control: z.boolean(),
  stateDb: z.string().min(1).optional(),
});

/** Expand `%h` (host), `%n` (name part) like Celery's `-n` option. */
function expandHostname(name: string): string {
  const host = os.hostname();
  const expanded = name.replace(/%h/g, host).replace(/%n/g, host.split(".")[0] ?? host);
  return expanded.includes("@") ? expanded : `${expanded}@${host}`;
}

export function resolveWorkerOptions(options: WorkerOptions): ResolvedWorkerOptions {
  const resolved: ResolvedWorkerOptions = {
    concurrency: options.concurrency ?? os.availableParallelism(),
    prefetchMultiplier: options.prefetchMultiplier ?? 4,
    queues: options.queues,
    hostname: expandHostname(options.hostname ?? "celeriac@%h"),
    pool: options.pool ?? "async",
    appModule: options.appModule,
    maxTasksPerChild: options.maxTasksPerChild,
    maxMemoryPerChild: options.maxMemoryPerChild,
    shutdownTimeout: options.shutdownTimeout ?? 60,
    timeLimit: options.timeLimit,
    softTimeLimit: options.softTimeLimit,
    logLevel: options.logLevel ?? "info",
    logger: options.logger,
    shipLogs: options.shipLogs === true ? "info" : options.shipLogs || null,
    taskEvents: options.taskEvents ?? false,
    heartbeatInterval: options.heartbeatInterval ?? 2,
    withoutHeartbeat: options.withoutHeartbeat ?? false,
    control: options.control ?? true,
    stateDb: options.stateDb,
  };
  rejectUnknownOptions("worker", options, Object.keys(resolved));
  const { logger: _logger, ...checked } = resolved;
  const parsed = schema.safeParse(checked);
  if (!parsed.success)
    throw new CeleriacError("INVALID_OPTION", `worker: ${z.prettifyError(parsed.error)}`);
  if (resolved.logger && resolved.shipLogs)
    throw new CeleriacError(
      "INVALID_OPTION",
      "worker: shipLogs needs the worker's own logger; drop `logger` and set logLevel (and the app's logDestinations) instead",
    );
  return resolved;
}
