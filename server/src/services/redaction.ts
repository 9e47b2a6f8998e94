/**
 * Hides the arguments and results of tasks that carry secrets (`REDACT_TASKS='billing.*'`), in
 * every API answer (task rows, timelines, live streams, workers' active tasks), in text search,
 * and in the audit trail. Globs: `*` matches any run of characters. Exceptions and tracebacks are
 * shown: they are what an operator needs to act on a failure.
 */
import type { Prisma } from "../generated/prisma/client.js";

export const REDACTED = "[redacted]";

/** The fields of events and inspect replies that carry a task's data. */
const DATA_FIELDS = ["args", "kwargs", "result", "argsrepr", "kwargsrepr"];

export class Redaction {
  private readonly globs: string[];
  private readonly patterns: RegExp[];

  constructor(globs: readonly string[]) {
    this.globs = globs.map((g) => g.trim()).filter(Boolean);
    this.patterns = this.globs.map(
      (g) =>
        new RegExp(
          `^${g
            .split("*")
            .map((part) => part.replace(/[.+?^${}()|[\]\\]/g, "\\$&"))
            .join(".*")}$`,
        ),
    );
  }

  get enabled(): boolean {
    return this.patterns.length > 0;
  }

  /** True when any of the names is a redacted task's (names are compared trimmed). */
  hides(...taskNames: Array<string | null | undefined>): boolean {
    return taskNames.some((name) => name != null && this.patterns.some((p) => p.test(name.trim())));
  }

  /** The value itself, or the redaction marker when the task's data is hidden. */
  apply<T>(taskName: string | null | undefined, value: T): T | typeof REDACTED {
    return value != null && this.hides(taskName) ? REDACTED : value;
  }

  /** An object (event fields, an inspect reply entry, a mutation's input) with its data fields hidden. */
  fields<T extends Record<string, unknown>>(
    taskNames: Array<string | null | undefined>,
    value: T,
  ): T {
    return this.hides(...taskNames) ? this.mask(value) : value;
  }

  /** The object with its data fields hidden, whatever its task. */
  mask<T extends Record<string, unknown>>(value: T): T {
    const out: Record<string, unknown> = { ...value };
    for (const key of DATA_FIELDS) if (out[key] != null) out[key] = REDACTED;
    return out as T;
  }

  /**
   * A condition excluding redacted tasks, for text search (which would otherwise let a caller
   * guess hidden arguments one character at a time). Globs of other shapes than `a*`, `*a`,
   * `*a*` or `a` exclude on their longest literal part, which may hide a little more.
   */
  searchExclusion(): Prisma.TaskWhereInput | undefined {
    if (!this.enabled) return undefined;
    const conditions: Prisma.TaskWhereInput[] = this.globs.map((g) => {
      const parts = g.split("*");
      if (parts.length === 1) return { name: g };
      if (parts.length === 2 && parts[1] === "") return { name: { startsWith: parts[0] } };
      if (parts.length === 2 && parts[0] === "") return { name: { endsWith: parts[1] } };
      const longest = parts.reduce((a, b) => (b.length > a.length ? b : a), "");
      return { name: { contains: longest } };
    });
    // A task whose name is not known yet cannot be told apart: it is left out too.
    return { NOT: { OR: [...conditions, { name: null }] } };
  }
}
