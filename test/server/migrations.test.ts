/**
 * The migrations are the database's truth and schema.prisma the code's; these tests catch the two
 * drifting apart. Migrations apply on an empty database, keep Prisma's bookkeeping, apply once,
 * and every model round-trips every one of its fields through the migrated tables.
 */
import { createHash } from "node:crypto";
import { readFile } from "node:fs/promises";
import path from "node:path";
import { type Database, migrate, openDatabase } from "@celeriac/server";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { MIGRATIONS_DIR } from "../../server/src/db/migrate.js";
import { getDatamodel } from "../../server/src/generated/pothos-types.js";
import { createTestDatabase, type TestDatabase } from "../helpers/postgres.js";

type Field = ReturnType<typeof getDatamodel>["datamodel"]["models"][string]["fields"][number];

let database: TestDatabase;
let db: Database;

beforeAll(async () => {
  database = await createTestDatabase();
  db = await openDatabase(database.url);
});

afterAll(async () => {
  await db?.close();
  await database?.drop();
});

/** A value of a field's type, distinct per call so unique columns do not clash. */
let n = 0;
function sample(field: Field): unknown {
  n++;
  const one = (): unknown => {
    switch (field.type) {
      case "String":
        return `${field.name}-${n}`;
      case "Int":
        return n;
      case "BigInt":
        return BigInt(n);
      case "Float":
        return n + 0.5;
      case "Boolean":
        return true;
      case "DateTime":
        return new Date(Date.UTC(2026, 0, 1, 0, 0, n % 60));
      case "Json":
        return { field: field.name, n };
      default:
        return undefined;
    }
  };
  return field.isList ? [one(), one()] : one();
}

const delegate = (model: string) =>
  (
    db.prisma as unknown as Record<
      string,
      { create(args: unknown): Promise<Record<string, unknown>> }
    >
  )[model.charAt(0).toLowerCase() + model.slice(1)]!;

const delegateFind = (model: string) =>
  (
    db.prisma as unknown as Record<
      string,
      { findFirst(args: unknown): Promise<Record<string, unknown> | null> }
    >
  )[model.charAt(0).toLowerCase() + model.slice(1)]!;

/**
 * Create a row with every scalar set, creating the rows it refers to first. Where a CHECK
 * constraint forbids setting every field at once (one of two exclusive columns), the row gets the
 * required fields only, and every column is still read back.
 */
async function createFull(model: string): Promise<Record<string, unknown>> {
  const { models } = getDatamodel().datamodel;
  const fields = models[model]!.fields;
  const data: Record<string, unknown> = {};
  const optional: string[] = [];
  for (const f of fields) {
    if (f.kind !== "scalar" || (f.type === "BigInt" && f.isId)) continue;
    data[f.name] = sample(f);
    if (!f.isRequired || f.hasDefaultValue) optional.push(f.name);
  }
  if ("role" in data) data.role = "viewer";
  if (model === "Task") data.state = "SUCCESS";
  for (const f of fields) {
    if (f.kind !== "object" || !("relationFromFields" in f) || !f.relationFromFields?.length)
      continue;
    const parent = await createFull(f.type);
    const target = models[f.type]!.fields.find((x) => x.isId)!.name;
    data[f.relationFromFields[0]!] = parent[target];
  }
  try {
    return await delegate(model).create({ data });
  } catch (error) {
    if (!String((error as Error).message).includes("23514")) throw error;
    const required = Object.fromEntries(
      Object.entries(data).filter(([k]) => !optional.includes(k)),
    );
    await delegate(model).create({ data: required });
    const select = Object.fromEntries(
      fields.filter((f) => f.kind === "scalar").map((f) => [f.name, true]),
    );
    return (await delegateFind(model).findFirst({ select }))!;
  }
}

describe("migrations", () => {
  it("apply on an empty database once, with Prisma's bookkeeping", async () => {
    const first = await migrate(db);
    expect(first.applied.length).toBeGreaterThan(0);
    const again = await migrate(db);
    expect(again).toEqual({ applied: [], alreadyApplied: first.applied.length });
    const rows = await db.query<{ migration_name: string; checksum: string; finished_at: Date }>(
      'SELECT migration_name, checksum, finished_at FROM "_prisma_migrations" ORDER BY migration_name',
    );
    for (const row of rows) {
      const sql = await readFile(
        path.join(MIGRATIONS_DIR, row.migration_name, "migration.sql"),
        "utf8",
      );
      expect(row.checksum).toBe(createHash("sha256").update(sql).digest("hex"));
      expect(row.finished_at).toBeInstanceOf(Date);
    }
  });

  it("match schema.prisma: every model stores and reads back every field", async () => {
    const { models } = getDatamodel().datamodel;
    expect(Object.keys(models).length).toBeGreaterThan(5);
    for (const model of Object.keys(models)) {
      const row = await createFull(model);
      for (const f of models[model]!.fields) {
        if (f.kind !== "scalar") continue;
        expect(f.name in row, `${model}.${f.name}`).toBe(true);
      }
    }
  });

  it("refuse to run over a migration changed after it was applied", async () => {
    const [row] = await db.query<{ migration_name: string }>(
      'SELECT migration_name FROM "_prisma_migrations" LIMIT 1',
    );
    await db.query('UPDATE "_prisma_migrations" SET checksum = $1 WHERE migration_name = $2', [
      "0".repeat(64),
      row!.migration_name,
    ]);
    await expect(migrate(db)).rejects.toThrow(/changed after it was applied/);
  });
});
