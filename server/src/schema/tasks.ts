/** Tasks: history queries, the timeline and logs of each, and the actions on tasks. */
import { builder } from "../builder.js";
import {
  type CountEstimate,
  EXACT_COUNT_LIMIT,
  type RevokeOutcome,
  type TaskFilter,
} from "../services/task-service.js";
import { MUTATION_ERRORS } from "./errors.js";
import { WorkerReplyRef } from "./workers.js";

/** Events carry their task's name along, so their fields can be redacted by it. */
interface Named {
  taskName: string | null;
}

export function withTaskName<E extends object>(event: E, taskName: string | null): E & Named {
  return Object.assign(event, { taskName });
}

export const TaskRef = builder.prismaObject("Task", {
  description: "A task, as the fleet's events tell it. The id is Celery's task id.",
  fields: (t) => ({
    id: t.exposeID("id"),
    name: t.exposeString("name", { nullable: true }),
    state: t.exposeString("state", {
      description:
        "PENDING, RECEIVED, STARTED, SUCCESS, FAILURE, RETRY, REVOKED, REJECTED, or a custom state.",
    }),
    argsRepr: t.string({
      nullable: true,
      description: "Python repr of the positional arguments, as events carry them.",
      resolve: (task, _a, ctx) => ctx.services.redaction.apply(task.name, task.argsRepr),
    }),
    kwargsRepr: t.string({
      nullable: true,
      resolve: (task, _a, ctx) => ctx.services.redaction.apply(task.name, task.kwargsRepr),
    }),
    args: t.field({
      type: "JSON",
      nullable: true,
      description: "The positional arguments as JSON, when known.",
      resolve: (task, _a, ctx) => ctx.services.redaction.apply(task.name, task.args),
    }),
    kwargs: t.field({
      type: "JSON",
      nullable: true,
      resolve: (task, _a, ctx) => ctx.services.redaction.apply(task.name, task.kwargs),
    }),
    result: t.string({
      nullable: true,
      description: "Repr of the return value.",
      resolve: (task, _a, ctx) => ctx.services.redaction.apply(task.name, task.result),
    }),
    exception: t.exposeString("exception", { nullable: true }),
    traceback: t.exposeString("traceback", { nullable: true }),
    retries: t.exposeInt("retries"),
    queue: t.exposeString("queue", { nullable: true }),
    exchange: t.exposeString("exchange", { nullable: true }),
    routingKey: t.exposeString("routingKey", { nullable: true }),
    worker: t.exposeString("worker", { nullable: true, description: "Node name of the worker." }),
    parentId: t.exposeString("parentId", { nullable: true }),
    rootId: t.exposeString("rootId", { nullable: true }),
    groupId: t.exposeString("groupId", { nullable: true }),
    rerunOf: t.exposeString("rerunOf", { nullable: true }),
    eta: t.expose("eta", { type: "DateTime", nullable: true }),
    expires: t.expose("expires", { type: "DateTime", nullable: true }),
    runtime: t.exposeFloat("runtime", {
      nullable: true,
      description: "Seconds the last run took.",
    }),
    sentAt: t.expose("sentAt", { type: "DateTime", nullable: true }),
    receivedAt: t.expose("receivedAt", { type: "DateTime", nullable: true }),
    startedAt: t.expose("startedAt", { type: "DateTime", nullable: true }),
    succeededAt: t.expose("succeededAt", { type: "DateTime", nullable: true }),
    failedAt: t.expose("failedAt", { type: "DateTime", nullable: true }),
    retriedAt: t.expose("retriedAt", { type: "DateTime", nullable: true }),
    revokedAt: t.expose("revokedAt", { type: "DateTime", nullable: true }),
    rejectedAt: t.expose("rejectedAt", { type: "DateTime", nullable: true }),
    createdAt: t.expose("createdAt", { type: "DateTime", description: "When first seen." }),
    updatedAt: t.expose("updatedAt", { type: "DateTime" }),
    timeline: t.prismaField({
      type: ["TaskEvent"],
      description: "Every event of the task, oldest first.",
      resolve: async (query, task, _a, ctx) =>
        (
          await ctx.db.prisma.taskEvent.findMany({
            ...query,
            where: { taskId: task.id },
            orderBy: [{ timestamp: "asc" }, { id: "asc" }],
          })
        ).map((event) => withTaskName(event, task.name)),
    }),
    logs: t.prismaField({
      type: ["TaskLog"],
      description: "Log records the task wrote, oldest first (workers ship them with --ship-logs).",
      args: { first: t.arg.int({ defaultValue: 500 }) },
      // Each record costs its fields: a page of tasks with their logs is bounded by both sizes.
      complexity: (args) => ({ field: 1, multiplier: Math.min(args.first ?? 500, 5000) / 10 }),
      resolve: (query, task, args, ctx) =>
        ctx.db.prisma.taskLog.findMany({
          ...query,
          where: { taskId: task.id },
          orderBy: [{ timestamp: "asc" }, { id: "asc" }],
          take: Math.min(args.first ?? 500, 5000),
        }),
    }),
    parent: t.prismaField({
      type: "Task",
      nullable: true,
      resolve: (query, task, _a, ctx) =>
        task.parentId
          ? ctx.db.prisma.task.findUnique({ ...query, where: { id: task.parentId } })
          : null,
    }),
    children: t.prismaField({
      type: ["Task"],
      description: "Tasks this one sent (callbacks, chain steps, subtasks).",
      resolve: (query, task, _a, ctx) =>
        ctx.db.prisma.task.findMany({
          ...query,
          where: { parentId: task.id, NOT: { id: task.id } },
          orderBy: { createdAt: "asc" },
          take: 1000,
        }),
    }),
    reruns: t.prismaField({
      type: ["Task"],
      description: "Tasks started from the control plane to run this one again.",
      resolve: (query, task, _a, ctx) =>
        ctx.db.prisma.task.findMany({
          ...query,
          where: { rerunOf: task.id },
          orderBy: { createdAt: "asc" },
        }),
    }),
  }),
});

