/**
 * Celery task message protocol v2: build and parse.
 *
 * A task message is headers (which task, its id, eta, expiry, retries, workflow ids ...), AMQP
 * properties, and a JSON body `[args, kwargs, embed]`. Header names stay in Celery's snake_case
 * because they are the wire format; the worker's `Request` exposes them in camelCase.
 */

import type { Message, MessageProperties } from "../brokers/broker.js";
import { CeleriacError } from "../errors.js";
import { dumps, loads, untag } from "./json.js";

/** A signature as Celery embeds it in messages (`callbacks`, `errbacks`, `chain`, `chord`). */
export interface SignatureDict {
  task: string;
  args: unknown[];
  kwargs: Record<string, unknown>;
  options: Record<string, unknown>;
  subtask_type: null | "chain" | "group" | "chord" | string;
  immutable: boolean;
  chord_size?: number | null;
}

/** The third body element: what runs after the task. */
export interface Embed {
  callbacks: SignatureDict[] | null;
  errbacks: SignatureDict[] | null;
  chain: SignatureDict[] | null;
  chord: SignatureDict | null;
}

/** Headers of a protocol v2 task message, in the order Celery 5.2 writes them. */
export interface TaskHeaders {
  lang: string;
  task: string;
  id: string;
  shadow: string | null;
  eta: string | null;
  expires: string | null;
  group: string | null;
  group_index: number | null;
  retries: number;
  timelimit: [number | null, number | null];
  root_id: string;
  parent_id: string | null;
  argsrepr: string;
  kwargsrepr: string;
  origin: string;
  ignore_result: boolean;
  [extra: string]: unknown;
}

export interface TaskMessage {
  headers: TaskHeaders;
  args: unknown[];
  kwargs: Record<string, unknown>;
  embed: Embed;
  properties: MessageProperties;
}

export const CONTENT_TYPE = "application/json";
export const CONTENT_ENCODING = "utf-8";

export const EMPTY_EMBED: Readonly<Embed> = Object.freeze({
  callbacks: null,
  errbacks: null,
  chain: null,
  chord: null,
});

/** Serialize a task message for a broker. */
export function encodeTaskMessage(task: TaskMessage): Message {
  return {
    body: Buffer.from(dumps([task.args, task.kwargs, task.embed]), "utf8"),
    contentType: CONTENT_TYPE,
    contentEncoding: CONTENT_ENCODING,
    headers: task.headers,
    properties: task.properties,
  };
}

function invalid(reason: string): CeleriacError {
  return new CeleriacError("INVALID_MESSAGE", reason);
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === "object" && !Array.isArray(v);
}

function optionalString(v: unknown, field: string): string | null {
  if (v === null || v === undefined) return null;
  if (typeof v !== "string") throw invalid(`header ${field} must be a string, got ${typeof v}`);
  return v;
}

/** Parse an ISO-8601 time as Celery's `maybe_iso8601` does: naive values are UTC. */
export function parseIsoTime(value: string, field: string): Date {
  const hasZone = /(Z|[+-]\d{2}:?\d{2})$/i.test(value);
  const date = new Date(hasZone ? value : `${value}Z`);
  if (Number.isNaN(date.getTime()))
    throw invalid(`header ${field} is not an ISO-8601 time: ${value}`);
  return date;
}

/** Nesting deeper than this in an embedded signature is refused. */
const MAX_SIGNATURE_DEPTH = 64;

/**
 * Check a signature dict where the worker will read it (`task`, `args`, `kwargs`, `options`,
 * `subtask_type`, `immutable`; a group's or chain's `kwargs.tasks`, a chord's header and body;
 * `options.link`, `link_error`, `chain`, `chord`). Fields may be left out, as Celery allows; a
 * field of the wrong type makes the message malformed instead of failing later, after the task
 * ran, when what follows it is sent.
 */
