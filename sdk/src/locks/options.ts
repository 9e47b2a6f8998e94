/**
 * Unique tasks: at most one run at a time per lock key. Set on a task (`unique` task option) or
 * per call (`applyAsync(args, { unique })`, carried in the `celeriac_unique` message header,
 * which Python workers ignore). Celery has no such thing; these are Celeriac's own rules.
 */
import { createHash } from "node:crypto";
import { z } from "zod";
import { CeleriacError } from "../errors.js";
import type { Kwargs } from "../task.js";

/** What makes two runs "the same": a lock key computed from the task's name and arguments. */
export type UniqueBy =
  | "name"
  | "args"
  | ((args: readonly unknown[], kwargs: Kwargs) => string | number);

/** What a run does when another run holds its lock. */
export type OnConflict = "drop" | "fail" | "retry";

export interface UniqueOptions {
  /**
   * `"name"`: one run of the task at a time; `"args"`: one per set of arguments (positional and
   * keyword); a function of `(args, kwargs)`: one per key it returns. Keys are scoped by task
   * name, so two tasks never share a lock. Default: "args".
   */
  by?: UniqueBy;
  /**
   * Seconds a lock outlives a holder that stopped renewing it (a killed worker). A running holder
   * renews it every third of this, so runs may last longer. At least 1, at most 6,442,450 (the
   * renewal timer's limit, about 74 days). Default: 60.
   */
  ttl?: number;
  /**
   * `"drop"`: ack the message, run nothing, store nothing (the call's result stays PENDING);
   * `"fail"`: store FAILURE with a UniqueConflictError; `"retry"`: send the message again after
   * `retryCountdown` seconds, with the same id, without counting against `maxRetries`.
   * Default: "drop".
   */
  onConflict?: OnConflict;
  /**
   * Seconds before a conflicting run tries again (`onConflict: "retry"`), plus up to a quarter
   * more at random. At least 0.1. Default: 5.
   */
  retryCountdown?: number;
}

export const UNIQUE_DEFAULTS = {
  by: "args",
  ttl: 60,
  onConflict: "drop",
  retryCountdown: 5,
} as const satisfies UniqueOptions;

/** The message header carrying a per-call rule. */
export const UNIQUE_HEADER = "celeriac_unique";

/** A rule as it travels in the header: `by` for rules the worker computes, `key` for one the producer did. */
export interface UniqueHeader {
  by?: "name" | "args";
  key?: string;
  ttl: number;
  on_conflict: OnConflict;
  retry_countdown: number;
}

/** A rule with its defaults applied. */
export interface UniqueRule {
  by: UniqueBy | { key: string };
  ttl: number;
  onConflict: OnConflict;
  retryCountdown: number;
}

/** A lock is renewed every third of its ttl, by a timer: setInterval takes at most 2^31-1 ms. */
export const MAX_TTL = Math.floor(((2 ** 31 - 1) * 3) / 1000);
export const MIN_TTL = 1;
export const MIN_RETRY_COUNTDOWN = 0.1;

const ttl = z
  .number()
  .min(MIN_TTL, `ttl must be at least ${MIN_TTL} s`)
  .max(MAX_TTL, `ttl must be at most ${MAX_TTL} s (renewed every third of it by a timer)`);
const retryCountdown = z
  .number()
  .min(MIN_RETRY_COUNTDOWN, `retryCountdown must be at least ${MIN_RETRY_COUNTDOWN} s`);

const fields = {
  ttl: ttl.optional(),
  onConflict: z.enum(["drop", "fail", "retry"]).optional(),
  retryCountdown: retryCountdown.optional(),
};

// Booleans are checked as an empty rule, so that a bad field is named in the error (a union
// would only say "Invalid input").
export const uniqueOptionsSchema = z.preprocess(
  (v) => (typeof v === "boolean" ? {} : v),
  z.strictObject({ by: z.union([z.enum(["name", "args"]), z.function()]).optional(), ...fields }),
);

const headerSchema = z.union([
  z.literal(false),
  z.object({
    by: z.enum(["name", "args"]).optional(),
    key: z.string().optional(),
    ttl,
    on_conflict: z.enum(["drop", "fail", "retry"]),
    retry_countdown: retryCountdown,
  }),
]);

