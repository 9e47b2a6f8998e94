/**
 * The inverse of `repr()` for the values tasks are called with: Python literals (None, True,
 * False, numbers, strings, tuples, lists, dicts, sets) back to JSON values. Events carry a task's
 * arguments only as reprs (`"(2, 3)"`, `"{'z': 1}"`); parsing them lets a monitor run a task
 * again with the same arguments, for Python's tasks as for ours.
 *
 * Those reprs come from two writers, and the readers below refuse rather than guess where they
 * disagree:
 *
 * - Celery builds `argsrepr`/`kwargsrepr` with `celery.utils.saferepr.saferepr(args, 1024)`,
 *   which truncates anywhere, even inside a string (`'hello...'`, `221...`, `[...]`, `', ...'`),
 *   always quotes strings with `'`, escapes only `'` (as `\'`), and writes every other character
 *   as is: a real newline stays a newline, and a real backslash stays one backslash.
 * - Celeriac (and Python's own `repr()`) escape backslashes and control characters (`\\`, `\n`,
 *   `\t`, `\xNN`) and quote a string holding `'` but no `"` with `"`.
 *
 * So `'C:\new'` is a path with a backslash to saferepr and a line break to `repr()`.
 * `argsFromRepr`/`kwargsFromRepr` therefore decode a `'`-quoted string holding a backslash escape
 * other than `\'` only when the text shows it was written by `repr()` (it holds a `"`-quoted
 * string, which saferepr never writes); otherwise they give up (undefined). They also give up on
 * anything truncated: a text, string or token ending in `...`. `parsePythonLiteral` reads a
 * literal as Python would (escapes decoded), with the same structural checks.
 */
import { CeleriacError } from "../errors.js";

/** Deeper nesting than this is refused (saferepr stops at 3 levels; ours has no limit). */
const MAX_DEPTH = 100;

const ESCAPES: Record<string, string> = {
  n: "\n",
  r: "\r",
  t: "\t",
  "\\": "\\",
  "'": "'",
  '"': '"',
  "0": "\0",
};

interface ParseOptions {
  /** Read as an `argsrepr`: refuse truncation and the backslash escapes saferepr makes ambiguous. */
  argsrepr?: boolean;
}

class Parser {
  private i = 0;
  private depth = 0;
  /** A `"`-quoted string was read: the text was written by `repr()`, not saferepr. */
  private sawDoubleQuoted = false;
  /** Where the first `'`-quoted string with a backslash escape other than `\'` starts. */
  private ambiguousAt = -1;

  constructor(
    private readonly s: string,
    private readonly options: ParseOptions = {},
  ) {}

  parse(): unknown {
    if (this.options.argsrepr && this.s.trimEnd().endsWith("...")) this.fail("truncated");
    const value = this.value();
    this.space();
    if (this.i !== this.s.length) this.fail("unexpected text");
    if (this.options.argsrepr && this.ambiguousAt >= 0 && !this.sawDoubleQuoted) {
      this.i = this.ambiguousAt;
      this.fail(
        "backslash escape in a '-quoted string: Celery's saferepr writes backslashes unescaped, so it may mean either",
      );
    }
    return value;
  }

  private fail(why: string): never {
    throw new CeleriacError("INVALID_ARGUMENTS", `not a Python literal (${why} at ${this.i})`);
  }

  private space() {
    while (/\s/.test(this.s[this.i] ?? "")) this.i++;
  }

  private value(): unknown {
    this.space();
    if (this.s.startsWith("...", this.i)) this.fail("truncated");
    const c = this.s[this.i];
    if (c === "(" || c === "[" || c === "{") {
      if (++this.depth > MAX_DEPTH) this.fail(`nested deeper than ${MAX_DEPTH} levels`);
      const v =
        c === "(" ? this.sequence(")", true) : c === "[" ? this.sequence("]") : this.braces();
      this.depth--;
      return v;
    }
    if (c === "'" || c === '"') return this.string();
    if (c !== undefined && /[-+\d.]/.test(c)) return this.number();
    for (const [word, v] of [
      ["None", null],
      ["True", true],
      ["False", false],
    ] as const) {
      if (this.s.startsWith(word, this.i)) {
        this.i += word.length;
        return v;
      }
    }
    return this.fail("unknown value");
  }

  /** After an item: a comma (then maybe the end), or the end. Returns whether a comma was read. */
  private separator(close: string): boolean {
    this.space();
    if (this.s[this.i] === ",") {
      this.i++;
      this.space();
      return true;
    }
    if (this.s.startsWith("...", this.i)) this.fail("truncated");
    if (this.s[this.i] !== close) this.fail(`expected , or ${close}`);
    return false;
  }

