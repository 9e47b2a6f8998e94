/**
 * Tasks: reading the history, and acting on tasks (send, re-run, revoke, in bulk too). Every
 * action goes through the audit trail; arguments are checked against the task's schema when a
 * worker declared one.
 */
import type { App } from "@celeriac/sdk";
import { z } from "zod";
import type { Viewer } from "../auth/roles.js";
import type { Database } from "../db/database.js";
import { InvalidInputError, NotFoundError } from "../errors.js";
import type { Prisma, Task } from "../generated/prisma/client.js";
import type { AuditLog } from "./audit.js";
import type { Redaction } from "./redaction.js";
import type { RegistryService } from "./registry-service.js";
import { flattenReplies, type WorkerReply } from "./replies.js";

export interface TaskFilter {
  ids?: string[] | null;
  states?: string[] | null;
  names?: string[] | null;
  workers?: string[] | null;
  queues?: string[] | null;
  rootId?: string | null;
  parentId?: string | null;
  groupId?: string | null;
  rerunOf?: string | null;
  /** First seen at or after. */
  from?: Date | null;
  /** First seen before. */
  to?: Date | null;
  /** Case-insensitive text in args, kwargs, result or exception. */
  search?: string | null;
}

export type TaskSortField = "createdAt" | "updatedAt" | "runtime" | "name";

export interface TaskSort {
  field: TaskSortField;
  direction: "asc" | "desc";
}

export interface SendInput {
  name: string;
  args?: unknown[] | null;
  kwargs?: Record<string, unknown> | null;
  queue?: string | null;
  countdown?: number | null;
  eta?: Date | null;
  expires?: number | null;
  priority?: number | null;
}

export interface RevokeOutcome {
  revoked: string[];
  /** Revoked ids the control plane has no record of (see `TaskService.revoke`). */
  unknown: string[];
  replies: WorkerReply[];
}

/** Most tasks one bulk action touches; a larger selection must be narrowed first. */
export const BULK_LIMIT = 10_000;

/**
 * Up to this many matches `countEstimate` counts exactly: counting stops there, so a count costs
 * at most this many rows read (a few milliseconds), whatever the filter.
 */
export const EXACT_COUNT_LIMIT = 1_000;

/** How many tasks match a filter: counted when few, else the planner's estimate. */
export interface CountEstimate {
  value: number;
  exact: boolean;
}

/**
 * How a text search runs (see `searchPlan`): the statement that sets the planner up for it in
 * its transaction, or the ids of its matches, gathered first.
 */
export interface SearchPlan {
  settings?: string;
  ids?: string[];
}

/** GIN indexes serve bitmap scans only: without these, the planner walks an ordered index. */
const WALK = "SELECT set_config('enable_bitmapscan', 'off', true)";
/** Through the trigram indexes, neither walking an index in order nor reading the table. */
const TRIGRAM =
  "SELECT set_config('enable_indexscan', 'off', true), set_config('enable_seqscan', 'off', true)";

/** Newest tasks a search is tried on to tell how dense its matches (and its words') are. */
const SEARCH_PROBE = 500;
/** Fewest matches among them that tell the search is dense (fewer may be a cluster). */
const SEARCH_DENSE = 5;
/** Most matches gathered by id (see `searchPlan`). */
const SEARCH_GATHER = 10_000;
/** Most tasks worth walking through, newest first, to fill a page of search results. */
const SEARCH_WALK = 20_000;
/** The text columns a search looks in (see `where`). */
const SEARCHED = ["args_repr", "kwargs_repr", "result", "exception"];

/** Columns of the fields `where` filters on. */
const COLUMN: Record<string, string> = {
  id: "id",
  state: "state",
  name: "name",
  worker: "worker",
  queue: "queue",
  rootId: "root_id",
  parentId: "parent_id",
  groupId: "group_id",
  rerunOf: "rerun_of",
  createdAt: "created_at",
  argsRepr: "args_repr",
  kwargsRepr: "kwargs_repr",
  result: "result",
  exception: "exception",
};

