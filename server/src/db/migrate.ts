/**
 * Applies the SQL migrations in prisma/migrations, keeping Prisma's `_prisma_migrations`
 * bookkeeping (same table, checksums and lock), so `prisma migrate deploy` and this runner can
 * take turns on one database. Used where Prisma's schema engine cannot be downloaded, and by
 * dev mode on the embedded database.
 */
import { createHash, randomUUID } from "node:crypto";
import { readdir, readFile } from "node:fs/promises";
import path from "node:path";
import { fileURLToPath } from "node:url";
import type { Database } from "./database.js";

export const MIGRATIONS_DIR = fileURLToPath(new URL("../../prisma/migrations", import.meta.url));

/** Prisma Migrate's own advisory lock key, so the two never run at once. */
const MIGRATE_LOCK = 72707369;

const BOOKKEEPING = `CREATE TABLE IF NOT EXISTS "_prisma_migrations" (
  "id" VARCHAR(36) PRIMARY KEY NOT NULL,
  "checksum" VARCHAR(64) NOT NULL,
  "finished_at" TIMESTAMPTZ,
  "migration_name" VARCHAR(255) NOT NULL,
  "logs" TEXT,
  "rolled_back_at" TIMESTAMPTZ,
  "started_at" TIMESTAMPTZ NOT NULL DEFAULT now(),
  "applied_steps_count" INTEGER NOT NULL DEFAULT 0
)`;

export interface MigrationResult {
  applied: string[];
  alreadyApplied: number;
}

interface AppliedRow {
  migration_name: string;
  checksum: string;
  finished_at: Date | null;
  rolled_back_at: Date | null;
}

/** Apply every migration not applied yet, in name order. Safe to run from several processes. */
export async function migrate(db: Database, dir = MIGRATIONS_DIR): Promise<MigrationResult> {
  const names = (await readdir(dir, { withFileTypes: true }))
    .filter((e) => e.isDirectory())
    .map((e) => e.name)
    .sort();
  const session = await db.session(() => {});
  try {
    await session.query("SELECT pg_advisory_lock($1)", [MIGRATE_LOCK]);
    await session.query(BOOKKEEPING);
    const rows = await session.query<AppliedRow>(
      `SELECT migration_name, checksum, finished_at, rolled_back_at FROM "_prisma_migrations"`,
    );
    const done = new Map(
      rows.filter((r) => r.finished_at && !r.rolled_back_at).map((r) => [r.migration_name, r]),
    );
    const failed = rows.find((r) => !r.finished_at && !r.rolled_back_at);
    if (failed)
      throw new Error(
        `migration ${failed.migration_name} failed earlier and was not resolved; fix the database, then mark it rolled back (prisma migrate resolve --rolled-back ${failed.migration_name})`,
      );
    const applied: string[] = [];
    for (const name of names) {
      const sql = await readFile(path.join(dir, name, "migration.sql"), "utf8");
      const checksum = createHash("sha256").update(sql).digest("hex");
      const previous = done.get(name);
      if (previous) {
        if (previous.checksum !== checksum)
          throw new Error(`migration ${name} was changed after it was applied`);
        continue;
      }
      const id = randomUUID();
      await session.query(
        `INSERT INTO "_prisma_migrations" (id, checksum, migration_name) VALUES ($1, $2, $3)`,
        [id, checksum, name],
      );
      try {
        await db.transaction(async (tx) => {
          await tx.exec(sql);
        });
      } catch (error) {
        await session.query(`UPDATE "_prisma_migrations" SET logs = $2 WHERE id = $1`, [
          id,
          String(error),
        ]);
        throw new Error(`migration ${name} failed: ${(error as Error).message}`);
      }
      await session.query(
        `UPDATE "_prisma_migrations" SET finished_at = now(), applied_steps_count = 1 WHERE id = $1`,
        [id],
      );
      applied.push(name);
    }
    return { applied, alreadyApplied: done.size };
  } finally {
    await session.query("SELECT pg_advisory_unlock($1)", [MIGRATE_LOCK]).catch(() => {});
    await session.release();
  }
}
