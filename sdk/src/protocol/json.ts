/**
 * JSON as Celery's kombu writes it, and a reader as tolerant as Python's.
 *
 * kombu serializes with Python's `json.dumps` defaults: `", "` and `": "` separators,
 * `ensure_ascii` (every non-ASCII character as a lower-case `\uXXXX` escape), floats in Python's
 * `repr` form, and dates as ISO strings. Python workers do not care about spacing, but matching it
 * byte for byte keeps messages, results and stored envelopes identical whichever side wrote them.
 */
import JSON5 from "json5";
import { CeleriacError } from "../errors.js";

const NEEDS_ESCAPE = /[\u007f-\uffff]/g;
const ASCII_SAFE = /^[\x20-\x7e]*$/;

function escapeNonAscii(ch: string): string {
  return `\\u${ch.charCodeAt(0).toString(16).padStart(4, "0")}`;
}

/** A string literal as Python's `json.dumps(..., ensure_ascii=True)` writes it. */
export function quote(s: string): string {
  const quoted = JSON.stringify(s);
  return ASCII_SAFE.test(quoted) ? quoted : quoted.replace(NEEDS_ESCAPE, escapeNonAscii);
}

/** A number as Python writes it: integers plainly, floats in `repr` form (`1e-05`, `1e+16`). */
export function formatNumber(n: number): string {
  if (!Number.isFinite(n)) {
    throw new CeleriacError(
      "ENCODE_ERROR",
      `cannot serialize ${n}: Celery's JSON has no such value`,
    );
  }
  if (Number.isInteger(n) && Math.abs(n) < 1e16) return Object.is(n, -0) ? "0" : n.toFixed(0);
  // Shortest round-trip digits, then Python's layout: fixed for 1e-4 <= |n| < 1e16.
  const [mantissa = "", expText = "0"] = n.toExponential().split("e");
  const exp = Number(expText);
  if (exp < -4 || exp >= 16) {
    const sign = exp < 0 ? "-" : "+";
    return `${mantissa}e${sign}${String(Math.abs(exp)).padStart(2, "0")}`;
  }
  return String(n);
}

/** Python's `datetime.isoformat()` for UTC as kombu 5.2 writes it: `Z` suffix, microseconds when set. */
export function formatDate(d: Date): string {
  const iso = d.toISOString(); // 2024-01-02T03:04:05.123Z
  const ms = d.getUTCMilliseconds();
  return ms === 0
    ? `${iso.slice(0, 19)}Z`
    : `${iso.slice(0, 19)}.${String(ms * 1000).padStart(6, "0")}Z`;
}

function write(value: unknown, out: string[]): void {
  switch (typeof value) {
    case "string":
      out.push(quote(value));
      return;
    case "number":
      out.push(formatNumber(value));
      return;
    case "boolean":
      out.push(value ? "true" : "false");
      return;
    case "bigint":
      out.push(value.toString());
      return;
    case "undefined":
    case "function":
    case "symbol":
      out.push("null");
      return;
  }
  if (value === null) {
    out.push("null");
    return;
  }
  if (Array.isArray(value)) {
    out.push("[");
    for (let i = 0; i < value.length; i++) {
      if (i > 0) out.push(", ");
      write(value[i], out);
    }
    out.push("]");
    return;
  }
  if (value instanceof Date) {
    out.push(quote(formatDate(value)));
    return;
  }
  if (Buffer.isBuffer(value) || value instanceof Uint8Array) {
    throw new CeleriacError("ENCODE_ERROR", "bytes are not JSON serializable (as in kombu)");
  }
  const toJSON = (value as { toJSON?: () => unknown }).toJSON;
  if (typeof toJSON === "function") {
    write(toJSON.call(value), out);
    return;
  }
  if (value instanceof Map || value instanceof Set) {
    throw new CeleriacError("ENCODE_ERROR", `${value.constructor.name} is not JSON serializable`);
  }
  out.push("{");
  let first = true;
  for (const key of Object.keys(value as object)) {
    const v = (value as Record<string, unknown>)[key];
    if (v === undefined || typeof v === "function" || typeof v === "symbol") continue;
    if (!first) out.push(", ");
    first = false;
    out.push(quote(key), ": ");
    write(v, out);
  }
  out.push("}");
}

