/**
 * Leader election: a session-level advisory lock on a connection of the beat's own. Whoever holds
 * the lock leads; everyone else retries every second. The lock is tied to the connection, so:
 * - a leader that dies (crash, kill -9, lost host) loses it when Postgres sees the connection go:
 *   at once for a closed socket, and within `sessionTimeoutMs` for a silent one (the session sets
 *   `idle_session_timeout`, and the leader speaks on it every heartbeat);
 * - the leader decides (fires) in transactions on that same connection, so a decision can only
 *   commit while its maker still holds the lock: a leader that lost it cannot fire.
 * On PGlite (dev mode) the database belongs to one process; the lock is taken all the same.
 */
import type { Logger } from "pino";
import type { Database, Session, Sql } from "../db/database.js";

export interface ElectionOptions {
  /** The advisory lock key all beats of one database share. */
  lockKey: number;
  /** How long a silent leader keeps the lock (server-side idle timeout on its session). */
  sessionTimeoutMs: number;
  /** Shown in pg_stat_activity as the session's application_name. */
  name: string;
}

export class Election {
  private session: Session | undefined;
  private opening: Promise<Session> | undefined;
  private leader = false;
  private lostHandlers: Array<() => void> = [];
  /** When the session last answered (real time). */
  private spokeAt = Number.NEGATIVE_INFINITY;

  constructor(
    private readonly db: Database,
    private readonly log: Logger,
    private readonly options: ElectionOptions,
  ) {}

  get leading(): boolean {
    return this.leader;
  }

  /** Milliseconds since the session last answered: a leader that spoke recently needs no heartbeat. */
  get quietMs(): number {
    return Date.now() - this.spokeAt;
  }

  /** Called when leadership is lost without resigning (the session died). */
  onLost(handler: () => void): void {
    this.lostHandlers.push(handler);
  }

  /** Try to become the leader (or confirm it); returns whether this instance leads. */
  async campaign(): Promise<boolean> {
    try {
      const session = await this.open();
      if (this.leader) {
        await session.query("SELECT 1");
        this.spokeAt = Date.now();
        return true;
      }
      const [row] = await session.query<{ locked: boolean }>(
        "SELECT pg_try_advisory_lock($1) AS locked",
        [this.options.lockKey],
      );
      this.leader = row?.locked === true;
      if (this.leader) this.spokeAt = Date.now();
      return this.leader;
    } catch (error) {
      this.lost(error as Error);
      return false;
    }
  }

  /** Run `fn` in a transaction on the lock's own connection; only while leading. */
  async transaction<T>(fn: (sql: Sql) => Promise<T>): Promise<T> {
    if (!this.leader || !this.session) throw new Error("not the beat leader");
    if (this.db.engine === "pglite") return this.db.transaction(fn);
    const session = this.session;
    try {
      await session.query("BEGIN");
      const result = await fn(session);
      await session.query("COMMIT");
      this.spokeAt = Date.now();
      return result;
    } catch (error) {
      await session.query("ROLLBACK").catch(() => {});
      if (this.session !== session || !(await this.alive(session))) this.lost(error as Error);
      throw error;
    }
  }

  /** Give the lock up (and the connection with it). */
  async resign(): Promise<void> {
    const session = this.session;
    this.session = undefined;
    const wasLeader = this.leader;
    this.leader = false;
    if (!session) return;
    if (wasLeader)
      await session.query("SELECT pg_advisory_unlock($1)", [this.options.lockKey]).catch(() => {});
    await session.release();
  }

  private async alive(session: Session): Promise<boolean> {
    try {
      await session.query("SELECT 1");
      return true;
    } catch {
      return false;
    }
  }

  private open(): Promise<Session> {
    if (this.session) return Promise.resolve(this.session);
    this.opening ??= (async () => {
      try {
        let opened: Session | undefined;
        const session = await this.db.session((error) => this.lost(error, opened));
        opened = session;
        if (this.db.engine === "postgres") {
          await session.query("SELECT set_config('application_name', $1, false)", [
            this.options.name,
          ]);
          // Postgres 14+; older servers keep the TCP keepalives below as the only detector.
          await session
            .query("SELECT set_config('idle_session_timeout', $1, false)", [
              `${this.options.sessionTimeoutMs}ms`,
            ])
            .catch(() => {});
          for (const [name, value] of [
            ["tcp_keepalives_idle", "5"],
            ["tcp_keepalives_interval", "2"],
            ["tcp_keepalives_count", "3"],
          ] as const)
            await session.query("SELECT set_config($1, $2, false)", [name, value]).catch(() => {});
        }
        this.session = session;
        return session;
      } finally {
        this.opening = undefined;
      }
    })();
    return this.opening;
  }

  private lost(error: Error, session?: Session): void {
    if (session && session !== this.session) return;
    const wasLeader = this.leader;
    const dropped = this.session;
    this.session = undefined;
    this.leader = false;
    dropped?.release().catch(() => {});
    if (wasLeader) {
      this.log.warn({ err: error }, "beat lost its database session: no longer the leader");
      for (const handler of this.lostHandlers) handler();
    }
  }
}
