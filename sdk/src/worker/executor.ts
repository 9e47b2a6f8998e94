/**
 * The executor: runs one task and says how it ended, as a small closed set of outcomes. It
 * settles nothing and stores nothing; the completer does that from the outcome.
 */
import type { Logger } from "pino";
import type { App, RegisteredTask } from "../app.js";
import {
  CeleriacError,
  Ignore,
  Reject,
  Retry,
  SoftTimeLimitExceeded,
  TaskRevokedError,
  TimeLimitExceeded,
} from "../errors.js";
import { TaskState } from "../protocol/states.js";
import type { Kwargs } from "../task.js";
import type { Cancellation } from "./cancellation.js";
import {
  type RetryOptions,
  runInTaskContext,
  type TaskContext,
  type TaskMiddleware,
} from "./context.js";
import type { Request } from "./request.js";
import { autoretryCountdown, planRetry, shouldAutoretry } from "./retry.js";

export type Outcome =
  | { kind: "success"; result: unknown; runtime: number }
  | { kind: "failure"; error: unknown; runtime: number }
  | { kind: "retry"; retry: Retry; runtime: number }
  | { kind: "reject"; reject: Reject; runtime: number }
  | { kind: "ignore"; runtime: number }
  | { kind: "revoked"; error: TaskRevokedError; runtime: number };

/**
 * Runs a task's hooks for the outcome of its run, once (later calls return the same promise).
 * The completer calls it once the outcome is stored, as Celery's tracer calls `on_success`,
 * `on_failure`, `on_retry` and `after_return` after storing the state; `skip` frees whatever
 * waits for the hooks without running them.
 */
export type RunHooks = (skip?: boolean) => Promise<void>;

/** How a run ended, and its hooks, still to run. */
export interface Ran {
  outcome: Outcome;
  hooks: RunHooks;
}

export const noHooks: RunHooks = async () => {};

/** Whether a task has hooks for an outcome: success, failure and retry have some, others none (as Celery). */
export function hasHooks(task: RegisteredTask, outcome: Outcome): boolean {
  const o = task.options;
  switch (outcome.kind) {
    case "success":
      return Boolean(o.onSuccess || o.afterReturn);
    case "failure":
      return Boolean(o.onFailure || o.afterReturn);
    case "retry":
      return Boolean(o.onRetry || o.afterReturn);
    default:
      return false;
  }
}

/** Run once: a skip or a second call does not run the hooks again; `skipped` runs on a skip. */
function once(run: () => Promise<void>, skipped: () => void): RunHooks {
  let ran: Promise<void> | undefined;
  return (skip = false) => {
    if (!ran && skip) skipped();
    ran ??= skip ? Promise.resolve() : run();
    return ran;
  };
}

export interface ExecutorEnv {
  app: App;
  hostname: string;
  logger: Logger;
  /** Worker-wide limits, used when neither the message nor the task sets one. */
  timeLimit: number | undefined;
  softTimeLimit: number | undefined;
}

/** Effective [hard, soft] limits in seconds: the message's header, else the task's, else the worker's. */
export function timeLimits(
  request: Request,
  task: RegisteredTask,
  env: ExecutorEnv,
): [number | undefined, number | undefined] {
  const [hard, soft] = request.headers.timelimit;
  return [
    hard ?? task.options.timeLimit ?? env.timeLimit,
    soft ?? task.options.softTimeLimit ?? env.softTimeLimit,
  ];
}

function buildContext(
  request: Request,
  task: RegisteredTask,
  env: ExecutorEnv,
  cancellation: Cancellation,
): TaskContext {
  const h = request.headers;
  let logger: Logger | undefined;
  return {
    id: request.id,
    name: request.displayName,
    retries: h.retries,
    rootId: h.root_id,
    parentId: h.parent_id,
    groupId: h.group,
    args: request.args,
    kwargs: request.kwargs as Kwargs,
    headers: h,
    eta: request.eta,
    expires: request.expires,
    hostname: env.hostname,
    deliveryInfo: request.deliveryInfo,
    get signal() {
      return cancellation.signal;
    },
    locals: {},
    // Built on first use: most tasks never log, and a child logger per task is not free.
    get logger() {
      logger ??= env.logger.child({
        taskId: request.id,
        task: request.displayName,
        retries: h.retries,
      });
      return logger;
    },
    retry: (options?: RetryOptions): never => {
      throw planRetry(request, task.options, options);
    },
  };
}

function validateArguments(request: Request, task: RegisteredTask): void {
  const { args: argsSchema, kwargs: kwargsSchema } = task.definition.schemas;
  const bad = argsSchema?.safeParse(request.args);
  if (bad && !bad.success)
    throw new CeleriacError("INVALID_ARGUMENTS", `${request.name} args: ${bad.error.message}`);
  const badKw = kwargsSchema?.safeParse(request.kwargs);
  if (badKw && !badKw.success)
    throw new CeleriacError("INVALID_ARGUMENTS", `${request.name} kwargs: ${badKw.error.message}`);
}

/** Turn what a handler threw into an outcome, applying `autoretryFor`. */
function classify(
  error: unknown,
  request: Request,
  task: RegisteredTask,
  runtime: number,
): Outcome {
  if (error instanceof Retry) return { kind: "retry", retry: error, runtime };
  if (error instanceof Reject) return { kind: "reject", reject: error, runtime };
  if (error instanceof Ignore) return { kind: "ignore", runtime };
  if (error instanceof TaskRevokedError) return { kind: "revoked", error, runtime };
  if (shouldAutoretry(task.options, error)) {
    try {
      return {
        kind: "retry",
        retry: planRetry(request, task.options, {
          error,
          countdown: autoretryCountdown(task.options, request.retries),
        }),
        runtime,
      };
    } catch (final) {
      return { kind: "failure", error: final, runtime };
    }
  }
  return { kind: "failure", error, runtime };
}

