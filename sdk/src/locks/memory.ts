/**
 * Locks inside this process, for apps on the in-memory broker (tests, dev mode). Stores built
 * with the same name share their locks, as memory brokers of one name share their queues.
 */
import { randomUUID } from "node:crypto";
import { memoryName } from "../brokers/url.js";
import {
  type Acquired,
  type LockHolder,
  type LockInfo,
  type LockStore,
  lockInfo,
  type StoredHolder,
} from "./store.js";

interface Entry {
  holder: StoredHolder;
  token: string;
  expiresAt: number;
}

const shared = new Map<string, Map<string, Entry>>();

export class MemoryLockStore implements LockStore {
  readonly displayUrl: string;
  private readonly locks: Map<string, Entry>;

  constructor(url = "memory://") {
    const { name, displayUrl } = memoryName(url);
    this.displayUrl = displayUrl;
    let locks = shared.get(name);
    if (!locks) {
      locks = new Map();
      shared.set(name, locks);
    }
    this.locks = locks;
  }

  /** The live entry of a key; an expired one is removed on sight, as Redis would have. */
  private live(key: string, now = Date.now()): Entry | undefined {
    const entry = this.locks.get(key);
    if (entry && entry.expiresAt <= now) {
      this.locks.delete(key);
      return undefined;
    }
    return entry;
  }

  async acquire(key: string, holder: LockHolder, ttlMs: number): Promise<Acquired> {
    const now = Date.now();
    const current = this.live(key, now);
    if (current)
      return { acquired: false, holder: lockInfo(key, current.holder, current.expiresAt) };
    const token = randomUUID();
    this.locks.set(key, {
      holder: { ...holder, nonce: token, acquiredAt: now },
      token,
      expiresAt: now + ttlMs,
    });
    return { acquired: true, token };
  }

  async extend(key: string, token: string, ttlMs: number): Promise<boolean> {
    const entry = this.live(key);
    if (entry?.token !== token) return false;
    entry.expiresAt = Date.now() + ttlMs;
    return true;
  }

  async release(key: string, token?: string): Promise<boolean> {
    const entry = this.live(key);
    if (!entry || (token !== undefined && entry.token !== token)) return false;
    return this.locks.delete(key);
  }

  async get(key: string): Promise<LockInfo | null> {
    const entry = this.live(key);
    return entry ? lockInfo(key, entry.holder, entry.expiresAt) : null;
  }

  async list(): Promise<LockInfo[]> {
    const now = Date.now();
    const locks: LockInfo[] = [];
    for (const key of [...this.locks.keys()]) {
      const entry = this.live(key, now);
      if (entry) locks.push(lockInfo(key, entry.holder, entry.expiresAt));
    }
    return locks.sort((a, b) => a.acquiredAt.getTime() - b.acquiredAt.getTime());
  }

  async close(): Promise<void> {}
}
