/**
 * A pool runs tasks somewhere and reports their outcome; the worker decides what runs when.
 * The async pool runs them in this process's event loop; the isolated pools (pool/isolated/)
 * run them in worker threads or child processes.
 */
import type { RegisteredTask } from "../../app.js";
import type { Cancellation } from "../cancellation.js";
import { type ExecutorEnv, execute, type Ran } from "../executor.js";
import type { Request } from "../request.js";

export interface Pool {
  readonly kind: string;
  /** How many tasks may run at once. */
  size: number;
  /**
   * Run one task. Aborting `cancellation` with a TaskRevokedError (terminate) or a
   * TimeLimitExceeded ends the run; isolated pools stop the code for real by replacing the
   * thread or process. A thread or process that dies mid-task yields a failure with a
   * WorkerLostError. The run's hooks are returned with its outcome, for the completer to run
   * once the outcome is stored (where the task ran: isolated pools ask their child).
   */
  run(request: Request, task: RegisteredTask, cancellation: Cancellation): Promise<Ran>;
  /** Start (isolated pools spawn their threads or processes); idempotent. */
  start(): Promise<void>;
  /** Stop every thread or process; idempotent. */
  close(): Promise<void>;
  /** Pids of the processes running tasks (for `stats`). */
  pids(): number[];
}

export class AsyncPool implements Pool {
  readonly kind = "async";

  constructor(
    public size: number,
    private readonly env: ExecutorEnv,
  ) {}

  run(request: Request, task: RegisteredTask, cancellation: Cancellation): Promise<Ran> {
    return execute(request, task, this.env, cancellation);
  }

  async start(): Promise<void> {}

  async close(): Promise<void> {}

  pids(): number[] {
    return [process.pid];
  }
}
