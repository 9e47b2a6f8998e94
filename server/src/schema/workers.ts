/** Workers, their registered tasks and queues, and steering them over remote control. */
import { builder } from "../builder.js";
import type { QueueView } from "../services/queue-service.js";
import type { RegisteredTaskView } from "../services/registry-service.js";
import type { WorkerReply } from "../services/replies.js";
import { isOnline } from "../services/worker-service.js";
import { MUTATION_ERRORS } from "./errors.js";

export const WorkerReplyRef = builder.objectRef<WorkerReply>("WorkerReply").implement({
  description: "One worker's answer to a control command.",
  fields: (t) => ({
    hostname: t.exposeString("hostname"),
    ok: t.exposeBoolean("ok"),
    message: t.exposeString("message", { nullable: true }),
    data: t.field({ type: "JSON", nullable: true, resolve: (r) => r.data }),
  }),
});

export const WorkerRef = builder.prismaObject("Worker", {
  description: "A worker, ours or Python's, identified by its node name.",
  fields: (t) => ({
    hostname: t.exposeID("hostname"),
    online: t.boolean({
      description:
        "A heartbeat arrived within twice the heartbeat interval, and no worker-offline.",
      resolve: (w) => isOnline(w),
    }),
    pid: t.exposeInt("pid", { nullable: true }),
    software: t.string({
      nullable: true,
      description: "sw_ident and sw_ver, e.g. `py-celery 5.2.6` or `celeriac 0.1.0`.",
      resolve: (w) => (w.swIdent ? `${w.swIdent} ${w.swVer ?? ""}`.trim() : null),
    }),
    system: t.exposeString("swSys", { nullable: true }),
    heartbeatInterval: t.exposeFloat("freq"),
    active: t.exposeInt("active", { description: "Tasks running at the last heartbeat." }),
    processed: t.exposeInt("processed", { description: "Tasks run since it started." }),
    loadavg: t.exposeFloatList("loadavg"),
    queues: t.exposeStringList("queues"),
    concurrency: t.exposeInt("concurrency", { nullable: true }),
    lastHeartbeat: t.expose("lastHeartbeat", { type: "DateTime", nullable: true }),
    firstSeen: t.expose("firstSeen", { type: "DateTime" }),
    activeTasks: t.field({
      type: "JSON",
      description: "What it runs now, asked over remote control (`inspect active`).",
      resolve: (w, _a, ctx) => ctx.services.workers.active(w.hostname),
    }),
  }),
});

const RegisteredTaskRef = builder.objectRef<RegisteredTaskView>("RegisteredTask").implement({
  description: "A task some worker can run, with its argument schema when the worker has one.",
  fields: (t) => ({
    name: t.exposeString("name"),
    workers: t.exposeStringList("workers"),
    argsSchema: t.field({
      type: "JSON",
      nullable: true,
      description: "JSON Schema of the positional arguments (an array).",
      resolve: (r) => r.argsSchema,
    }),
    rateLimit: t.exposeString("rateLimit", { nullable: true }),
  }),
});

builder.subscriptionFields((t) => ({
  registeredTasksChanged: t.field({
    type: [RegisteredTaskRef],
    description:
      "The tasks the fleet can run, each time that changes (a worker came with new ones, or was forgotten).",
    subscribe: (_r, _a, ctx) => ctx.services.pubsub.subscribe("registry:changed"),
    resolve: (_m, _a, ctx) => ctx.services.registry.list(),
  }),
}));

const QueueRef = builder.objectRef<QueueView>("Queue").implement({
  fields: (t) => ({
    name: t.exposeID("name"),
    messages: t.exposeInt("messages", { nullable: true, description: "Messages waiting." }),
    consumers: t.exposeInt("consumers", { nullable: true }),
    workers: t.exposeStringList("workers", { description: "Online workers consuming it." }),
  }),
});

builder.queryFields((t) => ({
  workers: t.prismaField({
    type: ["Worker"],
    args: { online: t.arg.boolean({ required: false }) },
    resolve: (_query, _root, args, ctx) => ctx.services.workers.list(args),
  }),
  worker: t.prismaField({
    type: "Worker",
    nullable: true,
    args: { hostname: t.arg.id({ required: true }) },
    resolve: (_query, _root, args, ctx) => ctx.services.workers.get(String(args.hostname)),
  }),
  registeredTasks: t.field({
    type: [RegisteredTaskRef],
    resolve: (_root, _args, ctx) => ctx.services.registry.list(),
  }),
  queues: t.field({
    type: [QueueRef],
    resolve: (_root, _args, ctx) => ctx.services.queues.list(),
  }),
}));