function checkSignature(v: unknown, path: string, depth = 0): SignatureDict {
  if (depth > MAX_SIGNATURE_DEPTH) throw invalid(`${path}: signatures nested too deeply`);
  if (!isPlainObject(v)) throw invalid(`${path} must be a signature (an object)`);
  if (typeof v.task !== "string" || v.task === "")
    throw invalid(`${path}.task must be a task name`);
  if (v.args !== undefined && v.args !== null && !Array.isArray(v.args))
    throw invalid(`${path}.args must be an array`);
  for (const field of ["kwargs", "options"] as const)
    if (v[field] !== undefined && v[field] !== null && !isPlainObject(v[field]))
      throw invalid(`${path}.${field} must be an object`);
  if (v.subtask_type !== undefined && v.subtask_type !== null && typeof v.subtask_type !== "string")
    throw invalid(`${path}.subtask_type must be a string or null`);
  if (v.immutable !== undefined && v.immutable !== null && typeof v.immutable !== "boolean")
    throw invalid(`${path}.immutable must be a boolean`);
  const kwargs = (v.kwargs ?? {}) as Record<string, unknown>;
  const options = (v.options ?? {}) as Record<string, unknown>;
  if (v.subtask_type === "group" || v.subtask_type === "chain")
    checkSignatures(kwargs.tasks ?? [], `${path}.kwargs.tasks`, depth + 1);
  if (v.subtask_type === "chord") {
    const header = kwargs.header;
    if (Array.isArray(header)) checkSignatures(header, `${path}.kwargs.header`, depth + 1);
    else if (header !== undefined && header !== null)
      checkSignature(header, `${path}.kwargs.header`, depth + 1);
    checkSignature(kwargs.body, `${path}.kwargs.body`, depth + 1);
  }
  for (const field of ["link", "link_error"] as const) {
    const value = options[field];
    if (Array.isArray(value)) checkSignatures(value, `${path}.options.${field}`, depth + 1);
    else if (value !== undefined && value !== null)
      checkSignature(value, `${path}.options.${field}`, depth + 1);
  }
  if (options.chain !== undefined && options.chain !== null)
    checkSignatures(options.chain, `${path}.options.chain`, depth + 1);
  if (options.chord !== undefined && options.chord !== null)
    checkSignature(options.chord, `${path}.options.chord`, depth + 1);
  return v as unknown as SignatureDict;
}

function checkSignatures(v: unknown, path: string, depth = 0): SignatureDict[] {
  if (!Array.isArray(v)) throw invalid(`${path} must be a list of signatures`);
  return v.map((s, i) => checkSignature(s, `${path}[${i}]`, depth));
}

const optionalSignatures = (v: unknown, path: string) =>
  v === null || v === undefined ? null : checkSignatures(v, path);
const optionalSignature = (v: unknown, path: string) =>
  v === null || v === undefined ? null : checkSignature(v, path);

function parseEmbed(raw: unknown): Embed {
  if (raw === null || raw === undefined) return { ...EMPTY_EMBED };
  if (!isPlainObject(raw)) throw invalid("body[2] (embed) must be an object");
  return {
    callbacks: optionalSignatures(raw.callbacks, "embed callbacks"),
    errbacks: optionalSignatures(raw.errbacks, "embed errbacks"),
    chain: optionalSignatures(raw.chain, "embed chain"),
    chord: optionalSignature(raw.chord, "embed chord"),
  };
}

function decodeBody(message: Message): unknown {
  if (message.contentType !== CONTENT_TYPE) {
    throw new CeleriacError(
      "CONTENT_DISALLOWED",
      `content type ${JSON.stringify(message.contentType)} is not accepted (only ${CONTENT_TYPE})`,
    );
  }
  try {
    return untag(loads(message.body.toString("utf8")));
  } catch (error) {
    throw new CeleriacError(
      "INVALID_MESSAGE",
      `body is not valid JSON: ${(error as Error).message}`,
      { cause: error },
    );
  }
}

/**
 * Parse a task message. Accepts protocol v2, and v1 (headers empty, everything in a dict body)
 * as Celery 5 workers still do. Throws a CeleriacError (`INVALID_MESSAGE` or
 * `CONTENT_DISALLOWED`) that says what is wrong; the worker rejects such messages.
 */