/** Compose middleware around the handler call, first registered outermost. */
function withMiddleware(
  middleware: readonly TaskMiddleware[],
  ctx: TaskContext,
  call: () => Promise<unknown>,
): Promise<unknown> {
  const dispatch = (i: number): Promise<unknown> =>
    i === middleware.length ? call() : middleware[i]!(ctx, () => dispatch(i + 1));
  return dispatch(0);
}

/** The task's hooks for this outcome; a failing hook is logged and changes nothing. */
async function runHooks(
  task: RegisteredTask,
  ctx: TaskContext,
  outcome: Outcome,
  logger: Logger,
): Promise<void> {
  const o = task.options;
  const safely = async (name: string, fn: () => void | Promise<void>) => {
    try {
      await fn();
    } catch (error) {
      logger.error({ err: error, taskId: ctx.id, hook: name }, "task hook failed");
    }
  };
  let state: string | undefined;
  let value: unknown;
  if (outcome.kind === "success") {
    [state, value] = [TaskState.SUCCESS, outcome.result];
    if (o.onSuccess) await safely("onSuccess", () => o.onSuccess!(ctx, outcome.result));
  } else if (outcome.kind === "failure") {
    [state, value] = [TaskState.FAILURE, outcome.error];
    if (o.onFailure) await safely("onFailure", () => o.onFailure!(ctx, outcome.error));
  } else if (outcome.kind === "retry") {
    [state, value] = [TaskState.RETRY, outcome.retry.reason ?? outcome.retry];
    if (o.onRetry) await safely("onRetry", () => o.onRetry!(ctx, value));
  }
  if (state && o.afterReturn) await safely("afterReturn", () => o.afterReturn!(ctx, state, value));
}

/**
 * Run a task's handler; its hooks are returned to run once the outcome is stored. `cancellation`
 * belongs to the caller: aborting it with a TaskRevokedError (revoke with terminate) or a
 * TimeLimitExceeded ends the run at once, even if the handler ignores its signal, and no hooks
 * run (as when Celery's pool ends the process). In this async pool a handler that never yields
 * cannot be stopped; the threads and processes pools can.
 */
export function execute(
  request: Request,
  task: RegisteredTask,
  env: ExecutorEnv,
  cancellation: Cancellation,
): Promise<Ran> {
  const started = performance.now();
  const elapsed = () => (performance.now() - started) / 1000;
  const [hard, soft] = timeLimits(request, task, env);
  const ctx = buildContext(request, task, env, cancellation);
  return new Promise<Ran>((resolve) => {
    let done = false;
    let timers: NodeJS.Timeout[] | undefined;
    const clearTimers = () => {
      if (timers) for (const t of timers) clearTimeout(t);
      timers = undefined;
    };
    /** Stopped for good (hard limit, terminate): hooks not yet run are not waited for. */
    let stopped = false;
    let stopHooks: (() => void) | undefined;
    const finish = (outcome: Outcome, hooks: RunHooks = noHooks) => {
      if (done) return;
      done = true;
      // The hooks run within the run's time limits, as in Celery where they are part of the trace.
      if (hooks === noHooks) clearTimers();
      resolve({ outcome, hooks });
    };
    cancellation.onAbort((reason) => {
      if (reason instanceof TaskRevokedError || reason instanceof TimeLimitExceeded) {
        stopped = true;
        stopHooks?.();
      }
      if (reason instanceof TaskRevokedError)
        finish({ kind: "revoked", error: reason, runtime: elapsed() });
      else if (reason instanceof TimeLimitExceeded)
        finish({ kind: "failure", error: reason, runtime: elapsed() });
      // A soft limit only signals; the task decides how to end.
    });
    if (soft !== undefined || hard !== undefined) {
      timers = [];
      if (soft !== undefined)
        timers.push(
          setTimeout(() => cancellation.abort(new SoftTimeLimitExceeded(soft)), soft * 1000),
        );
      if (hard !== undefined)
        timers.push(setTimeout(() => cancellation.abort(new TimeLimitExceeded(hard)), hard * 1000));
    }
    runHandler(request, task, env, ctx, elapsed).then((outcome) => {
      if (!hasHooks(task, outcome)) return finish(outcome);
      const run = () =>
        new Promise<void>((resolve) => {
          if (stopped) return resolve();
          // Past a hard limit or a terminate the wait ends (hooks that never yield cannot be stopped here).
          stopHooks = resolve;
          runHooks(task, ctx, outcome, env.logger).then(resolve);
        }).finally(clearTimers);
      finish(outcome, once(run, clearTimers));
    });
  });
}

async function runHandler(
  request: Request,
  task: RegisteredTask,
  env: ExecutorEnv,
  ctx: TaskContext,
  elapsed: () => number,
): Promise<Outcome> {
  let outcome: Outcome;
  try {
    validateArguments(request, task);
    const call = () => Promise.resolve(task.handler(ctx, ...request.args));
    const result = await runInTaskContext(ctx, () =>
      env.app.middleware.length ? withMiddleware(env.app.middleware, ctx, call) : call(),
    );
    outcome = { kind: "success", result, runtime: elapsed() };
  } catch (error) {
    outcome = classify(error, request, task, elapsed());
  }
  return outcome;
}
