/**
 * Messages between the worker and its pool children, and how outcomes cross that boundary:
 * errors travel as plain data and are rebuilt with their class (Celery's own errors) or as
 * RemoteTaskError (users' errors), so the completer treats them as with the async pool.
 */
import {
  CeleryError,
  celeryErrorClasses,
  Reject,
  RemoteTaskError,
  Retry,
  TaskRevokedError,
} from "../../../errors.js";
import type { TaskMessage } from "../../../protocol/message.js";
import type { DeliveryInfo } from "../../context.js";
import type { Outcome } from "../../executor.js";

export interface RunMessage {
  type: "run";
  message: Omit<TaskMessage, "properties"> & { properties: TaskMessage["properties"] };
  delivery: Omit<DeliveryInfo, "priority">;
  softTimeLimit: number | undefined;
}

/** Run (or with `skip`, do not run) the hooks of the task just run, its outcome now stored. */
export interface HooksMessage {
  type: "hooks";
  skip: boolean;
}

export type ParentMessage = RunMessage | HooksMessage;

export interface SerializedError {
  name: string;
  message: string;
  stack: string | null;
  excModule: string | null;
  /** Celery's class name when the error is one of Celery's. */
  celery: string | null;
  args: unknown[] | null;
}

export type SerializedOutcome =
  | { kind: "success"; result: unknown; runtime: number }
  | { kind: "failure"; error: SerializedError; runtime: number }
  | {
      kind: "retry";
      when: number | string;
      args?: unknown[];
      kwargs?: Record<string, unknown>;
      queue?: string;
      priority?: number;
      reason: SerializedError | null;
      runtime: number;
    }
  | { kind: "reject"; requeue: boolean; reason: string; runtime: number }
  | { kind: "ignore"; runtime: number }
  | { kind: "revoked"; reason: string; runtime: number };

export type ChildMessage =
  | { type: "ready" }
  /** With `hooks`, the child waits for a HooksMessage and then answers `hooks-done`. */
  | { type: "outcome"; outcome: SerializedOutcome; memoryKiB: number; hooks?: boolean }
  | { type: "hooks-done"; memoryKiB: number }
  /** One log record written in the child, serialized, for the worker's logger. */
  | { type: "log"; line: string }
  | { type: "failed-to-start"; error: string };

export function serializeError(error: unknown): SerializedError {
  if (!(error instanceof Error))
    return {
      name: "Error",
      message: String(error),
      stack: null,
      excModule: null,
      celery: null,
      args: null,
    };
  const module =
    (error as { excModule?: unknown }).excModule ??
    (error.constructor as { excModule?: unknown }).excModule;
  return {
    name: error.name,
    message: error.message,
    stack: error instanceof RemoteTaskError ? error.remoteTraceback : (error.stack ?? null),
    excModule:
      typeof module === "string"
        ? module
        : error instanceof RemoteTaskError
          ? error.excModule
          : null,
    celery: error instanceof CeleryError && error.name in celeryErrorClasses ? error.name : null,
    args: error instanceof CeleryError ? error.excArgs : null,
  };
}

export function deserializeError(e: SerializedError): Error {
  const cls = e.celery
    ? celeryErrorClasses[e.celery as keyof typeof celeryErrorClasses]
    : undefined;
  if (cls && cls !== Retry && cls !== Reject) {
    const error = new (cls as new (arg: never) => Error)((e.args?.[0] ?? e.message) as never);
    if (e.stack) error.stack = e.stack;
    return error;
  }
  return new RemoteTaskError(
    { excType: e.name, excModule: e.excModule ?? "builtins", excMessage: [e.message] },
    e.stack,
  );
}

export function serializeOutcome(outcome: Outcome): SerializedOutcome {
  switch (outcome.kind) {
    case "success":
    case "ignore":
      return outcome;
    case "failure":
      return { kind: "failure", error: serializeError(outcome.error), runtime: outcome.runtime };
    case "retry": {
      const { plan, reason } = outcome.retry;
      return {
        kind: "retry",
        when: plan.when instanceof Date ? plan.when.toISOString() : plan.when,
        ...(plan.args ? { args: plan.args } : {}),
        ...(plan.kwargs ? { kwargs: plan.kwargs } : {}),
        ...(plan.queue ? { queue: plan.queue } : {}),
        ...(plan.priority !== undefined ? { priority: plan.priority } : {}),
        reason: reason === undefined ? null : serializeError(reason),
        runtime: outcome.runtime,
      };
    }
    case "reject":
      return {
        kind: "reject",
        requeue: outcome.reject.requeue,
        reason: outcome.reject.message,
        runtime: outcome.runtime,
      };
    case "revoked":
      return { kind: "revoked", reason: outcome.error.message, runtime: outcome.runtime };
  }
}

export function deserializeOutcome(o: SerializedOutcome): Outcome {
  switch (o.kind) {
    case "success":
    case "ignore":
      return o;
    case "failure":
      return { kind: "failure", error: deserializeError(o.error), runtime: o.runtime };
    case "retry": {
      const when = typeof o.when === "string" ? new Date(o.when) : o.when;
      const plan = {
        when,
        ...(o.args ? { args: o.args } : {}),
        ...(o.kwargs ? { kwargs: o.kwargs } : {}),
        ...(o.queue ? { queue: o.queue } : {}),
        ...(o.priority !== undefined ? { priority: o.priority } : {}),
      };
      return {
        kind: "retry",
        retry: new Retry(plan, o.reason ? deserializeError(o.reason) : undefined),
        runtime: o.runtime,
      };
    }
    case "reject":
      return {
        kind: "reject",
        reject: new Reject(o.reason, { requeue: o.requeue }),
        runtime: o.runtime,
      };
    case "revoked":
      return { kind: "revoked", error: new TaskRevokedError(o.reason), runtime: o.runtime };
  }
}