/**
 * The SQL of a condition built by `TaskService.where`, with the same meaning as Prisma gives it
 * (pattern characters in `contains` included: Prisma passes them through), for what Prisma
 * cannot run: bounded counts, plan estimates, probes. Throws on a shape `where` does not make.
 */
export function taskWhereSql(where: Prisma.TaskWhereInput, params: unknown[]): string {
  const param = (value: unknown) => `$${params.push(value)}`;
  const field = (column: string, value: unknown): string[] => {
    if (value === null) return [`${column} IS NULL`];
    if (typeof value === "string" || value instanceof Date) return [`${column} = ${param(value)}`];
    const conditions: string[] = [];
    const ops = value as Record<string, unknown>;
    const like = ops.mode === "insensitive" ? "ILIKE" : "LIKE";
    for (const [op, v] of Object.entries(ops)) {
      if (v === undefined || op === "mode") continue;
      if (op === "in") conditions.push(`${column} = ANY(${param(v)}::text[])`);
      else if (op === "gte") conditions.push(`${column} >= ${param(v)}`);
      else if (op === "lt") conditions.push(`${column} < ${param(v)}`);
      else if (op === "contains") conditions.push(`${column} ${like} ('%' || ${param(v)} || '%')`);
      else if (op === "startsWith") conditions.push(`${column} ${like} (${param(v)} || '%')`);
      else if (op === "endsWith") conditions.push(`${column} ${like} ('%' || ${param(v)})`);
      else throw new Error(`no SQL for the task filter operator ${op}`);
    }
    return conditions;
  };
  const conditions: string[] = [];
  for (const [key, value] of Object.entries(where)) {
    if (value === undefined) continue;
    const list = (Array.isArray(value) ? value : [value]) as Prisma.TaskWhereInput[];
    if (key === "AND") conditions.push(...list.map((w) => `(${taskWhereSql(w, params)})`));
    else if (key === "OR")
      conditions.push(
        `(${list.map((w) => `(${taskWhereSql(w, params)})`).join(" OR ") || "FALSE"})`,
      );
    else if (key === "NOT") conditions.push(...list.map((w) => `NOT (${taskWhereSql(w, params)})`));
    else {
      const column = COLUMN[key];
      if (!column) throw new Error(`no SQL for the task filter field ${key}`);
      conditions.push(...field(column, value));
    }
  }
  return conditions.length > 0 ? conditions.join(" AND ") : "TRUE";
}

const sendSchema = z.object({
  name: z.string().trim().min(1, "a task name is required").max(200),
  args: z.array(z.unknown()).nullish(),
  kwargs: z.record(z.string(), z.unknown()).nullish(),
  queue: z.string().trim().min(1).max(200).nullish(),
  countdown: z
    .number()
    .min(0)
    .max(365 * 86400)
    .nullish(),
  eta: z.date().nullish(),
  expires: z.number().positive().nullish(),
  priority: z.number().int().min(0).max(255).nullish(),
});

export class TaskService {
  constructor(
    private readonly db: Database,
    private readonly app: App,
    private readonly audit: AuditLog,
    private readonly registry: RegistryService,
    private readonly redaction: Redaction,
    private readonly controlTimeout: number,
  ) {}

