/**
 * What a task handler receives besides its arguments: who it is (ids, retries, headers), an
 * AbortSignal that fires on revoke, shutdown or the soft time limit, a logger, and `retry()`.
 */
import { AsyncLocalStorage } from "node:async_hooks";
import type { Logger } from "pino";
import type { Kwargs } from "../task.js";

export interface DeliveryInfo {
  exchange: string;
  routingKey: string;
  queue: string;
  priority: number;
  redelivered: boolean;
}

export interface RetryOptions {
  /** The error behind the retry; re-thrown when no retries are left. */
  error?: unknown;
  /** Seconds before the retry. Default: the task's `defaultRetryDelay` (180). */
  countdown?: number;
  /** When to retry, instead of a countdown. */
  eta?: Date;
  /** Arguments of the retry. Default: the current ones. */
  args?: unknown[];
  kwargs?: Kwargs;
  /** Overrides the task's `maxRetries` for this call (null = unlimited). */
  maxRetries?: number | null;
  queue?: string;
  priority?: number;
}

export interface TaskContext<K extends Kwargs = Kwargs> {
  /** The task id (the same across retries). */
  readonly id: string;
  /** The task's name (or the message's `shadow` name when set). */
  readonly name: string;
  /** How many times this task has been retried. */
  readonly retries: number;
  /** The first task of the workflow this task belongs to. */
  readonly rootId: string;
  /** The task that sent this one, or null. */
  readonly parentId: string | null;
  readonly groupId: string | null;
  readonly args: readonly unknown[];
  readonly kwargs: K;
  /** All message headers, including custom ones given by the sender. */
  readonly headers: Readonly<Record<string, unknown>>;
  readonly eta: Date | null;
  readonly expires: Date | null;
  /** The worker's node name (`name@host`). */
  readonly hostname: string;
  readonly deliveryInfo: Readonly<DeliveryInfo>;
  /** Aborted on revoke with terminate, on a forced shutdown and at the soft time limit. */
  readonly signal: AbortSignal;
  /** A pino logger whose records carry the task id, name, worker and retries. */
  readonly logger: Logger;
  /** Values middleware shares with the handler and with later middleware (e.g. a temp folder). */
  readonly locals: Record<string, unknown>;
  /**
   * Ask for this task to run again later (a new message with the same id and `retries + 1`).
   * Throws: a `Retry` that the worker turns into the retry, or the original error (or a
   * MaxRetriesExceededError) when no retries are left, as Celery does. Use as `throw ctx.retry()`
   * or `ctx.retry()`.
   */
  retry(options?: RetryOptions): never;
}

/**
 * App-level middleware: wraps every task's run. Call `next()` to run the rest (and finally the
 * handler); its value is the task's result and what it throws is the task's error, so middleware
 * sees the outcome and may change it.
 */
export type TaskMiddleware = (ctx: TaskContext, next: () => Promise<unknown>) => Promise<unknown>;

const current = new AsyncLocalStorage<TaskContext>();

/** The task running in the current async context, so tasks sent from it get its ids as parent/root. */
export function currentTask(): TaskContext | undefined {
  return current.getStore();
}

export function runInTaskContext<T>(ctx: TaskContext, fn: () => T): T {
  return current.run(ctx, fn);
}
