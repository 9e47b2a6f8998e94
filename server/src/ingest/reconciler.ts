/**
 * Events can be missed (Redis broadcasts reach only who listens at that moment; a Python worker
 * may run without -E). The result backend still knows how tasks ended: every so often, tasks
 * left unfinished for a while are looked up there, and a final state found is fed back through
 * ingestion as the event that was missed.
 */
import type { CeleryEvent, ResultBackend, ResultMeta } from "@celeriac/sdk";
import type { Logger } from "pino";
import type { Database } from "../db/database.js";
import type { Ingestor } from "./ingestor.js";

const EVENT_OF: Record<string, string> = {
  SUCCESS: "task-succeeded",
  FAILURE: "task-failed",
  REVOKED: "task-revoked",
};

export interface ReconcilerOptions {
  /** Seconds between passes. Default: 30. */
  intervalSeconds: number;
  /** A task is looked up once unfinished for this long. Default: 60 s. */
  staleSeconds: number;
  /** Most tasks looked up per pass. Default: 500. */
  limit: number;
}

/** The event a ready result stands for, with Celery's fields. */
export function eventFromResult(meta: ResultMeta): CeleryEvent | null {
  const type = EVENT_OF[meta.status];
  if (!type) return null;
  const done = meta.date_done
    ? Date.parse(
        meta.date_done.endsWith("Z") || /[+-]\d\d:\d\d$/.test(meta.date_done)
          ? meta.date_done
          : `${meta.date_done}Z`,
      )
    : Date.now();
  const error = meta.result as { exc_type?: string; exc_message?: unknown[] } | null;
  const exception =
    error && typeof error === "object" && error.exc_type
      ? `${error.exc_type}(${(error.exc_message ?? []).map((m) => JSON.stringify(m)).join(", ")})`
      : undefined;
  return {
    type,
    uuid: meta.task_id,
    hostname: meta.worker ?? "result-backend",
    utcoffset: 0,
    pid: 0,
    clock: 0,
    timestamp: done / 1000,
    ...(type === "task-succeeded" ? { result: JSON.stringify(meta.result) } : {}),
    ...(exception ? { exception } : {}),
    ...(meta.traceback ? { traceback: meta.traceback } : {}),
    ...(type === "task-revoked" ? { terminated: false, expired: false, signum: null } : {}),
    reconciled: true,
  };
}

const START = { at: new Date(0), id: "" };
/** Result lookups in flight at once. */
const LOOKUPS_AT_ONCE = 20;

export class Reconciler {
  private timer: NodeJS.Timeout | undefined;
  private running = false;
  private cursor = START;
  private readonly options: ReconcilerOptions;

  constructor(
    private readonly db: Database,
    private readonly backend: ResultBackend,
    private readonly ingestor: Ingestor,
    private readonly logger: Logger,
    options: Partial<ReconcilerOptions> = {},
  ) {
    this.options = { intervalSeconds: 30, staleSeconds: 60, limit: 500, ...options };
  }

  start(): void {
    if (this.timer) return;
    this.timer = setInterval(
      () => void this.run().catch((e) => this.logger.warn({ err: e }, "reconcile failed")),
      this.options.intervalSeconds * 1000,
    );
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  /** One pass; returns how many tasks were brought up to date. */
  async run(now = Date.now()): Promise<number> {
    // One pass at a time; a timer firing during a long pass skips its turn.
    if (this.running) return 0;
    this.running = true;
    try {
      return await this.pass(now);
    } finally {
      this.running = false;
    }
  }

  /**
   * Stale tasks are visited in order of last change, a page per pass, from where the last pass
   * stopped: tasks whose result never comes (lost, or expired from the backend) cannot keep the
   * others from their turn.
   */
  private async pass(now: number): Promise<number> {
    const stale = await this.db.query<{ id: string; updated_at: Date }>(
      `SELECT id, updated_at FROM tasks
       WHERE state IN ('PENDING', 'RECEIVED', 'STARTED', 'RETRY') AND updated_at < $1
         AND (updated_at, id) > ($2, $3)
       ORDER BY updated_at, id LIMIT $4`,
      [
        new Date(now - this.options.staleSeconds * 1000),
        this.cursor.at,
        this.cursor.id,
        this.options.limit,
      ],
    );
    const last = stale[stale.length - 1];
    this.cursor =
      last && stale.length === this.options.limit ? { at: last.updated_at, id: last.id } : START;
    const events: CeleryEvent[] = [];
    for (let i = 0; i < stale.length; i += LOOKUPS_AT_ONCE) {
      const metas = await Promise.all(
        stale.slice(i, i + LOOKUPS_AT_ONCE).map(({ id }) => this.backend.get(id).catch(() => null)),
      );
      for (const meta of metas) {
        const event = meta && eventFromResult(meta);
        if (event) events.push(event);
      }
    }
    if (events.length > 0) {
      this.ingestor.ingest(events);
      await this.ingestor.drain();
      this.logger.info({ tasks: events.length }, "reconciled tasks from the result backend");
    }
    return events.length;
  }
}