  where(filter: TaskFilter = {}): Prisma.TaskWhereInput {
    const and: Prisma.TaskWhereInput[] = [];
    const inList = (values: string[] | null | undefined) =>
      values && values.length > 0 ? { in: values } : undefined;
    const where: Prisma.TaskWhereInput = {
      id: inList(filter.ids),
      state: inList(filter.states),
      name: inList(filter.names),
      worker: inList(filter.workers),
      queue: inList(filter.queues),
      rootId: filter.rootId ?? undefined,
      parentId: filter.parentId ?? undefined,
      groupId: filter.groupId ?? undefined,
      rerunOf: filter.rerunOf ?? undefined,
    };
    if (filter.from || filter.to)
      where.createdAt = { gte: filter.from ?? undefined, lt: filter.to ?? undefined };
    const text = filter.search?.trim();
    if (text) {
      const hidden = this.redaction.searchExclusion();
      if (hidden) and.push(hidden);
      const contains = { contains: text, mode: "insensitive" as const };
      and.push({
        OR: [
          { argsRepr: contains },
          { kwargsRepr: contains },
          { result: contains },
          { exception: contains },
        ],
      });
    }
    return and.length > 0 ? { ...where, AND: and } : where;
  }

  /**
   * How a text search is best run; undefined without one, or when so few tasks pass the other
   * filters that any plan is quick. The planner cannot tell: its statistics say nothing of
   * substrings (its guess turns on whether one of a hundred sampled values happens to match),
   * and each wrong guess costs up to a second over a million tasks. So the search, and each word
   * of it, is first tried on the newest tasks passing the other filters (about a millisecond):
   *  - matches dense there: walking the newest tasks first fills a page at once, where gathering
   *    every match would read most of the table;
   *  - else the trigram indexes find the matches. But a trigram index ANDs the rows of every
   *    trigram of the text, and a word found in most tasks (`album` in `album-4242`) brings
   *    trigrams held by most rows: decoding them is most of the search. When some words were
   *    found in none of the newest tasks, the matches are gathered through those words' trigrams
   *    alone and checked against the whole text, and the query then reads them by id.
   */
  async searchPlan(filter: TaskFilter, pageSize: number): Promise<SearchPlan | undefined> {
    const text = filter.search?.trim();
    if (!text) return undefined;
    const others = (params: unknown[]) =>
      taskWhereSql(this.where({ ...filter, search: null }), params);
    const params: unknown[] = [];
    let base: string;
    let all: string;
    try {
      base = others(params);
      all = taskWhereSql(this.where(filter), params);
    } catch {
      return undefined;
    }
    // Literal runs of the pattern: any text the whole matches contains each of them.
    const words = [...new Set(text.match(/[\p{L}\p{N}]{3,}/gu) ?? [])]
      .sort((a, b) => b.length - a.length)
      .slice(0, 4);
    const holds = (value: string) => {
      const p = `$${params.push(value)}`;
      return `(${SEARCHED.map((c) => `${c} ILIKE ('%' || ${p} || '%')`).join(" OR ")})`;
    };
    const wordHits = words.map((w, i) => `(count(*) FILTER (WHERE ${holds(w)}))::int AS w${i}`);
    const [probe] = await this.db.query<Record<string, number>>(
      `SELECT count(*)::int AS seen, (count(*) FILTER (WHERE ${all}))::int AS hits
         ${wordHits.map((h) => `, ${h}`).join("")}
       FROM (SELECT * FROM tasks WHERE ${base} ORDER BY created_at DESC LIMIT ${SEARCH_PROBE}) tasks`,
      params,
    );
    if (!probe || probe.seen! < SEARCH_PROBE) return undefined;
    // Walking finds a page in pageSize / density tasks.
    const hits = probe.hits!;
    if (hits >= SEARCH_DENSE && (pageSize * SEARCH_PROBE) / hits <= SEARCH_WALK)
      return { settings: WALK };
    const rare = words.filter((_, i) => probe[`w${i}`] === 0);
    if (rare.length === 0 || rare.length === words.length) return { settings: TRIGRAM };
    // `|| ''` keeps the whole text out of the index condition: it is checked on each row found.
    const gather: unknown[] = [];
    const rest = others(gather);
    const exclusion = this.redaction.searchExclusion();
    const hidden = exclusion ? taskWhereSql(exclusion, gather) : "TRUE";
    const whole = `$${gather.push(text)}`;
    const found = SEARCHED.map(
      (c) =>
        `(${rare.map((w) => `${c} ILIKE ('%' || $${gather.push(w)} || '%')`).join(" AND ")}` +
        ` AND (${c} || '') ILIKE ('%' || ${whole} || '%'))`,
    );
    const ids = await this.db.transaction(async (sql) => {
      await sql.query(TRIGRAM);
      return sql.query<{ id: string }>(
        `SELECT id FROM tasks WHERE ${rest} AND ${hidden} AND (${found.join(" OR ")})
         LIMIT ${SEARCH_GATHER + 1}`,
        gather,
      );
    });
    if (ids.length > SEARCH_GATHER) return { settings: TRIGRAM };
    return { ids: ids.map((r) => r.id) };
  }

