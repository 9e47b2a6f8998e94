/**
 * Python's `repr()` of JSON-like values, for the `argsrepr`/`kwargsrepr` headers and the
 * `args`/`kwargs`/`result` fields of events, which monitors (Flower, `celery events`) display.
 */
import { formatNumber } from "./json.js";

/** Celery truncates reprs to this many characters (`task_argsrepr_maxsize`, `resultrepr_maxsize`). */
export const REPR_MAX = 1024;

function reprString(s: string): string {
  const quote = s.includes("'") && !s.includes('"') ? '"' : "'";
  let out = quote;
  for (const ch of s) {
    const code = ch.codePointAt(0)!;
    if (ch === "\\") out += "\\\\";
    else if (ch === quote) out += `\\${quote}`;
    else if (ch === "\n") out += "\\n";
    else if (ch === "\r") out += "\\r";
    else if (ch === "\t") out += "\\t";
    else if (code < 0x20 || code === 0x7f) out += `\\x${code.toString(16).padStart(2, "0")}`;
    else out += ch;
  }
  return out + quote;
}

function reprNumber(n: number): string {
  if (Number.isNaN(n)) return "nan";
  if (!Number.isFinite(n)) return n > 0 ? "inf" : "-inf";
  return formatNumber(n);
}

export function repr(value: unknown): string {
  if (value === null || value === undefined) return "None";
  switch (typeof value) {
    case "string":
      return reprString(value);
    case "number":
      return reprNumber(value);
    case "bigint":
      return value.toString();
    case "boolean":
      return value ? "True" : "False";
  }
  if (Array.isArray(value)) return `[${value.map(repr).join(", ")}]`;
  if (value instanceof Date) return reprString(value.toISOString());
  if (typeof value === "object") {
    const entries = Object.entries(value as Record<string, unknown>).map(
      ([k, v]) => `${reprString(k)}: ${repr(v)}`,
    );
    return `{${entries.join(", ")}}`;
  }
  return reprString(String(value));
}

/** A positional-arguments tuple as Python prints it: `()`, `(1,)`, `(2, 3)`. */
export function reprArgs(args: readonly unknown[]): string {
  if (args.length === 1) return truncate(`(${repr(args[0])},)`);
  return truncate(`(${args.map(repr).join(", ")})`);
}

export function truncate(s: string, max = REPR_MAX): string {
  return s.length > max ? `${s.slice(0, max - 3)}...` : s;
}