const destination = () =>
  builder.args((t) => ({
    destination: t.stringList({
      required: false,
      description:
        "Node names to address; default: every worker. Named workers must answer: if none does, the result is NotFoundError (a name never seen) or UnavailableError; if some do, the silent ones are listed with ok: false.",
    }),
  }));

/** What the single-worker commands say about a worker that does not answer. */
const ADDRESSED =
  "NotFoundError for a node name never seen; UnavailableError for a known worker that does not answer (offline, or busy past the timeout).";

builder.mutationFields((t) => ({
  pingWorkers: t.field({
    type: [WorkerReplyRef],
    errors: { types: MUTATION_ERRORS },
    authScopes: { operator: true },
    args: destination(),
    resolve: (_r, args, ctx) => ctx.services.workers.ping(ctx.viewer, args.destination),
  }),
  shutdownWorker: t.field({
    type: [WorkerReplyRef],
    errors: { types: MUTATION_ERRORS },
    description:
      "Warm shutdown: the worker finishes its running tasks, then stops. Celery's workers do not answer it: an online one that stays silent counts as done. NotFoundError for a node name never seen; UnavailableError for an offline one.",
    authScopes: { operator: true },
    args: { hostname: t.arg.string({ required: true }) },
    resolve: (_r, args, ctx) => ctx.services.workers.shutdown(ctx.viewer, args.hostname),
  }),
  growPool: t.field({
    type: [WorkerReplyRef],
    errors: { types: MUTATION_ERRORS },
    description: `Run n more tasks at once on a worker. ${ADDRESSED}`,
    authScopes: { operator: true },
    args: { hostname: t.arg.string({ required: true }), n: t.arg.int({ defaultValue: 1 }) },
    resolve: (_r, args, ctx) =>
      ctx.services.workers.growPool(ctx.viewer, args.hostname, args.n ?? 1),
  }),
  shrinkPool: t.field({
    type: [WorkerReplyRef],
    errors: { types: MUTATION_ERRORS },
    description: `Run n fewer tasks at once on a worker (at least one). ${ADDRESSED}`,
    authScopes: { operator: true },
    args: { hostname: t.arg.string({ required: true }), n: t.arg.int({ defaultValue: 1 }) },
    resolve: (_r, args, ctx) =>
      ctx.services.workers.shrinkPool(ctx.viewer, args.hostname, args.n ?? 1),
  }),
  addConsumer: t.field({
    type: [WorkerReplyRef],
    errors: { types: MUTATION_ERRORS },
    description: "Make workers consume one more queue.",
    authScopes: { operator: true },
    args: { queue: t.arg.string({ required: true }), ...destination() },
    resolve: (_r, args, ctx) =>
      ctx.services.workers.addConsumer(ctx.viewer, args.queue, args.destination),
  }),
  cancelConsumer: t.field({
    type: [WorkerReplyRef],
    errors: { types: MUTATION_ERRORS },
    authScopes: { operator: true },
    args: { queue: t.arg.string({ required: true }), ...destination() },
    resolve: (_r, args, ctx) =>
      ctx.services.workers.cancelConsumer(ctx.viewer, args.queue, args.destination),
  }),
  setRateLimit: t.field({
    type: [WorkerReplyRef],
    errors: { types: MUTATION_ERRORS },
    description:
      'Per worker, as Celery: "10/s", "100/m", "1000/h"; null removes the limit. With `global`, the fleet-wide limit (globalRateLimit) that our workers share through Redis.',
    authScopes: { operator: true },
    args: {
      taskName: t.arg.string({ required: true }),
      rateLimit: t.arg.string({ required: false }),
      global: t.arg.boolean({ defaultValue: false }),
      ...destination(),
    },
    resolve: (_r, args, ctx) =>
      ctx.services.workers.setRateLimit(
        ctx.viewer,
        args.taskName,
        args.rateLimit ?? null,
        args.destination,
        args.global ?? false,
      ),
  }),
  setTimeLimit: t.field({
    type: [WorkerReplyRef],
    errors: { types: MUTATION_ERRORS },
    description: "Soft and hard time limits in seconds for a task type.",
    authScopes: { operator: true },
    args: {
      taskName: t.arg.string({ required: true }),
      soft: t.arg.float({ required: false }),
      hard: t.arg.float({ required: false }),
      ...destination(),
    },
    resolve: (_r, args, ctx) =>
      ctx.services.workers.setTimeLimit(
        ctx.viewer,
        args.taskName,
        { soft: args.soft, hard: args.hard },
        args.destination,
      ),
  }),
  purgeQueue: t.int({
    description: "Delete every waiting message of a queue; returns how many.",
    authScopes: { operator: true },
    errors: { types: MUTATION_ERRORS },
    args: { name: t.arg.string({ required: true }) },
    resolve: (_r, args, ctx) => ctx.services.queues.purge(ctx.viewer, args.name),
  }),
}));
