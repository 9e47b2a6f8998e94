/**
 * How a run is stopped from outside (terminate, time limit, shutdown). The AbortController
 * behind `signal` is made only when a task reads its signal or a run is aborted, because most
 * runs need neither and a controller per task is a measurable cost at thousands of tasks/s.
 */
export class Cancellation {
  private controller: AbortController | undefined;
  private abortReason: unknown;
  private isAborted = false;
  private listener: ((reason: unknown) => void) | undefined;

  /** The signal handed to the task (`ctx.signal`). */
  get signal(): AbortSignal {
    if (!this.controller) {
      this.controller = new AbortController();
      if (this.isAborted) this.controller.abort(this.abortReason);
    }
    return this.controller.signal;
  }

  get aborted(): boolean {
    return this.isAborted;
  }

  get reason(): unknown {
    return this.abortReason;
  }

  /**
   * The signal aborts once, with the first reason. The runner hears every reason, though: a task
   * that carries on after its soft time limit must still be stopped by the hard limit, a
   * terminate or a shutdown.
   */
  abort(reason: unknown): void {
    if (!this.isAborted) {
      this.isAborted = true;
      this.abortReason = reason;
      this.controller?.abort(reason);
    }
    this.listener?.(reason);
  }

  /** The runner's own hook (one per run), called at once if already aborted. */
  onAbort(listener: (reason: unknown) => void): void {
    this.listener = listener;
    if (this.isAborted) listener(this.abortReason);
  }
}