function withDefaults(options: UniqueOptions): Omit<UniqueRule, "by"> {
  return {
    ttl: options.ttl ?? UNIQUE_DEFAULTS.ttl,
    onConflict: options.onConflict ?? UNIQUE_DEFAULTS.onConflict,
    retryCountdown: options.retryCountdown ?? UNIQUE_DEFAULTS.retryCountdown,
  };
}

/** A task's `unique` option as a rule, or null when the task is not unique. */
export function ruleOf(option: UniqueOptions | boolean | undefined): UniqueRule | null {
  if (!option) return null;
  const o = option === true ? {} : option;
  return { by: o.by ?? UNIQUE_DEFAULTS.by, ...withDefaults(o) };
}

/**
 * The header of a per-call `unique` option, whose fields override those of the task's own rule
 * (when this producer knows the task). A function `by` runs here, in the producer, because a
 * function cannot travel; `false` turns the task's rule off for this call.
 */
export function uniqueHeader(
  option: UniqueOptions | boolean,
  taskOption: UniqueOptions | boolean | undefined,
  args: readonly unknown[],
  kwargs: Kwargs,
): UniqueHeader | false {
  const parsed = uniqueOptionsSchema.safeParse(option);
  if (!parsed.success)
    throw new CeleriacError("INVALID_OPTION", `unique: ${z.prettifyError(parsed.error)}`);
  if (option === false) return false;
  const o = {
    ...(typeof taskOption === "object" ? taskOption : {}),
    ...(option === true ? {} : option),
  };
  const rule = withDefaults(o);
  const by = o.by ?? UNIQUE_DEFAULTS.by;
  return {
    ...(typeof by === "function" ? { key: userKey(by, args, kwargs) } : { by }),
    ttl: rule.ttl,
    on_conflict: rule.onConflict,
    retry_countdown: rule.retryCountdown,
  };
}

/**
 * The rule of one message: its header when the sender gave one (a malformed header is an error,
 * not a silent run without a lock), else the task's own.
 */
export function ruleOfMessage(
  header: unknown,
  taskOption: UniqueOptions | boolean | undefined,
): UniqueRule | null {
  if (header === undefined || header === null) return ruleOf(taskOption);
  const parsed = headerSchema.safeParse(header);
  if (!parsed.success)
    throw new CeleriacError(
      "INVALID_MESSAGE",
      `bad ${UNIQUE_HEADER} header: ${z.prettifyError(parsed.error)}`,
    );
  const h = parsed.data;
  if (h === false) return null;
  return {
    by: h.key !== undefined ? { key: h.key } : (h.by ?? UNIQUE_DEFAULTS.by),
    ttl: h.ttl,
    onConflict: h.on_conflict,
    retryCountdown: h.retry_countdown,
  };
}

/** Keys longer than this are hashed, so a huge argument never becomes a huge Redis key. */
const MAX_KEY_PART = 200;

function userKey(by: Exclude<UniqueBy, string>, args: readonly unknown[], kwargs: Kwargs): string {
  const key = by(args, kwargs);
  if ((typeof key !== "string" || key === "") && typeof key !== "number")
    throw new CeleriacError(
      "INVALID_OPTION",
      "unique.by must return a non-empty string or a number",
    );
  return String(key);
}

/** JSON with object keys sorted, so `{a, b}` and `{b, a}` are the same arguments. */
function stableJson(value: unknown): string {
  return JSON.stringify(value, (_k, v: unknown) =>
    v !== null && typeof v === "object" && !Array.isArray(v)
      ? Object.fromEntries(Object.entries(v).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)))
      : v,
  );
}

function shorten(part: string): string {
  return part.length <= MAX_KEY_PART
    ? part
    : `sha256:${createHash("sha256").update(part).digest("hex")}`;
}

/**
 * The lock key of a run: `stats.album` (by name), `stats.album:["a1"]` (by args, keyword
 * arguments appended when there are any), `stats.album:<key>` (by a function or a header key).
 */
export function lockKey(
  rule: UniqueRule,
  task: string,
  args: readonly unknown[],
  kwargs: Kwargs,
): string {
  const by = rule.by;
  if (by === "name") return task;
  if (by === "args") {
    const kw = Object.keys(kwargs).length ? ` ${stableJson(kwargs)}` : "";
    return `${task}:${shorten(`${stableJson(args)}${kw}`)}`;
  }
  if (typeof by === "function") return `${task}:${shorten(userKey(by, args, kwargs))}`;
  return `${task}:${shorten(by.key)}`;
}
