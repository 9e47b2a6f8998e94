/**
 * App and task options: every default in one place. Task options are validated where the task is
 * defined, app options where the app is built (`createApp`, `app.configure`); a worker's own
 * options where the worker is created (worker/options.ts).
 */
import type { DestinationStream, LoggerOptions, StreamEntry } from "pino";
import { z } from "zod";
import type { ResultBackend } from "./backends/backend.js";
import type { QueueDeclaration } from "./brokers/broker.js";
import type { TaskContext } from "./worker/context.js";

/**
 * Hooks run in the worker where the handler ran, once the run's state is stored and what follows
 * it (links, chain, errbacks, chord count) is sent, before a late ack: Celery's tracer calls them
 * after storing the state. None run for a run stopped by a hard time limit or a terminate. A
 * hook that throws is logged, not fatal.
 */
export interface TaskHooks {
  /** After the handler returned. */
  onSuccess?: (ctx: TaskContext, result: unknown) => void | Promise<void>;
  /** After the handler failed for good (no retry left). */
  onFailure?: (ctx: TaskContext, error: unknown) => void | Promise<void>;
  /** After the handler asked for a retry. */
  onRetry?: (ctx: TaskContext, error: unknown) => void | Promise<void>;
  /** After any of the above, with the state the task ends in this run. */
  afterReturn?: (ctx: TaskContext, state: string, resultOrError: unknown) => void | Promise<void>;
}

import type { Broker } from "./brokers/broker.js";
import { CeleriacError } from "./errors.js";
import { validateLocksOption } from "./locks/locks.js";
import { type UniqueOptions, uniqueOptionsSchema } from "./locks/options.js";
import type { LockStore } from "./locks/store.js";
import { DEFAULT_REDACT, validateLogDestinations } from "./logs/logger.js";

/** Options of a task, set on its definition and overridable per call where it makes sense. */
export interface TaskOptions extends TaskHooks {
  /** Queue the task is sent to. Default: the app's `defaultQueue` ("celery"). */
  queue?: string;
  /** Message priority 0-9. Default: none (the broker's default, 0). */
  priority?: number;
  /** Hard time limit in seconds: the run is stopped. Default: none. */
  timeLimit?: number;
  /** Soft time limit in seconds: the task's AbortSignal is aborted. Default: none. */
  softTimeLimit?: number;
  /** Store no result. Default: false (results stored when the app has a backend). */
  ignoreResult?: boolean;
  /**
   * With `ignoreResult`: still store FAILURE, RETRY and REVOKED (Celery's
   * `store_errors_even_if_ignored`). Errbacks and chord counting happen either way. Default: false.
   */
  storeErrorsEvenIfIgnored?: boolean;
  /** Ack the message after the task ends instead of when it starts. Default: false. */
  acksLate?: boolean;
  /** With `acksLate`: requeue the message when the process running it dies. Default: false. */
  rejectOnWorkerLost?: boolean;
  /** Retries allowed before the task fails; null = unlimited. Default: 3. */
  maxRetries?: number | null;
  /** Seconds before a retry when none is given. Default: 180. */
  defaultRetryDelay?: number;
  /** Errors that retry the task by themselves: error classes, or a predicate. Default: none. */
  autoretryFor?: Array<abstract new (...args: never[]) => Error> | ((error: unknown) => boolean);
  /** Exponential backoff for automatic retries: true (factor 1) or the factor in seconds. Default: false. */
  retryBackoff?: boolean | number;
  /** Upper bound of the backoff, in seconds. Default: 600. */
  retryBackoffMax?: number;
  /** Randomize the backoff in [0, countdown]. Default: true. */
  retryJitter?: boolean;
  /** Rate limit per worker, as `"10/s"`, `"100/m"`, `"1000/h"` (Celery's). Default: none. */
  rateLimit?: string | null;
  /** Rate limit shared by every worker of the fleet, through Redis (see `rateLimitRedis`). Default: none. */
  globalRateLimit?: string | null;
  /** Store a STARTED state when the task begins. Default: false. */
  trackStarted?: boolean;
  /** Seconds (or a time) after which an unstarted message is discarded. Default: none. */
  expires?: number | Date;
  /**
   * At most one run at a time per lock key (`true` for the defaults): see {@link UniqueOptions}.
   * The lock lives in the app's lock store (see the app's `locks` option). Default: none.
   */
  unique?: UniqueOptions | boolean;
}