  /**
   * The condition of a query run by `plan`: the filter's, or, when the matches were gathered,
   * their ids under the other filters. The text is not matched again: it would let the planner
   * back onto the trigram indexes, and a match cannot stop matching (arguments never change, a
   * result or an exception is only ever added).
   */
  planWhere(filter: TaskFilter, plan: SearchPlan | undefined): Prisma.TaskWhereInput {
    if (!plan?.ids) return this.where(filter);
    return { AND: [this.where({ ...filter, search: null }), { id: { in: plan.ids } }] };
  }

  /**
   * How many tasks match, at a bounded cost: counted exactly up to EXACT_COUNT_LIMIT, else the
   * planner's estimate, from table statistics (close for the whole history and for state, name,
   * worker or queue filters; rough for text search). An exact count reads every match: over
   * millions of tasks, a tenth of a second to seconds, for every change of the filters.
   */
  async countEstimate(filter: TaskFilter): Promise<CountEstimate> {
    const params: unknown[] = [];
    let condition: string;
    try {
      condition = taskWhereSql(this.where(filter), params);
    } catch {
      return { value: await this.db.prisma.task.count({ where: this.where(filter) }), exact: true };
    }
    const plan = await this.searchPlan(filter, EXACT_COUNT_LIMIT);
    // Gathered by id: every match is known.
    if (plan?.ids) return { value: plan.ids.length, exact: true };
    return this.db.transaction(async (sql) => {
      if (plan?.settings) await sql.query(plan.settings);
      const [counted] = await sql.query<{ n: number }>(
        `SELECT count(*)::int AS n FROM (SELECT FROM tasks WHERE ${condition} LIMIT ${EXACT_COUNT_LIMIT + 1}) matches`,
        params,
      );
      const n = counted?.n ?? 0;
      if (n <= EXACT_COUNT_LIMIT) return { value: n, exact: true };
      const [explained] = await sql.query<{
        "QUERY PLAN": Array<{ Plan: { "Plan Rows": number } }>;
      }>(`EXPLAIN (FORMAT JSON) SELECT FROM tasks WHERE ${condition}`, params);
      const estimate = Math.round(explained?.["QUERY PLAN"][0]?.Plan["Plan Rows"] ?? 0);
      // More than the limit were counted: an estimate below it would be plainly wrong.
      return { value: Math.max(estimate, EXACT_COUNT_LIMIT + 1), exact: false };
    });
  }

  /** Sorted by the field, then by id, so pages never skip or repeat a task. */
  orderBy(sort: TaskSort | null | undefined): Prisma.TaskOrderByWithRelationInput[] {
    const { field, direction } = sort ?? { field: "createdAt", direction: "desc" };
    const primary =
      field === "runtime"
        ? { runtime: { sort: direction, nulls: "last" as const } }
        : field === "name"
          ? { name: { sort: direction, nulls: "last" as const } }
          : { [field]: direction };
    return [primary as Prisma.TaskOrderByWithRelationInput, { id: direction }];
  }

  get(id: string): Promise<Task | null> {
    return this.db.prisma.task.findUnique({ where: { id } });
  }

