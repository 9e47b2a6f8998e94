/**
 * Unique-task locks, as the fleet's workers hold them: who holds what, until when, and freeing
 * one by hand (operator; audited). They are read through the server's own app (`app.locks`), so
 * the server sees the locks its broker or result backend keeps (Redis), or those of this process
 * on the in-memory broker (dev mode): the same store the workers find from the same URLs.
 */
import { type App, CeleriacError, type LockInfo } from "@celeriac/sdk";
import type { Viewer } from "../auth/roles.js";
import { NotFoundError, UnavailableError } from "../errors.js";
import type { AuditLog } from "./audit.js";
import type { Redaction } from "./redaction.js";

/** A lock as the API shows it: its key hides the arguments of redacted tasks. */
export interface LockView extends LockInfo {
  /** The key to release it by: the lock key, or its redacted form (see `shownKey`). */
  key: string;
}

/**
 * The Redis store waits through reconnections (a worker's lock must not fail on a Redis
 * restart); a caller of the API would rather hear that it is away.
 */
const STORE_TIMEOUT_MS = 5000;

export class LockService {
  constructor(
    private readonly app: App,
    private readonly audit: AuditLog,
    private readonly redaction: Redaction,
  ) {}

  /** Every lock held now, oldest first. */
  async list(): Promise<LockView[]> {
    return (await this.store(() => this.app.locks.list())).map((lock) => this.view(lock));
  }

  /**
   * Free a lock whoever holds it, by the key `list` shows; returns what was held. Its holder
   * keeps running; another run of the key may start at once.
   */
  release(viewer: Viewer | null, key: string): Promise<LockView> {
    return this.audit.record(viewer, "releaseLock", { key: this.auditKey(key) }, async () => {
      const lock = await this.find(key);
      if (!lock || !(await this.store(() => this.app.locks.release(lock.key))))
        throw new NotFoundError("lock", this.auditKey(key));
      return this.view(lock);
    });
  }

  /**
   * A redacted task's lock key carries its arguments (`billing.charge:["4242…"]`), so it is
   * shown as `<task>:[redacted]:<holder's task id>` instead: unique while held, and enough to
   * release it. A key of the task name alone hides nothing and is shown as it is.
   */
  private shownKey(lock: LockInfo): string {
    if (lock.key === lock.task || !this.redaction.hides(lock.task)) return lock.key;
    return `${lock.task}:[redacted]:${lock.taskId}`;
  }

  /**
   * A key as the audit trail (and an error) may repeat it: a redacted task's raw key, which a
   * caller may type though `list` never shows it, loses its arguments.
   */
  private auditKey(key: string): string {
    if (key.includes(":[redacted]:")) return key;
    // Task names may hold colons themselves: any prefix ending at one may be the task's name.
    for (let i = key.indexOf(":"); i > 0; i = key.indexOf(":", i + 1))
      if (this.redaction.hides(key.slice(0, i))) return `${key.slice(0, i)}:[redacted]`;
    return key;
  }

  private view(lock: LockInfo): LockView {
    return { ...lock, key: this.shownKey(lock) };
  }

  /**
   * The lock a shown key names. A redacted task's raw key finds nothing, as if typed wrong:
   * otherwise an operator could test guesses of its hidden arguments.
   */
  private async find(key: string): Promise<LockInfo | null> {
    const held = await this.store(() => this.app.locks.get(key));
    if (held && this.shownKey(held) === key) return held;
    if (!key.includes(":[redacted]:")) return null;
    const locks = await this.store(() => this.app.locks.list());
    return locks.find((lock) => this.shownKey(lock) === key) ?? null;
  }

  private async store<T>(call: () => Promise<T>): Promise<T> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new UnavailableError("the lock store did not answer within 5 s")),
        STORE_TIMEOUT_MS,
      );
    });
    try {
      return await Promise.race([call(), timeout]);
    } catch (error) {
      if (error instanceof CeleriacError && error.code === "NO_LOCK_STORE")
        throw new UnavailableError(
          "no lock store: the control plane reads unique-task locks from its broker or result backend when it is Redis (or the in-memory broker), and it has neither",
        );
      throw error;
    } finally {
      clearTimeout(timer);
    }
  }
}