export const TASK_DEFAULTS = {
  maxRetries: 3,
  defaultRetryDelay: 180,
  retryBackoff: false,
  retryBackoffMax: 600,
  retryJitter: true,
  acksLate: false,
  rejectOnWorkerLost: false,
  ignoreResult: false,
  storeErrorsEvenIfIgnored: false,
  trackStarted: false,
} as const satisfies TaskOptions;

const RATE = /^\s*\d+(\.\d+)?\s*(\/\s*[smh])?\s*$/;

const taskOptionsSchema = z
  .object({
    queue: z.string().min(1).optional(),
    priority: z.number().int().min(0).max(255).optional(),
    timeLimit: z.number().positive().optional(),
    softTimeLimit: z.number().positive().optional(),
    ignoreResult: z.boolean().optional(),
    storeErrorsEvenIfIgnored: z.boolean().optional(),
    acksLate: z.boolean().optional(),
    rejectOnWorkerLost: z.boolean().optional(),
    maxRetries: z.number().int().min(0).nullable().optional(),
    defaultRetryDelay: z.number().min(0).optional(),
    retryBackoff: z.union([z.boolean(), z.number().positive()]).optional(),
    retryBackoffMax: z.number().positive().optional(),
    retryJitter: z.boolean().optional(),
    rateLimit: z
      .string()
      .regex(RATE, 'a rate such as "10/s", "100/m" or "1000/h"')
      .nullable()
      .optional(),
    globalRateLimit: z
      .string()
      .regex(RATE, 'a rate such as "10/s", "100/m" or "1000/h"')
      .nullable()
      .optional(),
    trackStarted: z.boolean().optional(),
    expires: z.union([z.number().positive(), z.date()]).optional(),
    unique: uniqueOptionsSchema.optional(),
    onSuccess: z.function().optional(),
    onFailure: z.function().optional(),
    onRetry: z.function().optional(),
    afterReturn: z.function().optional(),
  })
  .passthrough();

/** Validate task options once, where the task is defined. */
export function validateTaskOptions<T extends TaskOptions>(name: string, options: T): T {
  // Nothing to check (a task sent by name): skip the schema, which every such send would pay.
  if (Object.keys(options).length === 0) return options;
  const parsed = taskOptionsSchema.safeParse(options);
  if (!parsed.success) {
    throw new CeleriacError("INVALID_OPTION", `task ${name}: ${z.prettifyError(parsed.error)}`);
  }
  return options;
}

export interface AppOptions {
  /** Broker URL (`redis://`, `amqp://`, `memory://`) or instance. Default: env BROKER_URL, else "memory://". */
  broker?: string | Broker;
  /** Result backend URL (`redis://`, `memory://`) or instance. Default: env RESULT_BACKEND, else none. */
  resultBackend?: string | ResultBackend | null;
  /** Queue for tasks that name none. Default: "celery". */
  defaultQueue?: string;
  /** `x-max-priority` of the queues this app declares (must match every other declarer). Default: none. */
  queueMaxPriority?: number;
  /**
   * Per-queue declaration settings, e.g. `{ orders: { deadLetterExchange: "orders.dlx" } }` so
   * rejected messages are dead-lettered (AMQP). Default: none.
   */
  queues?: Record<string, Omit<QueueDeclaration, "name">>;
  /** Store name, args, kwargs, worker and queue with results (Celery's `result_extended`). Default: false. */
  resultExtended?: boolean;
  /** Publish `task-sent` events when sending (Celery's `task_send_sent_event`). Default: false. */
  taskSendSentEvent?: boolean;
  /** Defaults applied to every task of the app. Default: none. */
  taskDefaults?: TaskOptions;
  /** Redis holding the buckets of `globalRateLimit`. Default: the broker's URL if Redis, else the result backend's. */
  rateLimitRedis?: string;
  /**
   * Where the locks of unique tasks live (`redis://…`, `memory://`, or a LockStore). Default: the
   * broker when it is Redis, else the result backend when it is Redis, else this process when the
   * broker is in memory; otherwise none, and unique tasks are refused with NO_LOCK_STORE.
   */
  locks?: string | LockStore;
  /**
   * More pino destinations every worker of this app writes its log records to, besides its
   * standard output: a file (`pino.destination("/var/log/tasks.log")`), a transport
   * (`pino.transport({ target: "pino-syslog" })`), any writable stream; or `{ stream, level }`
   * entries. A destination without a level gets the worker's `logLevel`. Default: none.
   */
  logDestinations?: Array<DestinationStream | StreamEntry>;
  /**
   * pino's `redact` option for workers' logs (every destination, and shipped logs): paths of
   * values replaced by "[Redacted]". Default: common secret fields (`password`, `token`,
   * `secret`, `apiKey`, `authorization`, `cookie`, at the top level and one level down).
   */
  logRedact?: LoggerOptions["redact"];
}