  /** Send any task by name; the arguments are checked against the task's schema when known. */
  async send(viewer: Viewer | null, input: SendInput, rerunOf?: string): Promise<Task> {
    return this.audit.record(
      viewer,
      rerunOf ? "retryTask" : "sendTask",
      this.auditInput(input.name, { ...input, rerunOf }),
      async () => {
        const parsed = sendSchema.safeParse(input);
        if (!parsed.success)
          throw InvalidInputError.fromIssues("invalid task to send", parsed.error.issues);
        const i = parsed.data;
        const args = i.args ?? [];
        const kwargs = i.kwargs ?? {};
        await this.checkArguments(i.name, args);
        const result = await this.app.sendTask(i.name, args, kwargs, {
          ...(i.queue ? { queue: i.queue } : {}),
          ...(i.countdown != null ? { countdown: i.countdown } : {}),
          ...(i.eta ? { eta: i.eta } : {}),
          ...(i.expires != null ? { expires: i.expires } : {}),
          ...(i.priority != null ? { priority: i.priority } : {}),
        });
        const now = new Date();
        // The row exists at once, so a caller can open the task's page before any event arrives.
        return this.db.prisma.task.upsert({
          where: { id: result.id },
          create: {
            id: result.id,
            name: i.name,
            state: "PENDING",
            args: args as Prisma.InputJsonValue,
            kwargs: kwargs as Prisma.InputJsonValue,
            queue: i.queue ?? this.app.options.defaultQueue,
            sentAt: now,
            rerunOf: rerunOf ?? null,
            createdAt: now,
            updatedAt: now,
          },
          update: {
            args: args as Prisma.InputJsonValue,
            kwargs: kwargs as Prisma.InputJsonValue,
            rerunOf: rerunOf ?? null,
          },
        });
      },
    );
  }

  private async checkArguments(name: string, args: unknown[]): Promise<void> {
    const schema = await this.registry.argsSchema(name);
    if (!schema) return;
    let validator: z.ZodType;
    try {
      validator = z.fromJSONSchema(schema as Parameters<typeof z.fromJSONSchema>[0]);
    } catch {
      return; // a schema we cannot read is the worker's to enforce
    }
    const checked = validator.safeParse(args);
    if (!checked.success)
      throw InvalidInputError.fromIssues(
        `arguments do not match ${name}'s schema`,
        checked.error.issues.map((issue) => ({ ...issue, path: ["args", ...issue.path] })),
      );
  }

  /** Run a task again with the same arguments and options (see `rerunInput`), as a new task linked to it. */
  async retry(viewer: Viewer | null, id: string): Promise<Task> {
    let input: SendInput;
    try {
      const task = await this.get(id);
      if (!task) throw new NotFoundError("task", id);
      input = this.rerunInput(task);
    } catch (error) {
      // Refused before anything is sent, and audited all the same.
      return this.audit.record(viewer, "retryTask", { id }, () => Promise.reject(error));
    }
    return this.send(viewer, input, id);
  }

  /**
   * What a re-run is sent with: the name, arguments, keyword arguments and queue, and the expiry
   * as the same time after sending. Not the eta (a re-run runs now), nor what no event carries
   * and so is not stored: priority, headers, time limits.
   */
  private rerunInput(task: Task): SendInput {
    if (!task.name)
      throw new InvalidInputError(`task ${task.id} cannot be re-run: its name is not known yet`);
    // Run with none of them rather than what it was given would be another task.
    for (const [what, value, repr] of [
      ["arguments", task.args, task.argsRepr],
      ["keyword arguments", task.kwargs, task.kwargsRepr],
    ] as const)
      if (value === null && repr)
        throw new InvalidInputError(
          `task ${task.id} cannot be re-run: its ${what} are only known as a truncated or non-literal repr`,
        );
    const expiresIn =
      task.expires && task.sentAt ? (task.expires.getTime() - task.sentAt.getTime()) / 1000 : 0;
    return {
      name: task.name,
      args: (task.args as unknown[] | null) ?? [],
      kwargs: (task.kwargs as Record<string, unknown> | null) ?? {},
      queue: task.queue,
      ...(expiresIn > 0 ? { expires: expiresIn } : {}),
    };
  }

