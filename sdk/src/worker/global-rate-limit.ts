/**
 * Fleet-wide rate limits: one token bucket per task type in Redis, shared by every worker, taken
 * in a single atomic script that reads Redis's own clock (so workers' clocks don't matter).
 * Celery has only per-worker limits; a third-party API's quota needs the whole fleet's.
 */
import { setTimeout as sleep } from "node:timers/promises";
import { Redis } from "ioredis";
import { closeRedis } from "../brokers/redis/close.js";

const TAKE = `
local rate = tonumber(ARGV[1])
local capacity = tonumber(ARGV[2])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local tokens = tonumber(redis.call('HGET', KEYS[1], 'tokens') or capacity)
local last = tonumber(redis.call('HGET', KEYS[1], 'ts') or now)
tokens = math.min(capacity, tokens + (now - last) * rate / 1000)
local wait = 0
if tokens >= 1 then
  tokens = tokens - 1
else
  wait = math.ceil((1 - tokens) * 1000 / rate)
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'ts', now)
redis.call('PEXPIRE', KEYS[1], math.ceil(capacity * 1000 / rate) + 60000)
return wait
`;

/** Tokens a fleet-wide bucket holds at `perSecond` (see `take`). */
export function burstOf(perSecond: number): number {
  return Math.max(2, Math.ceil(perSecond / 10));
}

export class GlobalRateLimiter {
  private readonly redis: Redis;

  constructor(
    url: string,
    private readonly prefix = "celeriac:rate:",
  ) {
    this.redis = new Redis(url, {
      lazyConnect: true,
      maxRetriesPerRequest: null,
      connectionName: "celeriac:rate",
    });
    this.redis.defineCommand("celeriacTakeToken", { numberOfKeys: 1, lua: TAKE });
  }

  /**
   * Take a token for `task` at `perSecond`; resolves with 0, or the milliseconds to wait before
   * asking again. The bucket holds a tenth of a second's tokens (at least two): the workers
   * asking for the next token wake a little late (timers, round trips), and with room for one
   * token only, what refilled meanwhile would be lost and the fleet held below its limit. The
   * price is a burst of that many starts after the limit was idle.
   */
  async take(task: string, perSecond: number, capacity = burstOf(perSecond)): Promise<number> {
    const take = (
      this.redis as unknown as {
        celeriacTakeToken(key: string, rate: number, capacity: number): Promise<number>;
      }
    ).celeriacTakeToken;
    return Number(await take.call(this.redis, `${this.prefix}${task}`, perSecond, capacity));
  }

  /**
   * Wait until a token is taken (true), the limit is removed (false: `perSecond()` is 0), or the
   * signal aborts (throws). The rate is read again at least every 250 ms, so a change made at run
   * time applies to a wait under way.
   */
  async acquire(task: string, perSecond: () => number, signal?: AbortSignal): Promise<boolean> {
    for (;;) {
      signal?.throwIfAborted();
      const rate = perSecond();
      if (rate <= 0) return false;
      const wait = await this.take(task, rate);
      if (wait === 0) return true;
      // An abort ends the wait early (and is thrown above); the timer's listener goes with it.
      await sleep(Math.min(wait, 250), undefined, signal ? { signal } : undefined).catch(() => {});
    }
  }

  async close(): Promise<void> {
    closeRedis(this.redis);
  }
}
