/** The error of a unique task's run that found its lock held (`onConflict: "fail"` or `"retry"`). */
import { CeleriacError } from "../errors.js";
import type { LockInfo } from "./store.js";

export class UniqueConflictError extends CeleriacError {
  /** Python readers see `celeriac.exceptions.UniqueConflictError`. */
  static readonly excModule = "celeriac.exceptions";

  constructor(
    readonly key: string,
    readonly holder: LockInfo | null,
  ) {
    super(
      "UNIQUE_CONFLICT",
      holder
        ? `lock ${key} is held by ${holder.task}[${holder.taskId}] on ${holder.worker} until ${holder.expiresAt.toISOString()}`
        : `lock ${key} is held`,
    );
  }
}