  /**
   * Revoke one task by id. An id the control plane has not seen is revoked all the same, as
   * Celery does: workers keep revoked ids and discard the task if it arrives later, and a task
   * may be unknown here only because its producer sends no `task-sent` event and no worker has
   * received it yet. Such ids are listed in `unknown`, so a typo does not pass unnoticed.
   */
  async revoke(
    viewer: Viewer | null,
    id: string,
    options: { terminate?: boolean | null; signal?: string | null },
  ): Promise<RevokeOutcome> {
    const signal = options.signal ?? "SIGTERM";
    return this.audit.record(
      viewer,
      "revokeTask",
      { id, terminate: Boolean(options.terminate), signal },
      async () => {
        if (!id.trim())
          throw new InvalidInputError("a task id is required", [
            { path: ["id"], message: "must not be empty" },
          ]);
        checkSignal(signal);
        const known = await this.get(id);
        const replies = await this.app.control.revoke(id, {
          terminate: Boolean(options.terminate),
          signal,
          reply: true,
          timeout: this.controlTimeout,
        });
        return { revoked: [id], unknown: known ? [] : [id], replies: flattenReplies(replies) };
      },
    );
  }

  /** Ids matching a bulk selection: explicit ids or a filter, at most BULK_LIMIT. */
  private async select(filter: TaskFilter): Promise<Task[]> {
    const count = await this.db.prisma.task.count({ where: this.where(filter) });
    if (count > BULK_LIMIT)
      throw new InvalidInputError(
        `the selection has ${count} tasks; narrow it to at most ${BULK_LIMIT}`,
      );
    return this.db.prisma.task.findMany({ where: this.where(filter) });
  }

  async retryMany(
    viewer: Viewer | null,
    filter: TaskFilter,
  ): Promise<{ sent: Task[]; skipped: string[] }> {
    return this.audit.record(viewer, "retryTasks", { filter: filter as never }, async () => {
      const tasks = await this.select(filter);
      const sent: Task[] = [];
      const skipped: string[] = [];
      for (const task of tasks) {
        try {
          sent.push(await this.send(viewer, this.rerunInput(task), task.id));
        } catch (error) {
          if (!(error instanceof InvalidInputError)) throw error;
          skipped.push(task.id);
        }
      }
      return { sent, skipped };
    });
  }

  async revokeMany(
    viewer: Viewer | null,
    filter: TaskFilter,
    options: { terminate?: boolean | null; signal?: string | null },
  ): Promise<RevokeOutcome> {
    const terminate = Boolean(options.terminate);
    const signal = options.signal ?? "SIGTERM";
    return this.audit.record(
      viewer,
      "revokeTasks",
      { filter: filter as never, terminate, signal },
      async () => {
        checkSignal(signal);
        // A selection from the history: every id in it is known.
        const ids = (await this.select(filter)).map((t) => t.id);
        if (ids.length === 0) return { revoked: [], unknown: [], replies: [] };
        const replies = await this.app.control.revoke(ids, {
          terminate,
          signal,
          reply: true,
          timeout: this.controlTimeout,
        });
        return { revoked: ids, unknown: [], replies: flattenReplies(replies) };
      },
    );
  }

  private auditInput(name: string, input: object): Record<string, unknown> {
    return this.redaction.fields([name], { ...(input as Record<string, unknown>) });
  }
}

function checkSignal(signal: string): void {
  if (!/^SIG[A-Z0-9]+$/.test(signal))
    throw new InvalidInputError(`not a signal name: ${signal}`, [
      { path: ["signal"], message: "expected a name such as SIGTERM or SIGKILL" },
    ]);
}
