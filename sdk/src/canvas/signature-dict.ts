/**
 * Sending a signature as Celery embeds it (`{task, args, kwargs, options, immutable}`), which is
 * how links, errbacks and chain steps travel in messages from Python and from us alike.
 */
import { CeleriacError } from "../errors.js";
import { UNIQUE_HEADER, type UniqueOptions, uniqueHeader } from "../locks/options.js";
import type { InternalSendOptions, SendOptions, SignatureLike } from "../producer/options.js";
import type { SignatureDict } from "../protocol/message.js";
import type { Kwargs } from "../task.js";

const num = (v: unknown) => (typeof v === "number" ? v : undefined);
const str = (v: unknown) => (typeof v === "string" && v !== "" ? v : undefined);

/** Celery's `apply_async` option names (snake_case, as in signature dicts) to ours. */
export function sendOptionsFromSignature(sig: SignatureDict): InternalSendOptions {
  const o = sig.options ?? {};
  const out: InternalSendOptions = { kwargs: sig.kwargs ?? {} };
  const set = <K extends keyof InternalSendOptions>(
    k: K,
    v: InternalSendOptions[K] | undefined,
  ) => {
    if (v !== undefined) out[k] = v;
  };
  set("taskId", str(o.task_id));
  set("queue", str(o.queue));
  set("routingKey", str(o.routing_key));
  set("exchange", str(o.exchange));
  set("priority", num(o.priority));
  set("countdown", num(o.countdown));
  set("eta", str(o.eta));
  set("expires", num(o.expires) ?? str(o.expires));
  set("timeLimit", num(o.time_limit));
  set("softTimeLimit", num(o.soft_time_limit));
  set("shadow", str(o.shadow));
  set("groupId", str(o.group_id));
  set("groupIndex", num(o.group_index));
  set("rootId", str(o.root_id));
  set("parentId", str(o.parent_id));
  if (typeof o.ignore_result === "boolean") out.ignoreResult = o.ignore_result;
  if (o.headers && typeof o.headers === "object")
    out.headers = o.headers as Record<string, unknown>;
  if (Array.isArray(o.link)) out.link = o.link as SignatureDict[];
  else if (o.link && typeof o.link === "object") out.link = o.link as SignatureDict;
  if (Array.isArray(o.link_error)) out.linkError = o.link_error as SignatureDict[];
  else if (o.link_error && typeof o.link_error === "object")
    out.linkError = o.link_error as SignatureDict;
  if (o.chord && typeof o.chord === "object") out.chord = o.chord as SignatureDict;
  if (Array.isArray(o.chain)) out.chain = o.chain as SignatureDict[];
  return out;
}

/** The args a signature is sent with: `prepend` before its own args, unless it is immutable. */
export function signatureArgs(sig: SignatureDict, prepend: unknown[]): unknown[] {
  return sig.immutable ? [...(sig.args ?? [])] : [...prepend, ...(sig.args ?? [])];
}

/** A signature object or dict as the dict Celery embeds. */
export function toSignatureDict(s: SignatureLike): SignatureDict {
  return "toDict" in s && typeof s.toDict === "function" ? s.toDict() : (s as SignatureDict);
}

const asList = (v: SignatureLike | SignatureLike[]) => (Array.isArray(v) ? v : [v]);
const isoTime = (v: Date | string) => (v instanceof Date ? v.toISOString() : v);

/** What `signatureOptions` needs to know to turn a `unique` option into its header. */
export interface SignatureContext {
  /** The task's own `unique` option, which the signature's rule is merged over. */
  taskUnique?: UniqueOptions | boolean;
  /** The headers the signature already carries: kept when `unique` adds its own. */
  headers?: unknown;
  /** The arguments it is sent with, when known now (a task's signature being applied). */
  call?: { args: readonly unknown[]; kwargs: Kwargs };
}

/**
 * A `unique` option as the `celeriac_unique` header the producer sends (merged over the task's
 * own rule, field by field). A function `by` runs only where the arguments are known: when a
 * task's signature is applied; a signature kept for later (`set`, a chain step, a link) cannot
 * carry a function, so it is refused there.
 */
function uniqueHeaderOf(option: UniqueOptions | boolean, context: SignatureContext) {
  const own = typeof option === "object" ? option.by : undefined;
  const inherited = typeof context.taskUnique === "object" ? context.taskUnique.by : undefined;
  if (option !== false && typeof (own ?? inherited) === "function" && !context.call)
    throw new CeleriacError(
      "INVALID_OPTION",
      `unique.by is a function${own ? "" : " (the task's)"}, which a signature cannot carry: it ` +
        "would have to run where the signature is sent, with arguments not known yet. In a " +
        'signature use by: "name" or "args", or pass `unique` to applyAsync when sending the task.',
    );
  return uniqueHeader(
    option,
    context.taskUnique,
    context.call?.args ?? [],
    context.call?.kwargs ?? {},
  );
}

/** Our send options as Celery's `apply_async` options, the way signature dicts carry them. */
export function signatureOptions(
  options: Omit<SendOptions, "kwargs">,
  context: SignatureContext = {},
): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  const o = options;
  if (o.taskId !== undefined) out.task_id = o.taskId;
  if (o.countdown !== undefined) out.countdown = o.countdown;
  if (o.eta !== undefined) out.eta = isoTime(o.eta);
  if (o.expires !== undefined)
    out.expires = typeof o.expires === "number" ? o.expires : isoTime(o.expires);
  if (o.priority !== undefined) out.priority = o.priority;
  if (o.queue !== undefined) out.queue = o.queue;
  if (o.headers !== undefined) out.headers = o.headers;
  if (o.timeLimit !== undefined) out.time_limit = o.timeLimit;
  if (o.softTimeLimit !== undefined) out.soft_time_limit = o.softTimeLimit;
  if (o.ignoreResult !== undefined) out.ignore_result = o.ignoreResult;
  if (o.shadow !== undefined) out.shadow = o.shadow;
  if (o.link !== undefined) out.link = asList(o.link).map(toSignatureDict);
  if (o.linkError !== undefined) out.link_error = asList(o.linkError).map(toSignatureDict);
  // Carried as the header a producer sends it in, which Celery merges into the message's headers
  // (Python workers sending a chain step pass it on).
  if (o.unique !== undefined) {
    const base = o.headers ?? context.headers;
    out.headers = {
      ...(base && typeof base === "object" ? base : {}),
      [UNIQUE_HEADER]: uniqueHeaderOf(o.unique, context),
    };
  }
  return out;
}
