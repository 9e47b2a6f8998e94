/**
 * The database: Prisma for the API's queries, plus a thin SQL door for what Prisma does not do
 * well (the ingestion's batched upserts, migrations, LISTEN/NOTIFY, advisory locks). Two
 * engines behind one shape: Postgres through `pg` (production, tests) and PGlite (dev mode,
 * embedded, nothing to install).
 */
import { mkdirSync } from "node:fs";
import { PGlite, type Transaction } from "@electric-sql/pglite";
import { pg_trgm } from "@electric-sql/pglite/contrib/pg_trgm";
import { PrismaPg } from "@prisma/adapter-pg";
import pg from "pg";
import { PrismaPGlite } from "pglite-prisma-adapter";
import { PrismaClient } from "../generated/prisma/client.js";

export interface Sql {
  /** A parameterized statement ($1, $2 …); returns its rows. */
  query<T = Record<string, unknown>>(text: string, params?: unknown[]): Promise<T[]>;
  /** A script of several statements, without parameters (a migration). */
  exec(script: string): Promise<void>;
}

export interface Database extends Sql {
  readonly prisma: PrismaClient;
  readonly engine: "postgres" | "pglite";
  /** The URL with its password hidden, for logs. */
  readonly displayUrl: string;
  /** Run `fn` in one transaction on one connection. */
  transaction<T>(fn: (sql: Sql) => Promise<T>): Promise<T>;
  /**
   * Call `onNotify` for every NOTIFY on `channel`, and with "*" after the connection was lost and
   * made again (what was sent meanwhile is unknown); returns a function that stops listening.
   */
  listen(channel: string, onNotify: (payload: string) => void): Promise<() => Promise<void>>;
  /**
   * A connection of its own for session-level state (advisory locks): it stays open until
   * released, and its loss is reported through `onLost`.
   */
  session(onLost: (error: Error) => void): Promise<Session>;
  close(): Promise<void>;
}

export interface Session extends Sql {
  release(): Promise<void>;
}

/** `postgres://…` or `postgresql://…` for a server; `pglite://<dir>` or `pglite://memory` embedded. */
export async function openDatabase(url: string): Promise<Database> {
  if (url.startsWith("pglite:")) return openPglite(url.slice("pglite://".length) || "memory");
  return openPostgres(url);
}

export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = "***";
    return u.toString();
  } catch {
    return url.replace(/:[^:@/]*@/, ":***@");
  }
}

async function openPostgres(url: string): Promise<Database> {
  const pool = new pg.Pool({ connectionString: url, max: 10 });
  // An idle client that loses its connection (a Postgres restart) must not crash the process.
  pool.on("error", () => {});
  const prisma = new PrismaClient({ adapter: new PrismaPg(pool) });
  const query = async <T>(text: string, params?: unknown[]) =>
    (await pool.query(text, params as unknown[])).rows as T[];
  return {
    prisma,
    engine: "postgres",
    displayUrl: redactUrl(url),
    query,
    async exec(script) {
      await pool.query(script);
    },
    async transaction(fn) {
      const client = await pool.connect();
      // A connection lost mid-transaction (Postgres restarting) fails the query in flight; the
      // client's own error event must not crash the process on top of that.
      const ignore = () => {};
      client.on("error", ignore);
      let failure: Error | undefined;
      try {
        await client.query("BEGIN");
        const result = await fn({
          query: async (text, params) => (await client.query(text, params)).rows,
          exec: async (script) => {
            await client.query(script);
          },
        });
        await client.query("COMMIT");
        return result;
      } catch (error) {
        failure = error as Error;
        await client.query("ROLLBACK").catch(() => {});
        throw error;
      } finally {
        client.off("error", ignore);
        // After a failure the connection may be broken: let the pool discard it.
        client.release(failure);
      }
    },
    async listen(channel, onNotify) {
      let client: pg.Client | undefined;
      let stopped = false;
      let delay = 200;
      // A lost connection (a Postgres restart) is made again; notifications sent meanwhile are
      // lost, so the listener hears "*" once it is back: "anything may have changed".
      const connect = async (again: boolean): Promise<void> => {
        const c = new pg.Client({ connectionString: url });
        c.on("notification", (n) => {
          if (n.channel === channel) onNotify(n.payload ?? "");
        });
        const lost = () => {
          if (stopped || client !== c) return;
          client = undefined;
          setTimeout(() => void connect(true).catch(() => {}), delay);
          delay = Math.min(delay * 2, 5000);
        };
        c.on("error", lost);
        c.on("end", lost);
        client = c;
        try {
          await c.connect();
          await c.query(`LISTEN ${pg.escapeIdentifier(channel)}`);
          delay = 200;
          if (again) onNotify("*");
        } catch (error) {
          if (!again) {
            // The first connection failing is the caller's to handle; no retries behind its back.
            stopped = true;
            await c.end().catch(() => {});
            throw error;
          }
          lost();
        }
      };
      await connect(false);
      return async () => {
        stopped = true;
        await client?.end().catch(() => {});
      };
    },
    async session(onLost) {
      const client = new pg.Client({ connectionString: url });
      client.on("error", (error) => onLost(error));
      client.on("end", () => onLost(new Error("database session ended")));
      await client.connect();
      return {
        query: async (text, params) => (await client.query(text, params)).rows,
        exec: async (script) => {
          await client.query(script);
        },
        release: async () => {
          client.removeAllListeners("end");
          await client.end().catch(() => {});
        },
      };
    },
    async close() {
      await prisma.$disconnect();
      await pool.end().catch(() => {});
    },
  };
}

async function openPglite(location: string): Promise<Database> {
  const inMemory = location === "memory";
  if (!inMemory) mkdirSync(location, { recursive: true });
  const db = await PGlite.create(inMemory ? undefined : location, { extensions: { pg_trgm } });
  const prisma = new PrismaClient({ adapter: new PrismaPGlite(db) });
  const run = async <T>(q: PGlite | Transaction, text: string, params?: unknown[]) =>
    (await q.query<T>(text, params)).rows;
  return {
    prisma,
    engine: "pglite",
    displayUrl: `pglite://${location}`,
    query: (text, params) => run(db, text, params),
    async exec(script) {
      await db.exec(script);
    },
    transaction(fn) {
      return db.transaction((tx) =>
        fn({
          query: (text, params) => run(tx, text, params),
          exec: async (script) => {
            await tx.exec(script);
          },
        }),
      );
    },
    async listen(channel, onNotify) {
      const unlisten = await db.listen(channel, onNotify);
      return unlisten;
    },
    // One process owns an embedded database: its session is the database itself, never lost.
    async session() {
      return {
        query: (text, params) => run(db, text, params),
        exec: async (script) => {
          await db.exec(script);
        },
        release: async () => {},
      };
    },
    async close() {
      await prisma.$disconnect();
      await db.close();
    },
  };
}
