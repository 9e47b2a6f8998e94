/**
 * Figures over a time window: per task name, how many finished, failed, were retried or revoked,
 * the throughput, and runtime percentiles; and the same per time bucket, for charts.
 */
import type { Database } from "../db/database.js";

export interface TaskStats {
  name: string;
  succeeded: number;
  failed: number;
  retried: number;
  revoked: number;
  /** Tasks finished (succeeded or failed) per second over the window. */
  throughput: number;
  runtimeP50: number | null;
  runtimeP95: number | null;
  runtimeP99: number | null;
}

export interface StatsBucket {
  at: Date;
  succeeded: number;
  failed: number;
  runtimeP50: number | null;
  runtimeP95: number | null;
}

interface StatsRow {
  name: string | null;
  succeeded: string | number;
  failed: string | number;
  retried: string | number;
  revoked: string | number;
  p50: number | null;
  p95: number | null;
  p99: number | null;
}

export class StatsService {
  constructor(private readonly db: Database) {}

  /** `window` in seconds, ending now; optionally only some task names. */
  async byName(window: number, names?: string[] | null, now = new Date()): Promise<TaskStats[]> {
    const since = new Date(now.getTime() - window * 1000);
    const rows = await this.db.query<StatsRow>(
      `SELECT name,
        count(*) FILTER (WHERE state = 'SUCCESS') AS succeeded,
        count(*) FILTER (WHERE state = 'FAILURE') AS failed,
        count(*) FILTER (WHERE retried_at >= $1) AS retried,
        count(*) FILTER (WHERE state = 'REVOKED') AS revoked,
        percentile_cont(0.5) WITHIN GROUP (ORDER BY runtime) AS p50,
        percentile_cont(0.95) WITHIN GROUP (ORDER BY runtime) AS p95,
        percentile_cont(0.99) WITHIN GROUP (ORDER BY runtime) AS p99
      FROM tasks
      WHERE updated_at >= $1 AND updated_at < $2 AND ($3::text[] IS NULL OR name = ANY($3))
      GROUP BY name ORDER BY name`,
      [since, now, names && names.length > 0 ? names : null],
    );
    return rows.map((r) => {
      const succeeded = Number(r.succeeded);
      const failed = Number(r.failed);
      return {
        name: r.name ?? "(unknown)",
        succeeded,
        failed,
        retried: Number(r.retried),
        revoked: Number(r.revoked),
        throughput: (succeeded + failed) / window,
        runtimeP50: r.p50,
        runtimeP95: r.p95,
        runtimeP99: r.p99,
      };
    });
  }

  /** Buckets of `bucket` seconds over the last `window` seconds, oldest first. */
  async series(
    window: number,
    bucket: number,
    names?: string[] | null,
    now = new Date(),
  ): Promise<StatsBucket[]> {
    const since = new Date(now.getTime() - window * 1000);
    const rows = await this.db.query<{
      at: Date;
      succeeded: string | number;
      failed: string | number;
      p50: number | null;
      p95: number | null;
    }>(
      `SELECT date_bin(make_interval(secs => $3), updated_at, $1) AS at,
        count(*) FILTER (WHERE state = 'SUCCESS') AS succeeded,
        count(*) FILTER (WHERE state = 'FAILURE') AS failed,
        percentile_cont(0.5) WITHIN GROUP (ORDER BY runtime) AS p50,
        percentile_cont(0.95) WITHIN GROUP (ORDER BY runtime) AS p95
      FROM tasks
      WHERE updated_at >= $1 AND updated_at < $2 AND ($4::text[] IS NULL OR name = ANY($4))
        AND state IN ('SUCCESS', 'FAILURE')
      GROUP BY 1 ORDER BY 1`,
      [since, now, bucket, names && names.length > 0 ? names : null],
    );
    const found = new Map(rows.map((r) => [new Date(r.at).getTime(), r]));
    const out: StatsBucket[] = [];
    for (let t = since.getTime(); t < now.getTime(); t += bucket * 1000) {
      const r = found.get(t);
      out.push({
        at: new Date(t),
        succeeded: Number(r?.succeeded ?? 0),
        failed: Number(r?.failed ?? 0),
        runtimeP50: r?.p50 ?? null,
        runtimeP95: r?.p95 ?? null,
      });
    }
    return out;
  }

  /** Tasks in each state, for /metrics. */
  async countsByState(): Promise<Array<{ state: string; count: number }>> {
    const rows = await this.db.query<{ state: string; count: string | number }>(
      "SELECT state, count(*) AS count FROM tasks GROUP BY state",
    );
    return rows.map((r) => ({ state: r.state, count: Number(r.count) }));
  }
}
