/**
 * Keeps the history to its configured length: every hour, tasks last changed more than N days
 * ago are deleted (their timeline goes with them), and so are old logs. Deleting in slices
 * keeps each transaction short on a big table.
 */
import type { Logger } from "pino";
import type { Database } from "../db/database.js";

const SLICE = 5000;
const HOUR = 3_600_000;

export class Retention {
  private timer: NodeJS.Timeout | undefined;
  private first: NodeJS.Timeout | undefined;

  constructor(
    private readonly db: Database,
    private readonly days: number,
    private readonly logger: Logger,
  ) {}

  start(): void {
    if (this.days <= 0 || this.timer) return;
    const pass = () =>
      void this.run().catch((e) => this.logger.warn({ err: e }, "retention failed"));
    this.timer = setInterval(pass, HOUR);
    this.timer.unref();
    // Also soon after start (a server restarted more often than hourly must still clean up),
    // at a random moment so that instances started together do not all run at once.
    this.first = setTimeout(pass, 60_000 + Math.random() * 240_000);
    this.first.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    if (this.first) clearTimeout(this.first);
    this.timer = undefined;
    this.first = undefined;
  }

  /** Delete what is older than the retention period; returns how many tasks and logs went. */
  async run(now = new Date()): Promise<{ tasks: number; logs: number }> {
    const before = new Date(now.getTime() - this.days * 86_400_000);
    let tasks = 0;
    let logs = 0;
    for (;;) {
      const rows = await this.db.query<{ id: string }>(
        `DELETE FROM tasks WHERE id IN (SELECT id FROM tasks WHERE updated_at < $1 LIMIT ${SLICE}) RETURNING id`,
        [before],
      );
      tasks += rows.length;
      if (rows.length < SLICE) break;
    }
    for (;;) {
      const rows = await this.db.query<{ id: string }>(
        `DELETE FROM task_logs WHERE id IN (SELECT id FROM task_logs WHERE timestamp < $1 LIMIT ${SLICE}) RETURNING id`,
        [before],
      );
      logs += rows.length;
      if (rows.length < SLICE) break;
    }
    if (tasks || logs) this.logger.info({ tasks, logs, before }, "old history deleted");
    return { tasks, logs };
  }
}