export const TaskEventRef = builder.prismaObject("TaskEvent", {
  description: "One event of a task's timeline.",
  fields: (t) => ({
    id: t.id({ resolve: (e) => String(e.id) }),
    taskId: t.exposeString("taskId"),
    type: t.exposeString("type"),
    hostname: t.exposeString("hostname"),
    clock: t.exposeInt("clock"),
    timestamp: t.expose("timestamp", { type: "DateTime" }),
    fields: t.field({
      type: "JSON",
      description: "What the event carried besides its common fields (args, result, runtime …).",
      resolve: (e, _a, ctx) => {
        const fields = (e.fields ?? {}) as Record<string, unknown>;
        const name = (e as Partial<Named>).taskName ?? (fields.name as string | undefined);
        // A task whose name is not known cannot be told apart from a redacted one.
        if (name === undefined && ctx.services.redaction.enabled)
          return ctx.services.redaction.mask(fields);
        return ctx.services.redaction.fields([name], fields);
      },
    }),
  }),
});

export const TaskLogRef = builder.prismaObject("TaskLog", {
  description: "A log record a worker shipped, for a task or (without taskId) for itself.",
  fields: (t) => ({
    id: t.id({ resolve: (l) => String(l.id) }),
    taskId: t.exposeString("taskId", { nullable: true }),
    taskName: t.exposeString("taskName", { nullable: true }),
    retries: t.exposeInt("retries", { nullable: true }),
    hostname: t.exposeString("hostname"),
    timestamp: t.expose("timestamp", { type: "DateTime" }),
    level: t.exposeString("level"),
    msg: t.exposeString("msg"),
    data: t.expose("data", { type: "JSON", nullable: true }),
  }),
});

export const TaskFilterInput = builder.inputType("TaskFilter", {
  fields: (t) => ({
    ids: t.idList({ required: false }),
    states: t.stringList({ required: false }),
    names: t.stringList({ required: false }),
    workers: t.stringList({ required: false }),
    queues: t.stringList({ required: false }),
    rootId: t.id({ required: false }),
    parentId: t.id({ required: false }),
    groupId: t.id({ required: false }),
    rerunOf: t.id({ required: false }),
    from: t.field({ type: "DateTime", required: false, description: "First seen at or after." }),
    to: t.field({ type: "DateTime", required: false, description: "First seen before." }),
    search: t.string({
      required: false,
      description: "Case-insensitive text in args, kwargs, result or exception.",
    }),
  }),
});

