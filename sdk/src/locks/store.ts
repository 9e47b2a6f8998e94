/**
 * Where unique-task locks live. A lock is one key with an owner token and an expiry: taken only
 * when free, renewed and released only by its owner (an operator may release any), and gone by
 * itself when its owner stops renewing it.
 */

/** Who holds a lock, as `app.locks.list()` shows it. */
export interface LockInfo {
  /** The lock key: the task name, then what made the run unique (`stats.album:["a1"]`). */
  key: string;
  /** The task name of the holder. */
  task: string;
  /** The task id of the holder. */
  taskId: string;
  /** The node name of the worker running it. */
  worker: string;
  acquiredAt: Date;
  /** When the lock frees itself unless its holder renews it first. */
  expiresAt: Date;
}

export type LockHolder = Pick<LockInfo, "task" | "taskId" | "worker">;

export type Acquired =
  | { acquired: true /** Proof of ownership, for renewing and releasing. */; token: string }
  | {
      acquired: false /** The current holder (null if it vanished meanwhile). */;
      holder: LockInfo | null;
    };

export interface LockStore {
  /** For logs and errors: where the locks are (password hidden). */
  readonly displayUrl: string;
  /** Take the lock if nobody holds it, for `ttlMs`. */
  acquire(key: string, holder: LockHolder, ttlMs: number): Promise<Acquired>;
  /** Push the expiry to `ttlMs` from now; false when the lock is no longer the token's. */
  extend(key: string, token: string, ttlMs: number): Promise<boolean>;
  /** Release: the token's lock only, or any holder's without a token; true when one was removed. */
  release(key: string, token?: string): Promise<boolean>;
  get(key: string): Promise<LockInfo | null>;
  list(): Promise<LockInfo[]>;
  close(): Promise<void>;
}

/** The stored form of a holder: random per acquisition, so it doubles as the owner token. */
export interface StoredHolder extends LockHolder {
  nonce: string;
  /** Unix milliseconds. */
  acquiredAt: number;
}

export function lockInfo(key: string, stored: StoredHolder, expiresAt: number): LockInfo {
  return {
    key,
    task: stored.task,
    taskId: stored.taskId,
    worker: stored.worker,
    acquiredAt: new Date(stored.acquiredAt),
    expiresAt: new Date(expiresAt),
  };
}

export function parseHolder(text: string | null): StoredHolder | null {
  if (!text) return null;
  try {
    const v = JSON.parse(text) as StoredHolder;
    return v && typeof v.taskId === "string" ? v : null;
  } catch {
    return null;
  }
}