  private sequence(close: string, tuple = false): unknown[] {
    this.i++;
    const items: unknown[] = [];
    let trailingComma = false;
    this.space();
    while (this.s[this.i] !== close) {
      if (this.i >= this.s.length) this.fail(`expected ${close}`);
      items.push(this.value());
      trailingComma = this.separator(close);
    }
    this.i++;
    // `(1)` is just 1 in Python; only `(1,)` is a one-element tuple.
    if (tuple && items.length === 1 && !trailingComma) return items[0] as unknown[];
    return items;
  }

  /** A dict (its keys stored as own properties, `__proto__` included), or a set (as a list). */
  private braces(): unknown {
    this.i++;
    this.space();
    if (this.s[this.i] === "}") {
      this.i++;
      return {};
    }
    const dict: Record<string, unknown> = {};
    const set: unknown[] = [];
    let isDict: boolean | undefined;
    while (this.s[this.i] !== "}") {
      if (this.i >= this.s.length) this.fail("expected }");
      const key = this.value();
      this.space();
      isDict ??= this.s[this.i] === ":";
      if (isDict) {
        if (this.s[this.i] !== ":") this.fail("expected :");
        this.i++;
        if (typeof key !== "string" && typeof key !== "number") this.fail("unsupported dict key");
        Object.defineProperty(dict, String(key), {
          value: this.value(),
          enumerable: true,
          writable: true,
          configurable: true,
        });
      } else set.push(key);
      this.separator("}");
    }
    this.i++;
    return isDict ? dict : set;
  }

  private string(): string {
    const start = this.i;
    const quote = this.s[this.i]!;
    if (quote === '"') this.sawDoubleQuoted = true;
    this.i++;
    let out = "";
    for (;;) {
      const c = this.s[this.i++];
      if (c === undefined) this.fail("unterminated string");
      if (c === quote) break;
      if (c !== "\\") {
        out += c;
        continue;
      }
      const e = this.s[this.i++];
      if (quote === "'" && e !== "'" && this.ambiguousAt < 0) this.ambiguousAt = start;
      if (e !== undefined && e in ESCAPES) out += ESCAPES[e];
      else if (e === "x" || e === "u" || e === "U") {
        const len = e === "x" ? 2 : e === "u" ? 4 : 8;
        const hex = this.s.slice(this.i, this.i + len);
        if (!/^[0-9a-fA-F]+$/.test(hex) || hex.length !== len) this.fail("bad escape");
        const code = Number.parseInt(hex, 16);
        if (code > 0x10ffff) this.fail("escape beyond Unicode");
        out += String.fromCodePoint(code);
        this.i += len;
      } else this.fail("unknown escape");
    }
    // saferepr cuts long strings inside their quotes: `'hello...'`.
    if (this.options.argsrepr && out.endsWith("...")) {
      this.i = start;
      this.fail("truncated string");
    }
    return out;
  }

  private number(): number {
    // saferepr truncates numbers too: `22...`.
    if (/^[-+]?[\w.]*\.\.\./.test(this.s.slice(this.i, this.i + 64))) this.fail("truncated");
    const match = /^[-+]?(inf|nan|\d[\d_]*(\.\d*)?([eE][-+]?\d+)?|\.\d+([eE][-+]?\d+)?)/.exec(
      this.s.slice(this.i),
    );
    if (!match) this.fail("bad number");
    this.i += match[0].length;
    const text = match[0].replace(/_/g, "");
    if (/inf$/.test(text)) return text.startsWith("-") ? -Infinity : Infinity;
    if (/nan$/.test(text)) return Number.NaN;
    return Number(text);
  }
}

function parse(text: string, options: ParseOptions): unknown {
  const parser = new Parser(text, options);
  try {
    return parser.parse();
  } catch (error) {
    if (error instanceof CeleriacError) throw error;
    // Whatever else goes wrong (a stack overflow on a pathological text) is the same refusal.
    throw new CeleriacError("INVALID_ARGUMENTS", `not a Python literal (${String(error)})`, {
      cause: error,
    });
  }
}

/** Parse a Python literal; throws a CeleriacError (code INVALID_ARGUMENTS) when it is not one. */
export function parsePythonLiteral(text: string): unknown {
  return parse(text, {});
}

/**
 * Positional args from an `argsrepr`, or undefined when they cannot be recovered for sure:
 * truncated, not a literal, or a backslash escape saferepr makes ambiguous (see the top).
 */
export function argsFromRepr(text: string | null | undefined): unknown[] | undefined {
  if (!text) return text === "" ? [] : undefined;
  try {
    const value = parse(text, { argsrepr: true });
    return Array.isArray(value) ? value : [value];
  } catch {
    return undefined;
  }
}

/** Keyword args from a `kwargsrepr`, or undefined when they cannot be recovered for sure. */
export function kwargsFromRepr(
  text: string | null | undefined,
): Record<string, unknown> | undefined {
  if (!text) return text === "" ? {} : undefined;
  try {
    const value = parse(text, { argsrepr: true });
    return value !== null && typeof value === "object" && !Array.isArray(value)
      ? (value as Record<string, unknown>)
      : undefined;
  } catch {
    return undefined;
  }
}
