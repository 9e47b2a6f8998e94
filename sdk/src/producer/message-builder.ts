/**
 * Turn a send (task name, args, options) into a protocol v2 message exactly as Celery 5.2's
 * `as_task_v2` writes it: header set and order, eta/expires as ISO strings, properties.
 */
import { randomUUID } from "node:crypto";
import { CeleriacError } from "../errors.js";
import type { Embed, SignatureDict, TaskHeaders, TaskMessage } from "../protocol/message.js";
import { repr, reprArgs, truncate } from "../protocol/repr.js";
import type { Kwargs } from "../task.js";
import type { InternalSendOptions, SignatureLike } from "./options.js";

export interface MessageDefaults {
  /** Node name of the sender (`gen<pid>@<host>` for producers, the worker's name for workers). */
  origin: string;
  /** Reply address of this client (Celery's oid). */
  replyTo: string;
  /** Task-level defaults. */
  timeLimit?: number;
  softTimeLimit?: number;
  ignoreResult?: boolean;
  priority?: number;
  expires?: number | Date;
}

/** Python's `datetime.isoformat()` of an aware UTC time: `2026-11-24T01:59:46.499011+00:00`. */
export function isoformat(d: Date): string {
  const iso = d.toISOString();
  return d.getUTCMilliseconds() === 0
    ? `${iso.slice(0, 19)}+00:00`
    : `${iso.slice(0, 23)}000+00:00`;
}

function toSignatureDicts(v: SignatureLike | SignatureLike[] | undefined): SignatureDict[] | null {
  if (v === undefined) return null;
  const list = Array.isArray(v) ? v : [v];
  return list.map((s) =>
    "toDict" in s && typeof s.toDict === "function" ? s.toDict() : (s as SignatureDict),
  );
}

function toDate(v: Date | string, field: string): Date {
  const d = v instanceof Date ? v : new Date(v);
  if (Number.isNaN(d.getTime()))
    throw new CeleriacError("INVALID_OPTION", `${field} is not a valid time: ${String(v)}`);
  return d;
}

export function buildTaskMessage(
  name: string,
  args: readonly unknown[],
  options: InternalSendOptions<Kwargs>,
  defaults: MessageDefaults,
  now = Date.now(),
): TaskMessage {
  const id = options.taskId ?? randomUUID();
  const kwargs = options.kwargs ?? {};
  if (!Array.isArray(args))
    throw new CeleriacError("INVALID_ARGUMENTS", `args of ${name} must be an array`);
  if (kwargs === null || typeof kwargs !== "object" || Array.isArray(kwargs)) {
    throw new CeleriacError("INVALID_ARGUMENTS", `kwargs of ${name} must be an object`);
  }

  let eta: string | null = null;
  if (options.countdown !== undefined) {
    if (!Number.isFinite(options.countdown))
      throw new CeleriacError("INVALID_OPTION", "countdown must be a number of seconds");
    eta = isoformat(new Date(now + options.countdown * 1000));
  } else if (options.eta !== undefined) {
    eta = isoformat(toDate(options.eta, "eta"));
  }

  let expires: string | null = null;
  let expirationMs: number | null = null;
  const exp = options.expires ?? defaults.expires;
  if (exp !== undefined) {
    const at = typeof exp === "number" ? new Date(now + exp * 1000) : toDate(exp, "expires");
    expires = isoformat(at);
    expirationMs = Math.max(0, Math.round(at.getTime() - now));
  }

  const priority = options.priority ?? defaults.priority;
  if (priority !== undefined && !(Number.isInteger(priority) && priority >= 0 && priority <= 255)) {
    throw new CeleriacError("INVALID_OPTION", `priority must be an integer 0-255, got ${priority}`);
  }

  const headers: TaskHeaders = {
    lang: "js",
    task: name,
    id,
    shadow: options.shadow ?? null,
    eta,
    expires,
    group: options.groupId ?? null,
    group_index: options.groupIndex ?? null,
    retries: options.retries ?? 0,
    timelimit: [
      options.timeLimit ?? defaults.timeLimit ?? null,
      options.softTimeLimit ?? defaults.softTimeLimit ?? null,
    ],
    root_id: options.rootId ?? id,
    parent_id: options.parentId ?? null,
    argsrepr: reprArgs(args),
    kwargsrepr: truncate(repr(kwargs)),
    origin: defaults.origin,
    ignore_result: options.ignoreResult ?? defaults.ignoreResult ?? false,
    ...options.headers,
  };

  const embed: Embed = {
    callbacks: toSignatureDicts(options.link),
    errbacks: toSignatureDicts(options.linkError),
    chain: options.chain ?? null,
    chord: options.chord ?? null,
  };

  return {
    headers,
    args: [...args],
    kwargs,
    embed,
    properties: {
      correlationId: id,
      replyTo: defaults.replyTo,
      deliveryMode: 2,
      priority: priority ?? 0,
      ...(expirationMs !== null ? { expiration: String(expirationMs) } : {}),
    },
  };
}
