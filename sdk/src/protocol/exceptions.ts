/**
 * Exceptions in Celery's JSON result format: `{exc_type, exc_message, exc_module}`.
 * Python readers import `exc_module`, look up `exc_type` and call it with `*exc_message`.
 */
import { CeleryError, celeryErrorClasses, RemoteTaskError } from "../errors.js";
import { repr } from "./repr.js";

export interface ExceptionDict {
  exc_type: string;
  exc_message: unknown[];
  exc_module: string;
}

/** An error's identity on the wire; user errors may set `excModule` (a static or instance field). */
export function encodeException(error: unknown): ExceptionDict {
  if (error instanceof CeleryError) {
    return { exc_type: error.name, exc_message: error.excArgs, exc_module: error.excModule };
  }
  if (error instanceof RemoteTaskError) {
    return { exc_type: error.excType, exc_message: error.excMessage, exc_module: error.excModule };
  }
  if (error instanceof Error) {
    const custom =
      (error as { excModule?: unknown }).excModule ??
      (error.constructor as { excModule?: unknown }).excModule;
    return {
      exc_type: error.name || "Error",
      exc_message: [error.message],
      exc_module: typeof custom === "string" ? custom : "builtins",
    };
  }
  return { exc_type: "Error", exc_message: [String(error)], exc_module: "builtins" };
}

export function isExceptionDict(v: unknown): v is ExceptionDict {
  return v !== null && typeof v === "object" && typeof (v as ExceptionDict).exc_type === "string";
}

/** Rebuild an error from Celery's dict: Celery's own classes by name, anything else as RemoteTaskError. */
export function decodeException(dict: unknown, traceback: string | null): Error {
  if (!isExceptionDict(dict)) {
    return new RemoteTaskError(
      { excType: "Error", excModule: "builtins", excMessage: [String(dict)] },
      traceback,
    );
  }
  const args = Array.isArray(dict.exc_message) ? dict.exc_message : [dict.exc_message];
  const known = celeryErrorClasses[dict.exc_type as keyof typeof celeryErrorClasses];
  if (known && /^(celery|billiard)\./.test(dict.exc_module ?? "")) {
    const error = new (known as new (arg: never) => Error)(args[0] as never);
    if (traceback) (error as { remoteTraceback?: string }).remoteTraceback = traceback;
    return error;
  }
  return new RemoteTaskError(
    { excType: dict.exc_type, excModule: dict.exc_module ?? "builtins", excMessage: args },
    traceback,
  );
}

/** The repr Celery puts in `task-failed` events: `ValueError('boom')`. */
export function exceptionRepr(error: unknown): string {
  const dict = encodeException(error);
  return `${dict.exc_type}(${dict.exc_message.map(repr).join(", ")})`;
}

/** A traceback string for an error (its stack), as stored in results and events. */
export function tracebackOf(error: unknown): string | null {
  if (error instanceof RemoteTaskError) return error.remoteTraceback;
  if (error instanceof Error) return error.stack ?? `${error.name}: ${error.message}`;
  return null;
}
