/**
 * The database layer's own promises: LISTEN survives a lost connection; task queries run as SQL
 * of their own (bounded counts, search plans) mean what Prisma's do; deleting tasks deletes their
 * timelines.
 */
import { type Database, migrate, openDatabase } from "@celeriac/server";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Redaction } from "../../server/src/services/redaction.js";
import {
  EXACT_COUNT_LIMIT,
  type TaskFilter,
  TaskService,
} from "../../server/src/services/task-service.js";
import { createTestDatabase, type TestDatabase } from "../helpers/postgres.js";

let database: TestDatabase;
let db: Database;

beforeAll(async () => {
  database = await createTestDatabase();
  db = await openDatabase(database.url);
  await migrate(db);
});

afterAll(async () => {
  await db?.close();
  await database?.drop();
});

it("listens again after its connection is killed, and says changes may have been missed", async () => {
  const heard: string[] = [];
  const stop = await db.listen("celeriac_test_channel", (p) => heard.push(p));
  await db.query("SELECT pg_notify('celeriac_test_channel', 'one')");
  await expect.poll(() => heard, { timeout: 5000 }).toContain("one");
  const killed = await db.query<{ ok: boolean }>(
    `SELECT pg_terminate_backend(pid) AS ok FROM pg_stat_activity
     WHERE datname = current_database() AND query LIKE 'LISTEN%'`,
  );
  expect(killed.length).toBeGreaterThan(0);
  await expect.poll(() => heard, { timeout: 10_000 }).toContain("*");
  await db.query("SELECT pg_notify('celeriac_test_channel', 'two')");
  await expect.poll(() => heard, { timeout: 5000 }).toContain("two");
  await stop();
});

describe("task queries", () => {
  // What `where`, the search plans and the counts use; the rest is not needed here.
  const service = (redact: string[] = []) =>
    new TaskService(db, null as never, null as never, null as never, new Redaction(redact), 0);

  beforeAll(async () => {
    // 3,000 tasks, newest first by g: `album-N` in every one (a word in every task), a rare word
    // in a few, failures with exceptions, and LIKE's pattern characters.
    await db.query(
      `INSERT INTO tasks (id, name, state, args_repr, kwargs_repr, result, exception, worker,
         created_at, updated_at)
       SELECT 't' || g, CASE WHEN g % 7 = 0 THEN 'secret.job' ELSE 'tasks.t' || (g % 3) END,
         CASE WHEN g % 10 = 0 THEN 'FAILURE' ELSE 'SUCCESS' END,
         '(' || g || ', ''album-' || (g % 50) || ''')'
           || CASE WHEN g % 1000 = 999 THEN ' zq9x' ELSE '' END,
         CASE WHEN g % 2 = 0 THEN '{''k'': ''a_b''}' ELSE '{''k'': ''axb''}' END,
         CASE WHEN g % 10 = 0 THEN NULL ELSE 'Album ' || g END,
         CASE WHEN g % 10 = 0 THEN 'ValueError(''bad ' || g || ''')' END,
         'w' || (g % 4), now() - g * interval '1 second', now() - g * interval '1 second'
       FROM generate_series(1, 3000) g`,
    );
    await db.query("ANALYZE tasks");
  });

  const filters: TaskFilter[] = [
    {},
    { states: ["FAILURE"] },
    { names: ["tasks.t1", "tasks.t2"], workers: ["w1"] },
    { from: new Date(Date.now() - 600_000), to: new Date(Date.now() - 60_000) },
    { ids: ["t1", "t2", "t3"] },
    { search: "album" },
    { search: "ALBUM-7" },
    { search: "album-7'" },
    { search: "zq9x" },
    { search: "album-49') zq9x" },
    { search: "bad 29" },
    { search: "a_b" },
    { search: "a\\_b" },
    { search: "nothing like it" },
    { search: "album", states: ["FAILURE"], names: ["tasks.t1"] },
  ];

  it("counts as Prisma does: exactly when few, estimated beyond", async () => {
    for (const redact of [[], ["secret.*"]]) {
      const tasks = service(redact);
      for (const filter of filters) {
        const exact = await db.prisma.task.count({ where: tasks.where(filter) });
        const counted = await tasks.countEstimate(filter);
        if (counted.exact) expect(counted.value, JSON.stringify(filter)).toBe(exact);
        else {
          expect(exact, JSON.stringify(filter)).toBeGreaterThan(EXACT_COUNT_LIMIT);
          expect(counted.value).toBeGreaterThan(EXACT_COUNT_LIMIT);
        }
      }
    }
  });

  it("finds what Prisma finds, whichever plan a search gets", async () => {
    const tasks = service(["secret.*"]);
    const plans = new Set<string>();
    for (const filter of filters) {
      const orderBy = tasks.orderBy(null);
      const expected = await db.prisma.task.findMany({
        where: tasks.where(filter),
        orderBy,
        take: 51,
      });
      const plan = await tasks.searchPlan(filter, 51);
      plans.add(plan?.settings ?? (plan ? "ids" : "planner"));
      const find = db.prisma.task.findMany({
        where: tasks.planWhere(filter, plan),
        orderBy,
        take: 51,
      });
      const got = plan?.settings
        ? (await db.prisma.$transaction([db.prisma.$queryRawUnsafe(plan.settings), find]))[1]
        : await find;
      expect(
        got.map((t) => t.id),
        JSON.stringify(filter),
      ).toEqual(expected.map((t) => t.id));
    }
    // Every plan was taken: the planner's own, walking, trigram, and matches gathered by id.
    expect(plans.size).toBe(4);
  });
});

it("deletes the timelines of deleted tasks", async () => {
  await db.query(
    `INSERT INTO tasks (id, state) VALUES ('gone1', 'SUCCESS'), ('gone2', 'SUCCESS'), ('kept', 'SUCCESS')`,
  );
  await db.query(
    `INSERT INTO task_events (task_id, type, hostname, clock, timestamp, fields)
     SELECT id, 'task-succeeded', 'w', 1, now(), '{}' FROM tasks WHERE id IN ('gone1', 'gone2', 'kept')`,
  );
  await db.query("DELETE FROM tasks WHERE id IN ('gone1', 'gone2')");
  const left = await db.query<{ task_id: string }>(
    "SELECT task_id FROM task_events WHERE task_id IN ('gone1', 'gone2', 'kept')",
  );
  expect(left.map((e) => e.task_id)).toEqual(["kept"]);
});
