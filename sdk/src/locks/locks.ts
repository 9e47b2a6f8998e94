/**
 * `app.locks`: the unique-task locks of an app, to list (who holds what, until when) and to
 * release by hand. The store is chosen once from the app's options and opened on first use.
 */
import type { Logger } from "pino";
import { MemoryBroker } from "../brokers/memory/broker.js";
import { isRedisUrl as isRedis, redact, redisUrlOf } from "../brokers/url.js";
import { CeleriacError } from "../errors.js";
import type { AppOptions, ResolvedAppOptions } from "../options.js";
import { MemoryLockStore } from "./memory.js";
import type { LockInfo, LockStore } from "./store.js";

const isMemory = (u: unknown): u is string => typeof u === "string" && /^memory:/i.test(u);

/** Check the `locks` app option where the app is built. */
export function validateLocksOption(locks: AppOptions["locks"]): void {
  if (locks === undefined || typeof locks === "object") return;
  if (!isRedis(locks) && !isMemory(locks))
    throw new CeleriacError(
      "INVALID_URL",
      `unsupported locks URL ${JSON.stringify(redact(String(locks)))}: use redis://, rediss:// or memory://`,
    );
}

/**
 * Where an app's locks live, shared by all its workers: the `locks` option, else the broker when
 * it is Redis, else the result backend when it is Redis (a URL or an instance built from one),
 * else (in-memory broker) this process. `logger` hears about the store's connection trouble.
 */
export async function openLockStore(
  options: ResolvedAppOptions,
  logger?: Logger,
): Promise<LockStore> {
  const { locks, broker, resultBackend } = options;
  if (typeof locks === "object") return locks;
  const url = locks ?? redisUrlOf(broker) ?? redisUrlOf(resultBackend);
  if (isRedis(url)) {
    const { RedisLockStore } = await import("./redis.js");
    return new RedisLockStore(url, undefined, logger);
  }
  if (isMemory(url)) return new MemoryLockStore(url);
  if (isMemory(broker)) return new MemoryLockStore(broker);
  if (broker instanceof MemoryBroker) return new MemoryLockStore(broker.displayUrl);
  throw new CeleriacError(
    "NO_LOCK_STORE",
    "unique tasks need a lock store every worker shares, and this app has none: its broker is " +
      `${typeof broker === "string" ? redact(broker) : broker.displayUrl} and its result backend ` +
      `${resultBackend === null ? "none" : typeof resultBackend === "string" ? redact(resultBackend) : resultBackend.displayUrl}. ` +
      'Set the app\'s `locks` option to a Redis URL (createApp({ locks: "redis://host:6379/0" })).',
  );
}

export class Locks {
  private opened: Promise<LockStore> | undefined;

  constructor(private readonly options: () => ResolvedAppOptions) {}

  /**
   * @internal The store, opened on first use; rejects with NO_LOCK_STORE when the app has none.
   * The logger of the first caller (a worker's) hears about the store's connection trouble.
   */
  store(logger?: Logger): Promise<LockStore> {
    if (!this.opened) {
      this.opened = openLockStore(this.options(), logger);
      this.opened.catch(() => {
        this.opened = undefined;
      });
    }
    return this.opened;
  }

  /** Every lock held now, oldest first: key, task name and id, worker, when taken, when it expires. */
  async list(): Promise<LockInfo[]> {
    return (await this.store()).list();
  }

  /** The lock of a key, or null when nobody holds it. */
  async get(key: string): Promise<LockInfo | null> {
    return (await this.store()).get(key);
  }

  /**
   * Free a lock whoever holds it; true when there was one. Its holder keeps running (and is told
   * in its log when it next renews), so another run of the same key may start at once.
   */
  async release(key: string): Promise<boolean> {
    return (await this.store()).release(key);
  }

  /** Close the store's connection; it opens again on next use. */
  async close(): Promise<void> {
    const opened = this.opened;
    this.opened = undefined;
    const store = await opened?.catch(() => undefined);
    // A store given in the options belongs to the caller, who closes it.
    if (store && store !== this.options().locks) await store.close();
  }
}