/**
 * Whether `value` is made only of what the engine's own JSON.stringify writes exactly as Python
 * does, spacing aside: plain objects and arrays, strings, booleans, null, and numbers Python
 * prints the same way (integers below 1e16, other floats from 1e-4 up). Most messages are.
 */
function isPlain(value: unknown): boolean {
  switch (typeof value) {
    case "string":
    case "boolean":
    case "undefined":
      return true;
    case "number":
      return Number.isInteger(value)
        ? Math.abs(value) < 1e16
        : Number.isFinite(value) && Math.abs(value) >= 1e-4;
    case "object": {
      if (value === null) return true;
      if (Array.isArray(value)) {
        for (let i = 0; i < value.length; i++) if (!isPlain(value[i])) return false;
        return true;
      }
      const proto = Object.getPrototypeOf(value);
      if (proto !== Object.prototype && proto !== null) return false;
      if ("toJSON" in value) return false;
      for (const key in value) if (!isPlain((value as Record<string, unknown>)[key])) return false;
      return true;
    }
    default:
      return false;
  }
}

const COMMA = 44;
const COLON = 58;
const QUOTE = 34;
const BACKSLASH = 92;

/** Compact JSON with Python's separators: `", "` and `": "` outside strings. */
function pythonSpacing(json: string): string {
  const parts: string[] = [];
  let from = 0;
  for (let i = 0; i < json.length; i++) {
    const c = json.charCodeAt(i);
    if (c === QUOTE) {
      // Jump to the string's closing quote (found natively: base64 bodies are long), past any
      // quote that an odd run of backslashes escapes.
      for (;;) {
        i = json.indexOf('"', i + 1);
        let backslashes = 0;
        while (json.charCodeAt(i - 1 - backslashes) === BACKSLASH) backslashes++;
        if (backslashes % 2 === 0) break;
      }
    } else if (c === COMMA || c === COLON) {
      parts.push(json.slice(from, i + 1));
      from = i + 1;
    }
  }
  if (from === 0) return json;
  parts.push(json.slice(from));
  return parts.join(" ");
}

/** Serialize like kombu's `json` serializer (Python `json.dumps` with its default formatting). */
export function dumps(value: unknown): string {
  // The engine's serializer is several times faster than ours: used wherever it writes the same.
  if (isPlain(value)) {
    const json = pythonSpacing(JSON.stringify(value) ?? "null");
    return ASCII_SAFE.test(json) ? json : json.replace(NEEDS_ESCAPE, escapeNonAscii);
  }
  const out: string[] = [];
  write(value, out);
  return out.join("");
}

/**
 * Parse JSON written by Python: plain JSON first, then a tolerant pass that accepts the bare
 * `NaN`, `Infinity` and `-Infinity` Python emits for such floats. Integers beyond 2^53 lose
 * precision, as they would in any JavaScript number.
 */
export function loads(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch (error) {
    if (!/NaN|Infinity/.test(text)) throw error;
    return JSON5.parse(text);
  }
}

/**
 * kombu 5.3+ tags special values as `{"__type__": t, "__value__": v}`. Decode them the way kombu
 * does (dates stay ISO strings here, as kombu 5.2 sends them, so both versions read the same).
 */
export function untag(value: unknown): unknown {
  return hasTags(value) ? untagDeep(value) : value;
}

/** Most messages have no tags: find out without copying anything. */
function hasTags(value: unknown): boolean {
  if (Array.isArray(value)) return value.some(hasTags);
  if (value === null || typeof value !== "object") return false;
  if ("__type__" in value) return true;
  for (const k in value) if (hasTags((value as Record<string, unknown>)[k])) return true;
  return false;
}

function untagDeep(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(untagDeep);
  if (value === null || typeof value !== "object") return value;
  const obj = value as Record<string, unknown>;
  const keys = Object.keys(obj);
  if (keys.length === 2 && "__type__" in obj && "__value__" in obj) {
    const v = obj.__value__;
    if (obj.__type__ === "uuid" && v && typeof v === "object" && "hex" in v) {
      const hex = String((v as { hex: unknown }).hex);
      return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
    }
    if (obj.__type__ === "base64" && typeof v === "string")
      return Buffer.from(v, "base64").toString("utf8");
    return v;
  }
  const out: Record<string, unknown> = {};
  for (const k of keys) out[k] = untagDeep(obj[k]);
  return out;
}
