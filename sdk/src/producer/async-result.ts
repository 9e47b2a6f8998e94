/**
 * A handle on a sent task's outcome, read from the result backend.
 */
import type { ResultBackend, ResultMeta } from "../backends/backend.js";
import { CeleriacError } from "../errors.js";
import { decodeException } from "../protocol/exceptions.js";
import { EXCEPTION_STATES, PROPAGATE_STATES, READY_STATES, TaskState } from "../protocol/states.js";

export interface GetOptions {
  /** Seconds to wait; a TIMEOUT CeleriacError after it. Default: wait forever. */
  timeout?: number;
  /** Re-throw the task's failure. Default: true; when false a failure's error is returned instead. */
  propagate?: boolean;
  signal?: AbortSignal;
}

/** The backend a result is read from: given, or found on first use (connecting the app). */
export type BackendSource = ResultBackend | null | (() => Promise<ResultBackend | null>);

export class AsyncResult<R = unknown> {
  constructor(
    readonly id: string,
    private readonly backend: BackendSource,
  ) {}

  private async requireBackend(): Promise<ResultBackend> {
    const backend = typeof this.backend === "function" ? await this.backend() : this.backend;
    if (!backend) {
      throw new CeleriacError(
        "NO_BACKEND",
        "no result backend is configured: set resultBackend (or RESULT_BACKEND) to read results",
      );
    }
    return backend;
  }

  /** The stored metadata, or null while nothing is stored. */
  async meta(): Promise<ResultMeta | null> {
    return (await this.requireBackend()).get(this.id);
  }

  /** PENDING until the backend knows the task. */
  async state(): Promise<TaskState | string> {
    return (await this.meta())?.status ?? TaskState.PENDING;
  }

  async ready(): Promise<boolean> {
    return READY_STATES.has(await this.state());
  }

  async successful(): Promise<boolean> {
    return (await this.state()) === TaskState.SUCCESS;
  }

  async failed(): Promise<boolean> {
    return (await this.state()) === TaskState.FAILURE;
  }

  /** The result when it succeeded, the error when it failed or is retrying, else the state's info. */
  async info(): Promise<unknown> {
    const meta = await this.meta();
    if (!meta) return null;
    return EXCEPTION_STATES.has(meta.status)
      ? decodeException(meta.result, meta.traceback)
      : meta.result;
  }

  /**
   * Wait for the task to finish and return its result; a failure is re-thrown with its remote
   * type, message and traceback (`RemoteTaskError`, or Celery's own error classes).
   */
  async get(options: GetOptions = {}): Promise<R> {
    const meta = await (await this.requireBackend()).waitForReady(this.id, {
      ...(options.timeout !== undefined ? { timeout: options.timeout * 1000 } : {}),
      ...(options.signal ? { signal: options.signal } : {}),
    });
    if (PROPAGATE_STATES.has(meta.status)) {
      const error = decodeException(meta.result, meta.traceback);
      if (options.propagate ?? true) throw error;
      return error as R;
    }
    return meta.result as R;
  }

  /** Delete the stored result. */
  async forget(): Promise<void> {
    await (await this.requireBackend()).forget(this.id);
  }

  toString() {
    return this.id;
  }
}