export interface ResolvedAppOptions {
  broker: string | Broker;
  resultBackend: string | ResultBackend | null;
  defaultQueue: string;
  queueMaxPriority: number | undefined;
  queues: Record<string, Omit<QueueDeclaration, "name">>;
  resultExtended: boolean;
  taskSendSentEvent: boolean;
  taskDefaults: TaskOptions;
  rateLimitRedis: string | undefined;
  locks: string | LockStore | undefined;
  logDestinations: Array<DestinationStream | StreamEntry>;
  logRedact: NonNullable<LoggerOptions["redact"]>;
}

/** How this app declares a queue: its max priority and any per-queue settings. */
export function queueDeclaration(options: ResolvedAppOptions, name: string): QueueDeclaration {
  const max = options.queueMaxPriority;
  return { name, ...(max !== undefined ? { maxPriority: max } : {}), ...options.queues[name] };
}

const APP_OPTION_KEYS = [
  "broker",
  "resultBackend",
  "defaultQueue",
  "queueMaxPriority",
  "queues",
  "resultExtended",
  "taskSendSentEvent",
  "taskDefaults",
  "rateLimitRedis",
  "locks",
  "logDestinations",
  "logRedact",
] as const satisfies ReadonlyArray<keyof AppOptions>;

/** A misspelt option silently ignored is a bug found in production: refuse it here instead. */
export function rejectUnknownOptions(
  what: string,
  options: object,
  known: readonly string[],
): void {
  const unknown = Object.keys(options).filter((k) => !known.includes(k));
  if (unknown.length > 0)
    throw new CeleriacError(
      "INVALID_OPTION",
      `unknown ${what} option${unknown.length > 1 ? "s" : ""}: ${unknown.join(", ")} (known: ${known.join(", ")})`,
    );
}

export function resolveAppOptions(
  options: AppOptions,
  env: NodeJS.ProcessEnv = process.env,
): ResolvedAppOptions {
  rejectUnknownOptions("app", options, APP_OPTION_KEYS);
  const resolved: ResolvedAppOptions = {
    broker: options.broker ?? (env.BROKER_URL || "memory://"),
    resultBackend:
      options.resultBackend === undefined ? env.RESULT_BACKEND || null : options.resultBackend,
    defaultQueue: options.defaultQueue ?? "celery",
    queueMaxPriority: options.queueMaxPriority,
    queues: options.queues ?? {},
    resultExtended: options.resultExtended ?? false,
    taskSendSentEvent: options.taskSendSentEvent ?? false,
    taskDefaults: validateTaskOptions("(defaults)", options.taskDefaults ?? {}),
    rateLimitRedis: options.rateLimitRedis,
    locks: options.locks,
    logDestinations: options.logDestinations ?? [],
    logRedact: options.logRedact ?? DEFAULT_REDACT,
  };
  validateLocksOption(resolved.locks);
  validateLogDestinations(resolved.logDestinations);
  if (resolved.defaultQueue === "")
    throw new CeleriacError("INVALID_OPTION", "defaultQueue must not be empty");
  if (
    resolved.queueMaxPriority !== undefined &&
    !(
      Number.isInteger(resolved.queueMaxPriority) &&
      resolved.queueMaxPriority > 0 &&
      resolved.queueMaxPriority <= 255
    )
  ) {
    throw new CeleriacError("INVALID_OPTION", "queueMaxPriority must be an integer from 1 to 255");
  }
  return resolved;
}
