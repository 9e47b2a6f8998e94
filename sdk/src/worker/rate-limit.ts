/**
 * Per-worker rate limits, as Celery applies them: a token bucket per task type with a capacity
 * of one token, refilled at the task's rate. Tasks waiting for a token stay in the worker and do
 * not hold up other task types.
 */
import { CeleriacError } from "../errors.js";

const PERIODS: Record<string, number> = { s: 1, m: 60, h: 3600 };

/** Tasks per second for a Celery rate string (`"10/s"`, `"100/m"`, `"1000/h"`, `"5"`); 0 or null = no limit. */
export function parseRate(rate: string | number | null | undefined): number {
  if (rate === null || rate === undefined || rate === "") return 0;
  if (typeof rate === "number") return rate;
  const m = /^\s*(\d+(?:\.\d+)?)\s*(?:\/\s*([smh]))?\s*$/.exec(rate);
  if (!m)
    throw new CeleriacError("INVALID_OPTION", `Invalid rate limit string: ${JSON.stringify(rate)}`);
  return Number(m[1]) / PERIODS[m[2] ?? "s"]!;
}

export class TokenBucket {
  private tokens: number;
  private last: number;

  constructor(
    readonly ratePerSecond: number,
    private readonly capacity = 1,
    now = performance.now(),
  ) {
    this.tokens = capacity;
    this.last = now;
  }

  private refill(now: number): void {
    this.tokens = Math.min(
      this.capacity,
      this.tokens + ((now - this.last) / 1000) * this.ratePerSecond,
    );
    this.last = now;
  }

  /** Take a token if one is there; otherwise milliseconds until one is. */
  take(now = performance.now()): number {
    this.refill(now);
    if (this.tokens >= 1) {
      this.tokens -= 1;
      return 0;
    }
    return Math.ceil(((1 - this.tokens) / this.ratePerSecond) * 1000);
  }
}