const TaskSortField = builder.enumType("TaskSortField", {
  values: {
    CREATED_AT: { value: "createdAt" },
    UPDATED_AT: { value: "updatedAt" },
    RUNTIME: { value: "runtime" },
    NAME: { value: "name" },
  } as const,
});

const SortDirection = builder.enumType("SortDirection", {
  values: { ASC: { value: "asc" }, DESC: { value: "desc" } } as const,
});

const TaskSortInput = builder.inputType("TaskSort", {
  fields: (t) => ({
    field: t.field({ type: TaskSortField, required: true }),
    direction: t.field({ type: SortDirection, defaultValue: "desc" }),
  }),
});

const TaskCountEstimateRef = builder.objectRef<CountEstimate>("TaskCountEstimate").implement({
  description: `How many tasks match: counted when few (${EXACT_COUNT_LIMIT.toLocaleString("en-US")} at least), estimated beyond.`,
  fields: (t) => ({
    value: t.exposeInt("value"),
    exact: t.exposeBoolean("exact", {
      description: `Whether \`value\` was counted. When false, more than ${EXACT_COUNT_LIMIT.toLocaleString("en-US")} match and \`value\` is the planner's estimate, from table statistics (close for the whole history and for state, name, worker or queue filters; rough for text search).`,
    }),
  }),
});

builder.queryFields((t) => ({
  tasks: t.prismaConnection(
    {
      type: "Task",
      cursor: "id",
      description: "Task history, newest first unless sorted otherwise.",
      defaultSize: 50,
      maxSize: 500,
      args: {
        filter: t.arg({ type: TaskFilterInput, required: false }),
        sort: t.arg({ type: TaskSortInput, required: false }),
      },
      // Cost grows with the page size; the edges list adds its own default ×10, taken back here.
      complexity: (args) => ({
        field: 1,
        multiplier: Math.min(args.first ?? args.last ?? 50, 500) / 10,
      }),
      totalCount: (_parent, args, ctx) =>
        ctx.db.prisma.task.count({
          where: ctx.services.tasks.where((args.filter ?? {}) as TaskFilter),
        }),
      resolve: async (query, _root, args, ctx) => {
        const filter = (args.filter ?? {}) as TaskFilter;
        // A text search runs as its probe chose (see `searchPlan`): by the ids of its matches,
        // or with planner settings, in a transaction of the query's own.
        const plan = await ctx.services.tasks.searchPlan(filter, Math.abs(query.take ?? 51));
        const find = ctx.db.prisma.task.findMany({
          ...query,
          where: ctx.services.tasks.planWhere(filter, plan),
          orderBy: ctx.services.tasks.orderBy(
            args.sort ? { field: args.sort.field, direction: args.sort.direction ?? "desc" } : null,
          ),
        });
        if (!plan?.settings) return find;
        const [, tasks] = await ctx.db.prisma.$transaction([
          ctx.db.prisma.$queryRawUnsafe(plan.settings),
          find,
        ]);
        return tasks;
      },
    },
    {
      fields: (t) => ({
        totalCountEstimate: t.field({
          type: TaskCountEstimateRef,
          description: `How many tasks match, at a bounded cost: unlike totalCount, which reads every match (about a tenth of a second per million tasks), it stops counting at ${EXACT_COUNT_LIMIT.toLocaleString("en-US")} and estimates beyond.`,
          // Like totalCount, asked alone it needs no page of tasks.
          extensions: { pothosPrismaTotalCount: true },
          resolve: (connection, _a, ctx) =>
            ctx.services.tasks.countEstimate((connection.args.filter ?? {}) as TaskFilter),
        }),
      }),
    },
  ),
  task: t.prismaField({
    type: "Task",
    nullable: true,
    args: { id: t.arg.id({ required: true }) },
    resolve: (query, _root, args, ctx) =>
      ctx.db.prisma.task.findUnique({ ...query, where: { id: String(args.id) } }),
  }),
}));

