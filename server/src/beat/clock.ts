/**
 * Time as the beat sees it. Injectable so that tests can run a simulated day in milliseconds:
 * every decision the beat makes reads `now()`, and every wait goes through `sleep()`.
 */
export interface Clock {
  /** Milliseconds since the epoch. */
  now(): number;
  /** Resolve after `ms`, or as soon as `signal` aborts. Never rejects. */
  sleep(ms: number, signal?: AbortSignal): Promise<void>;
}

export const systemClock: Clock = {
  now: () => Date.now(),
  sleep: (ms, signal) =>
    new Promise<void>((resolve) => {
      if (signal?.aborted) return resolve();
      const done = () => {
        clearTimeout(timer);
        signal?.removeEventListener("abort", done);
        resolve();
      };
      const timer = setTimeout(done, Math.max(0, ms));
      signal?.addEventListener("abort", done, { once: true });
    }),
};

/** A clock that moves only when told to; sleepers wake when time passes their deadline. */
export class ManualClock implements Clock {
  private sleepers: Array<{ until: number; wake: () => void }> = [];

  constructor(private current: number) {}

  now(): number {
    return this.current;
  }

  sleep(ms: number, signal?: AbortSignal): Promise<void> {
    return new Promise<void>((resolve) => {
      if (signal?.aborted || ms <= 0) return resolve();
      const sleeper = {
        until: this.current + ms,
        wake: () => {
          this.sleepers = this.sleepers.filter((s) => s !== sleeper);
          resolve();
        },
      };
      this.sleepers.push(sleeper);
      signal?.addEventListener("abort", sleeper.wake, { once: true });
    });
  }

  set(time: number): void {
    this.current = time;
    for (const s of this.sleepers.filter((s) => s.until <= time)) s.wake();
  }

  advance(ms: number): void {
    this.set(this.current + ms);
  }
}
