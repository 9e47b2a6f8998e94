/**
 * Locks in Redis, shared by every worker that uses the same Redis: `SET NX PX` with the holder as
 * value (a random nonce makes it the owner token), renewed and released by scripts that compare
 * the value first, so a holder whose lock expired and was taken by another never frees or
 * extends the new one.
 */
import { randomUUID } from "node:crypto";
import { Redis } from "ioredis";
import { type Logger, pino } from "pino";
import { closeRedis } from "../brokers/redis/close.js";
import { redact } from "../brokers/url.js";
import {
  type Acquired,
  type LockHolder,
  type LockInfo,
  type LockStore,
  lockInfo,
  parseHolder,
  type StoredHolder,
} from "./store.js";

const ACQUIRE = `
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then return false end
return redis.call('GET', KEYS[1])
`;
const EXTEND = `
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0
`;
const RELEASE = `
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
`;

type Scripted = Redis & {
  celeriacLockAcquire(key: string, value: string, ttlMs: number): Promise<string | null>;
  celeriacLockExtend(key: string, value: string, ttlMs: number): Promise<number>;
  celeriacLockRelease(key: string, value: string): Promise<number>;
};

/** How often the store may report its connection's errors (they repeat on every reconnection). */
const REPORT_EVERY_MS = 30_000;

export class RedisLockStore implements LockStore {
  readonly displayUrl: string;
  private readonly redis: Scripted;
  private lastReport = 0;
  private unreported = 0;

  constructor(
    url: string,
    private readonly prefix = "celeriac:lock:",
    /** Where connection errors are reported, at most one every 30 s. Default: warnings to stdout. */
    private readonly logger: Logger = pino({ level: "warn" }),
  ) {
    this.displayUrl = redact(url);
    // Commands wait through reconnections, as the broker's do: a Redis restart delays tasks, never fails them.
    const redis = new Redis(url, {
      lazyConnect: true,
      maxRetriesPerRequest: null,
      connectionName: "celeriac:locks",
    });
    redis.on("error", (error: Error) => this.report(error));
    redis.defineCommand("celeriacLockAcquire", { numberOfKeys: 1, lua: ACQUIRE });
    redis.defineCommand("celeriacLockExtend", { numberOfKeys: 1, lua: EXTEND });
    redis.defineCommand("celeriacLockRelease", { numberOfKeys: 1, lua: RELEASE });
    this.redis = redis as Scripted;
  }

  /** A connection error: reported now and then, with how many were not, never thrown. */
  private report(error: Error): void {
    const now = Date.now();
    if (now - this.lastReport < REPORT_EVERY_MS) {
      this.unreported++;
      return;
    }
    this.lastReport = now;
    const unreported = this.unreported;
    this.unreported = 0;
    this.logger.warn(
      { err: error, locks: this.displayUrl, ...(unreported ? { unreported } : {}) },
      "unique-task lock store: Redis connection error (commands wait for it to come back)",
    );
  }

  async acquire(key: string, holder: LockHolder, ttlMs: number): Promise<Acquired> {
    const stored: StoredHolder = { ...holder, nonce: randomUUID(), acquiredAt: Date.now() };
    const value = JSON.stringify(stored);
    const current = await this.redis.celeriacLockAcquire(this.prefix + key, value, ttlMs);
    if (current === null) return { acquired: true, token: value };
    return { acquired: false, holder: await this.get(key) };
  }

  async extend(key: string, token: string, ttlMs: number): Promise<boolean> {
    return (await this.redis.celeriacLockExtend(this.prefix + key, token, ttlMs)) === 1;
  }

  async release(key: string, token?: string): Promise<boolean> {
    const removed =
      token === undefined
        ? await this.redis.del(this.prefix + key)
        : await this.redis.celeriacLockRelease(this.prefix + key, token);
    return removed === 1;
  }

  async get(key: string): Promise<LockInfo | null> {
    const [[, value], [, pttl]] = (await this.redis
      .multi()
      .get(this.prefix + key)
      .pttl(this.prefix + key)
      .exec()) as [[unknown, string | null], [unknown, number]];
    const stored = parseHolder(value);
    return stored && pttl > 0 ? lockInfo(key, stored, Date.now() + pttl) : null;
  }

  async list(): Promise<LockInfo[]> {
    // SCAN may return a key twice; a set keeps one of each.
    const found = new Set<string>();
    let cursor = "0";
    do {
      const [next, batch] = await this.redis.scan(cursor, "MATCH", `${this.prefix}*`, "COUNT", 500);
      cursor = next;
      for (const k of batch) found.add(k);
    } while (cursor !== "0");
    const keys = [...found];
    const locks: LockInfo[] = [];
    for (let i = 0; i < keys.length; i += 500) {
      const slice = keys.slice(i, i + 500);
      const pipeline = this.redis.pipeline();
      for (const k of slice) pipeline.get(k).pttl(k);
      const replies = (await pipeline.exec()) ?? [];
      const now = Date.now();
      slice.forEach((k, j) => {
        const stored = parseHolder(replies[2 * j]?.[1] as string | null);
        const pttl = replies[2 * j + 1]?.[1] as number;
        if (stored && pttl > 0)
          locks.push(lockInfo(k.slice(this.prefix.length), stored, now + pttl));
      });
    }
    return locks.sort((a, b) => a.acquiredAt.getTime() - b.acquiredAt.getTime());
  }

  async close(): Promise<void> {
    closeRedis(this.redis);
  }
}