const SendTaskInput = builder.inputType("SendTaskInput", {
  fields: (t) => ({
    name: t.string({ required: true, description: "Any task name, ours or Python's." }),
    args: t.field({ type: "JSON", required: false, description: "A JSON array." }),
    kwargs: t.field({ type: "JSON", required: false, description: "A JSON object." }),
    queue: t.string({ required: false }),
    countdown: t.float({ required: false, description: "Seconds before it may run." }),
    eta: t.field({ type: "DateTime", required: false }),
    expires: t.float({ required: false, description: "Seconds after which it is discarded." }),
    priority: t.int({ required: false }),
  }),
});

const BulkRetryPayload = builder
  .objectRef<{ sent: Array<{ id: string }>; skipped: string[] }>("BulkRetryPayload")
  .implement({
    fields: (t) => ({
      sent: t.field({ type: [TaskRef], resolve: (p) => p.sent as never }),
      skipped: t.idList({
        description: "Tasks whose arguments are not known, so they cannot run again.",
        resolve: (p) => p.skipped,
      }),
    }),
  });

const RevokePayload = builder.objectRef<RevokeOutcome>("RevokePayload").implement({
  fields: (t) => ({
    revoked: t.idList({ resolve: (p) => p.revoked }),
    unknown: t.idList({
      description:
        "Revoked ids the control plane has no record of. They are revoked all the same: workers discard such a task if it arrives later (Celery's revoke before arrival).",
      resolve: (p) => p.unknown,
    }),
    replies: t.field({ type: [WorkerReplyRef], resolve: (p) => p.replies }),
  }),
});

builder.mutationFields((t) => ({
  sendTask: t.field({
    type: TaskRef,
    description: "Send any task by name; arguments are checked against its schema when known.",
    authScopes: { operator: true },
    errors: { types: MUTATION_ERRORS, directResult: true },
    args: { input: t.arg({ type: SendTaskInput, required: true }) },
    resolve: (_root, { input }, ctx) =>
      ctx.services.tasks.send(ctx.viewer, {
        ...input,
        args: input.args as unknown[] | null,
        kwargs: input.kwargs as Record<string, unknown> | null,
      }),
  }),
  retryTask: t.field({
    type: TaskRef,
    description: "Run a task again with the same arguments, as a new task linked to it (rerunOf).",
    authScopes: { operator: true },
    errors: { types: MUTATION_ERRORS, directResult: true },
    args: { id: t.arg.id({ required: true }) },
    resolve: (_root, args, ctx) => ctx.services.tasks.retry(ctx.viewer, String(args.id)),
  }),
  revokeTask: t.field({
    type: RevokePayload,
    description:
      "Revoke a task; with terminate, stop it if it runs (signal defaults to SIGTERM). An id not seen yet is revoked too (see `unknown`).",
    authScopes: { operator: true },
    errors: { types: MUTATION_ERRORS },
    args: {
      id: t.arg.id({ required: true }),
      terminate: t.arg.boolean({ defaultValue: false }),
      signal: t.arg.string({ required: false }),
    },
    resolve: (_root, args, ctx) => ctx.services.tasks.revoke(ctx.viewer, String(args.id), args),
  }),
  retryTasks: t.field({
    type: BulkRetryPayload,
    description: "Run again every task of a selection (at most 10,000).",
    authScopes: { operator: true },
    errors: { types: MUTATION_ERRORS },
    args: { filter: t.arg({ type: TaskFilterInput, required: true }) },
    resolve: (_root, args, ctx) =>
      ctx.services.tasks.retryMany(ctx.viewer, args.filter as TaskFilter),
  }),
  revokeTasks: t.field({
    type: RevokePayload,
    description: "Revoke every task of a selection (at most 10,000).",
    authScopes: { operator: true },
    errors: { types: MUTATION_ERRORS },
    args: {
      filter: t.arg({ type: TaskFilterInput, required: true }),
      terminate: t.arg.boolean({ defaultValue: false }),
      signal: t.arg.string({ required: false }),
    },
    resolve: (_root, args, ctx) =>
      ctx.services.tasks.revokeMany(ctx.viewer, args.filter as TaskFilter, args),
  }),
}));
