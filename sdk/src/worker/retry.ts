/**
 * Celery's retry rules: when a retry is allowed, and how long to wait before it.
 */
import { MaxRetriesExceededError, Retry } from "../errors.js";
import { TASK_DEFAULTS, type TaskOptions } from "../options.js";
import { reprArgs } from "../protocol/repr.js";
import type { RetryOptions } from "./context.js";
import type { Request } from "./request.js";

/**
 * Build the Retry for `ctx.retry(options)`, or throw when no retries are left: the given error
 * when there is one, else MaxRetriesExceededError (Celery raises `exc` the same way).
 */
export function planRetry(request: Request, task: TaskOptions, options: RetryOptions = {}): Retry {
  const maxRetries =
    options.maxRetries === undefined
      ? task.maxRetries === undefined
        ? TASK_DEFAULTS.maxRetries
        : task.maxRetries
      : options.maxRetries;
  if (maxRetries !== null && request.retries + 1 > maxRetries) {
    if (options.error !== undefined) throw options.error;
    throw new MaxRetriesExceededError(
      `Can't retry ${request.name}[${request.id}] args:${reprArgs(request.args)} kwargs:${JSON.stringify(request.kwargs)}`,
    );
  }
  const when =
    options.eta ?? options.countdown ?? task.defaultRetryDelay ?? TASK_DEFAULTS.defaultRetryDelay;
  return new Retry(
    {
      when,
      ...(options.args ? { args: options.args } : {}),
      ...(options.kwargs ? { kwargs: options.kwargs } : {}),
      ...(options.queue ? { queue: options.queue } : {}),
      ...(options.priority !== undefined ? { priority: options.priority } : {}),
    },
    options.error,
  );
}

/** Whether an error thrown by a task retries it by itself (`autoretryFor`). */
export function shouldAutoretry(task: TaskOptions, error: unknown): boolean {
  const rule = task.autoretryFor;
  if (!rule) return false;
  if (typeof rule === "function" && !("prototype" in rule && rule.prototype instanceof Error)) {
    return (rule as (e: unknown) => boolean)(error);
  }
  return (rule as Array<abstract new (...args: never[]) => Error>).some(
    (cls) => error instanceof cls,
  );
}

/**
 * Countdown of an automatic retry: with `retryBackoff`, `min(retryBackoffMax, factor × 2^retries)`,
 * then a random whole number of seconds in [0, countdown] with `retryJitter`; else the task's
 * default retry delay. As Celery's `get_exponential_backoff_interval`, whose factor and maximum
 * are whole numbers; ours may not be, and the jitter still never exceeds the countdown.
 */
export function autoretryCountdown(
  task: TaskOptions,
  retries: number,
  random = Math.random,
): number {
  const backoff = task.retryBackoff ?? TASK_DEFAULTS.retryBackoff;
  if (!backoff) return task.defaultRetryDelay ?? TASK_DEFAULTS.defaultRetryDelay;
  const factor = backoff === true ? 1 : backoff;
  const max = task.retryBackoffMax ?? TASK_DEFAULTS.retryBackoffMax;
  let countdown = Math.min(max, factor * 2 ** retries);
  if (task.retryJitter ?? TASK_DEFAULTS.retryJitter)
    countdown = Math.floor(random() * (Math.floor(countdown) + 1));
  return Math.max(0, countdown);
}