export function decodeTaskMessage(message: Message): TaskMessage {
  const body = decodeBody(message);
  const h = message.headers ?? {};
  if (typeof h.task !== "string") return decodeV1(body, message.properties);

  if (typeof h.id !== "string" || h.id === "") throw invalid("header id is missing");
  if (!Array.isArray(body)) throw invalid("body must be an array [args, kwargs, embed]");
  if (body.length < 2 || body.length > 3)
    throw invalid(`body must have 3 elements, got ${body.length}`);
  const [args, kwargs, embed] = body as [unknown, unknown, unknown];
  if (!Array.isArray(args)) throw invalid("body[0] (args) must be an array");
  if (!isPlainObject(kwargs)) throw invalid("body[1] (kwargs) must be an object");

  const retries = h.retries ?? 0;
  if (typeof retries !== "number" || !Number.isInteger(retries) || retries < 0)
    throw invalid("header retries must be a non-negative integer");
  const eta = optionalString(h.eta, "eta");
  const expires = optionalString(h.expires, "expires");
  if (eta) parseIsoTime(eta, "eta");
  if (expires) parseIsoTime(expires, "expires");
  const timelimit = parseTimelimit(h.timelimit);
  const groupIndex = h.group_index ?? null;
  if (groupIndex !== null && typeof groupIndex !== "number")
    throw invalid("header group_index must be an integer");

  const headers: TaskHeaders = {
    ...h,
    lang: typeof h.lang === "string" ? h.lang : "py",
    task: h.task,
    id: h.id,
    shadow: optionalString(h.shadow, "shadow"),
    eta,
    expires,
    group: optionalString(h.group, "group"),
    group_index: groupIndex,
    retries,
    timelimit,
    root_id: optionalString(h.root_id, "root_id") ?? h.id,
    parent_id: optionalString(h.parent_id, "parent_id"),
    argsrepr: typeof h.argsrepr === "string" ? h.argsrepr : "",
    kwargsrepr: typeof h.kwargsrepr === "string" ? h.kwargsrepr : "",
    origin: typeof h.origin === "string" ? h.origin : "",
    ignore_result: h.ignore_result === true,
  };
  return { headers, args, kwargs, embed: parseEmbed(embed), properties: message.properties };
}

function parseTimelimit(v: unknown): [number | null, number | null] {
  if (v === null || v === undefined) return [null, null];
  if (!Array.isArray(v) || v.length !== 2) throw invalid("header timelimit must be [hard, soft]");
  const [hard, soft] = v as [unknown, unknown];
  const num = (x: unknown) => {
    if (x === null || x === undefined) return null;
    if (typeof x !== "number" || x < 0)
      throw invalid("header timelimit values must be seconds or null");
    return x;
  };
  return [num(hard), num(soft)];
}

/** Protocol v1: a dict body carrying everything; converted to v2 as Celery's worker does. */
function decodeV1(body: unknown, properties: MessageProperties): TaskMessage {
  if (!isPlainObject(body) || typeof body.task !== "string" || typeof body.id !== "string") {
    throw invalid("message has no task header and is not a protocol v1 body");
  }
  const args = body.args ?? [];
  const kwargs = body.kwargs ?? {};
  if (!Array.isArray(args)) throw invalid("v1 args must be an array");
  if (!isPlainObject(kwargs)) throw invalid("v1 kwargs must be an object");
  const tl = parseTimelimit(body.timelimit);
  return {
    headers: {
      lang: "py",
      task: body.task,
      id: body.id,
      shadow: null,
      eta: optionalString(body.eta, "eta"),
      expires: optionalString(body.expires, "expires"),
      group: optionalString(body.taskset ?? body.group, "group"),
      group_index: null,
      retries: typeof body.retries === "number" ? body.retries : 0,
      timelimit: tl,
      root_id: body.id,
      parent_id: null,
      argsrepr: "",
      kwargsrepr: "",
      origin: "",
      ignore_result: false,
    },
    args,
    kwargs,
    embed: {
      callbacks: optionalSignatures(body.callbacks, "callbacks"),
      errbacks: optionalSignatures(body.errbacks, "errbacks"),
      chain: null,
      chord: optionalSignature(body.chord, "chord"),
    },
    properties,
  };
}
