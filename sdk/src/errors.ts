/**
 * Errors and task outcomes.
 *
 * Every error Celeriac raises is a {@link CeleriacError} with a stable `code`, so callers branch on
 * codes instead of parsing messages. Task handlers may also throw one of the three outcomes, a
 * closed vocabulary shared with Celery:
 *
 * - {@link Retry}: run the task again later (usually thrown by `ctx.retry()`);
 * - {@link Reject}: hand the message back to the broker (requeued, or dead-lettered/dropped);
 * - {@link Ignore}: acknowledge the message and store nothing.
 */

export type ErrorCode =
  | "INVALID_OPTION"
  | "INVALID_URL"
  | "INVALID_MESSAGE"
  | "INVALID_ARGUMENTS"
  | "CONTENT_DISALLOWED"
  | "ENCODE_ERROR"
  | "NOT_REGISTERED"
  | "TIMEOUT"
  | "CONNECTION_CLOSED"
  | "BROKER_ERROR"
  | "BACKEND_ERROR"
  | "NO_BACKEND"
  | "REMOTE_FAILURE"
  | "REVOKED"
  | "TIME_LIMIT_EXCEEDED"
  | "SOFT_TIME_LIMIT_EXCEEDED"
  | "MAX_RETRIES_EXCEEDED"
  | "WORKER_LOST"
  | "CHORD_ERROR"
  | "CHORDS_UNSUPPORTED"
  | "RETRY"
  | "REJECT"
  | "IGNORE"
  | "UNIQUE_CONFLICT"
  | "NO_LOCK_STORE";

export class CeleriacError extends Error {
  readonly code: ErrorCode;

  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.name = new.target.name;
  }
}

/**
 * How an error is named on the wire. Python readers import `excModule` and look up `excType` in
 * it; when that fails they synthesize an exception class of that name, so JavaScript errors
 * re-raise in Python under their own name.
 */
export interface WireErrorIdentity {
  excType: string;
  excModule: string;
}

/** Base of the errors Celery defines, carrying the module Python knows them by. */
export abstract class CeleryError extends CeleriacError {
  abstract readonly excModule: string;
  /** The exception's args as Python sees them (`exc_message`). */
  get excArgs(): unknown[] {
    return [this.message];
  }
}

/** How a retry is sent: when, and with which arguments (the current ones when omitted). */
export interface RetryPlan {
  /** Seconds until the retry runs, or the absolute time it runs at. */
  when: number | Date;
  args?: unknown[];
  kwargs?: Record<string, unknown>;
  queue?: string;
  priority?: number;
  /** Whether this is a retry (`retries + 1`, counted against `maxRetries`). Default: true; a unique task waiting for its lock is not. */
  countsAsRetry?: boolean;
}

/** Raised in a task to ask for another run later. Prefer `ctx.retry()`, which builds it. */
export class Retry extends CeleryError {
  readonly excModule = "celery.exceptions";
  readonly plan: RetryPlan;
  /** The error that caused the retry, stored as the RETRY state's exception. */
  readonly reason: unknown;

  constructor(plan: RetryPlan | number = 180, reason?: unknown) {
    const p = typeof plan === "number" ? { when: plan } : plan;
    const when = p.when instanceof Date ? p.when.toISOString() : `${p.when}s`;
    super(
      "RETRY",
      reason === undefined
        ? `Retry in ${when}`
        : `Retry in ${when}: ${reason instanceof Error ? reason.message : String(reason)}`,
    );
    this.plan = p;
    this.reason = reason;
  }
}

/** Raised in a task to reject its message: requeued when `requeue`, else dead-lettered or dropped. */
export class Reject extends CeleryError {
  readonly excModule = "celery.exceptions";
  readonly requeue: boolean;

  constructor(reason = "rejected", options: { requeue?: boolean } = {}) {
    super("REJECT", reason);
    this.requeue = options.requeue ?? false;
  }
}

/** Raised in a task to acknowledge its message and store no state at all. */
export class Ignore extends CeleryError {
  readonly excModule = "celery.exceptions";
  constructor(message = "ignored") {
    super("IGNORE", message);
  }
}

/** The soft time limit passed: the task's AbortSignal is aborted with this error. */
export class SoftTimeLimitExceeded extends CeleryError {
  readonly excModule = "billiard.exceptions";
  constructor(readonly seconds: number) {
    super("SOFT_TIME_LIMIT_EXCEEDED", `SoftTimeLimitExceeded(${seconds})`);
  }
  override get excArgs(): unknown[] {
    return [this.seconds];
  }
}

/** The hard time limit passed: the task was stopped. */
export class TimeLimitExceeded extends CeleryError {
  readonly excModule = "billiard.exceptions";
  constructor(readonly seconds: number) {
    super("TIME_LIMIT_EXCEEDED", `TimeLimitExceeded(${seconds})`);
  }
  override get excArgs(): unknown[] {
    return [this.seconds];
  }
}

/** The task was revoked, terminated, or expired before it ran. */
export class TaskRevokedError extends CeleryError {
  readonly excModule = "celery.exceptions";
  constructor(reason: "revoked" | "terminated" | "expired" | string = "revoked") {
    super("REVOKED", reason);
  }
}

/** `ctx.retry()` was called past the task's `maxRetries` without an error to re-raise. */
export class MaxRetriesExceededError extends CeleryError {
  readonly excModule = "celery.exceptions";
  constructor(message: string) {
    super("MAX_RETRIES_EXCEEDED", message);
  }
}

/** A message named a task this worker does not know. */
export class NotRegistered extends CeleryError {
  readonly excModule = "celery.exceptions";
  constructor(readonly taskName: string) {
    super("NOT_REGISTERED", taskName);
  }
}

/** The process running the task died. */
export class WorkerLostError extends CeleryError {
  readonly excModule = "billiard.exceptions";
  constructor(message: string) {
    super("WORKER_LOST", message);
  }
}

/**
 * A chord's callback could not run: a header task failed or was revoked (`Dependency <id> raised
 * ValueError('boom')`), or sending the callback failed. Stored as the callback's FAILURE.
 */
export class ChordError extends CeleryError {
  readonly excModule = "celery.exceptions";
  constructor(message: string) {
    super("CHORD_ERROR", message);
  }
}

/**
 * A task failed remotely (on a Celeriac or a Python worker). Carries the exception as Celery
 * stored it: its type, module, arguments and traceback.
 */
export class RemoteTaskError extends CeleriacError {
  readonly excType: string;
  readonly excModule: string;
  readonly excMessage: unknown[];
  readonly remoteTraceback: string | null;

  constructor(
    exc: { excType: string; excModule: string; excMessage: unknown[] },
    traceback: string | null,
  ) {
    super("REMOTE_FAILURE", formatExcMessage(exc.excMessage));
    this.name = exc.excType;
    this.excType = exc.excType;
    this.excModule = exc.excModule;
    this.excMessage = exc.excMessage;
    this.remoteTraceback = traceback;
  }
}

function formatExcMessage(args: unknown[]): string {
  if (args.length === 1) return typeof args[0] === "string" ? args[0] : JSON.stringify(args[0]);
  return args.map((a) => (typeof a === "string" ? a : JSON.stringify(a))).join(", ");
}

/** Celery's exception classes by name, so remote failures of those types keep their class. */
export const celeryErrorClasses = {
  Retry,
  Reject,
  Ignore,
  SoftTimeLimitExceeded,
  TimeLimitExceeded,
  TaskRevokedError,
  MaxRetriesExceededError,
  NotRegistered,
  WorkerLostError,
  ChordError,
} as const;
