/** Periodic tasks: their schedules, upcoming and recent runs; editing them, running one now. */

import { SOLAR_EVENTS } from "../beat/solar.js";
import { builder } from "../builder.js";
import type { PeriodicTask } from "../generated/prisma/client.js";
import type { PeriodicRunMessage } from "../pubsub/pubsub.js";
import type {
  PeriodicTaskFilter,
  PeriodicTaskInput,
  PeriodicTaskUpdate,
} from "../services/schedule-service.js";
import { MUTATION_ERRORS } from "./errors.js";
import { TaskRef } from "./tasks.js";

const upper = (s: string) => s.toUpperCase();

const IntervalPeriodEnum = builder.enumType("IntervalPeriod", {
  values: {
    SECONDS: { value: "seconds" },
    MINUTES: { value: "minutes" },
    HOURS: { value: "hours" },
    DAYS: { value: "days" },
  } as const,
});

const SolarEventEnum = builder.enumType("SolarEvent", {
  description:
    "Celery's solar events: twilights at -18°, -12° and -6°, sunrise and sunset, solar noon.",
  values: Object.fromEntries(SOLAR_EVENTS.map((e) => [upper(e), { value: e }])) as Record<
    string,
    { value: (typeof SOLAR_EVENTS)[number] }
  >,
});

const MissedRunPolicyEnum = builder.enumType("MissedRunPolicy", {
  description:
    "What the beat does with scheduled times it missed (it was down, or the lead was changing hands for longer than the grace).",
  values: {
    RUN_ONCE: { value: "run_once", description: "One run for all of them (default)." },
    SKIP: { value: "skip", description: "No run; wait for the next time." },
    RUN_ALL: { value: "run_all", description: "A run for each, up to maxMissedRuns (the latest)." },
  } as const,
});

const ScheduleTypeEnum = builder.enumType("ScheduleType", {
  values: {
    INTERVAL: { value: "interval" },
    CRONTAB: { value: "crontab" },
    SOLAR: { value: "solar" },
    CLOCKED: { value: "clocked" },
  } as const,
});

const IntervalScheduleRef = builder.objectRef<PeriodicTask>("IntervalSchedule").implement({
  description: "Every N seconds, minutes, hours or days, keeping its phase.",
  fields: (t) => ({
    every: t.int({ resolve: (p) => p.intervalEvery ?? 0 }),
    period: t.field({ type: IntervalPeriodEnum, resolve: (p) => p.intervalPeriod as "seconds" }),
  }),
});

const CrontabScheduleRef = builder.objectRef<PeriodicTask>("CrontabSchedule").implement({
  description:
    "Celery's crontab: day of week 0-6 with 0 = Sunday, and day of week, day of month and month must all match.",
  fields: (t) => ({
    minute: t.string({ resolve: (p) => p.crontabMinute ?? "*" }),
    hour: t.string({ resolve: (p) => p.crontabHour ?? "*" }),
    dayOfWeek: t.string({ resolve: (p) => p.crontabDayOfWeek ?? "*" }),
    dayOfMonth: t.string({ resolve: (p) => p.crontabDayOfMonth ?? "*" }),
    monthOfYear: t.string({ resolve: (p) => p.crontabMonthOfYear ?? "*" }),
    timezone: t.string({ description: "IANA time zone.", resolve: (p) => p.timezone ?? "UTC" }),
  }),
});

const SolarScheduleRef = builder.objectRef<PeriodicTask>("SolarSchedule").implement({
  fields: (t) => ({
    event: t.field({ type: SolarEventEnum, resolve: (p) => p.solarEvent as "sunrise" }),
    latitude: t.float({ resolve: (p) => p.latitude ?? 0 }),
    longitude: t.float({ resolve: (p) => p.longitude ?? 0 }),
  }),
});

const ClockedScheduleRef = builder.objectRef<PeriodicTask>("ClockedSchedule").implement({
  description: "Once, at a given time.",
  fields: (t) => ({
    clockedTime: t.field({ type: "DateTime", resolve: (p) => p.clockedTime ?? new Date(0) }),
  }),
});

const ScheduleUnion = builder.unionType("Schedule", {
  types: [IntervalScheduleRef, CrontabScheduleRef, SolarScheduleRef, ClockedScheduleRef],
  resolveType: (p) =>
    ({
      interval: "IntervalSchedule",
      crontab: "CrontabSchedule",
      solar: "SolarSchedule",
      clocked: "ClockedSchedule",
    })[p.scheduleType] ?? "IntervalSchedule",
});

export const PeriodicTaskRunRef = builder.prismaObject("PeriodicTaskRun", {
  description: "One firing of a periodic task, and the task it sent.",
  fields: (t) => ({
    id: t.id({ resolve: (r) => String(r.id) }),
    scheduledFor: t.expose("scheduledFor", {
      type: "DateTime",
      nullable: true,
      description: "The scheduled time it is for; null for a run started by hand.",
    }),
    trigger: t.exposeString("trigger", {
      description:
        "schedule (on time), catch_up (a missed time run late) or manual (runPeriodicTaskNow).",
    }),
    status: t.exposeString("status", {
      description:
        "pending (decided, not yet confirmed sent: it will be sent), sent, or failed (manual runs only).",
    }),
    taskId: t.exposeID("taskId", {
      description: "The id of the task sent; the same if it had to be sent again.",
    }),
    taskName: t.exposeString("taskName"),
    attempts: t.exposeInt("attempts"),
    error: t.exposeString("error", { nullable: true, description: "Why the last send failed." }),
    decidedAt: t.expose("decidedAt", {
      type: "DateTime",
      description: "When the beat committed to it (up to a second before scheduledFor).",
    }),
    sentAt: t.expose("sentAt", { type: "DateTime", nullable: true }),
    task: t.prismaField({
      type: "Task",
      nullable: true,
      description: "The task in the history, once the control plane has heard of it.",
      resolve: (query, run, _a, ctx) =>
        ctx.db.prisma.task.findUnique({ ...query, where: { id: run.taskId } }),
    }),
    periodicTask: t.relation("periodicTask"),
  }),
});

export const PeriodicTaskRef = builder.prismaObject("PeriodicTask", {
  description:
    "A rule that sends a task at intervals, on a crontab, at a sun event or once at a time.",
  fields: (t) => ({
    id: t.exposeID("id"),
    name: t.exposeString("name"),
    task: t.exposeString("task", { description: "The task it sends, by name." }),
    args: t.field({
      type: "JSON",
      resolve: (p, _a, ctx) => ctx.services.redaction.apply(p.task, p.args),
    }),
    kwargs: t.field({
      type: "JSON",
      resolve: (p, _a, ctx) => ctx.services.redaction.apply(p.task, p.kwargs),
    }),
    queue: t.exposeString("queue", { nullable: true }),
    exchange: t.exposeString("exchange", { nullable: true }),
    routingKey: t.exposeString("routingKey", { nullable: true }),
    priority: t.exposeInt("priority", { nullable: true }),
    headers: t.expose("headers", {
      type: "JSON",
      description: "Extra headers; periodic_task_name is always added.",
    }),
    expires: t.expose("expires", { type: "DateTime", nullable: true }),
    expireSeconds: t.exposeInt("expireSeconds", { nullable: true }),
    oneOff: t.exposeBoolean("oneOff"),
    startTime: t.expose("startTime", { type: "DateTime", nullable: true }),
    enabled: t.exposeBoolean("enabled"),
    description: t.exposeString("description"),
    scheduleType: t.field({ type: ScheduleTypeEnum, resolve: (p) => p.scheduleType as "interval" }),
    schedule: t.field({ type: ScheduleUnion, resolve: (p) => p }),
    scheduleDescription: t.string({
      description: "The schedule in words, as django-celery-beat shows it.",
      resolve: (p, _a, ctx) => ctx.services.schedules.describe(p),
    }),
    missedRunPolicy: t.field({
      type: MissedRunPolicyEnum,
      resolve: (p) => p.missedRunPolicy as "run_once",
    }),
    maxMissedRuns: t.exposeInt("maxMissedRuns"),
    lastRunAt: t.expose("lastRunAt", { type: "DateTime", nullable: true }),
    totalRunCount: t.exposeInt("totalRunCount"),
    nextRunAt: t.expose("nextRunAt", {
      type: "DateTime",
      nullable: true,
      description: "When the beat fires it next; null while disabled.",
    }),
    nextRuns: t.field({
      type: ["DateTime"],
      description: "The next scheduled times (for a disabled entry: as if enabled now).",
      args: { count: t.arg.int({ defaultValue: 5 }) },
      complexity: (args) => Math.min(Math.max(args.count ?? 5, 1), 100),
      resolve: (p, args, ctx) =>
        ctx.services.schedules.nextRuns(p, Math.min(Math.max(args.count ?? 5, 0), 100)),
    }),
    runs: t.relatedConnection("runs", {
      cursor: "id",
      totalCount: true,
      description: "Its runs, newest first.",
      defaultSize: 10,
      maxSize: 200,
      query: { orderBy: { id: "desc" } },
    }),
    createdAt: t.expose("createdAt", { type: "DateTime" }),
    updatedAt: t.expose("updatedAt", { type: "DateTime" }),
  }),
});

const PeriodicTaskFilterInput = builder.inputType("PeriodicTaskFilter", {
  fields: (t) => ({
    ids: t.idList({ required: false }),
    enabled: t.boolean({ required: false }),
    tasks: t.stringList({ required: false, description: "Task names sent." }),
    scheduleTypes: t.field({ type: [ScheduleTypeEnum], required: false }),
    search: t.string({
      required: false,
      description: "Case-insensitive text in name, task or description.",
    }),
  }),
});

const IntervalInput = builder.inputType("IntervalScheduleInput", {
  fields: (t) => ({
    every: t.int({ required: true, description: "At least 1." }),
    period: t.field({ type: IntervalPeriodEnum, required: true }),
  }),
});

const CrontabInput = builder.inputType("CrontabScheduleInput", {
  description:
    "Celery's pattern syntax per field: `*`, `*/15`, `1,13,30-45,50-59/2`, ranges that wrap (`fri-mon`); names for days and months.",
  fields: (t) => ({
    minute: t.string({ defaultValue: "*", description: "0-59." }),
    hour: t.string({ defaultValue: "*", description: "0-23." }),
    dayOfWeek: t.string({ defaultValue: "*", description: "0-6, 0 = Sunday; sun-sat." }),
    dayOfMonth: t.string({ defaultValue: "*", description: "1-31." }),
    monthOfYear: t.string({ defaultValue: "*", description: "1-12; jan-dec." }),
    timezone: t.string({ defaultValue: "UTC", description: "IANA time zone, e.g. Europe/Paris." }),
  }),
});

const SolarInput = builder.inputType("SolarScheduleInput", {
  fields: (t) => ({
    event: t.field({ type: SolarEventEnum, required: true }),
    latitude: t.float({ required: true, description: "-90 to 90." }),
    longitude: t.float({ required: true, description: "-180 to 180." }),
  }),
});

const ClockedInput = builder.inputType("ClockedScheduleInput", {
  fields: (t) => ({ clockedTime: t.field({ type: "DateTime", required: true }) }),
});

const ScheduleInput = builder.inputType("ScheduleInput", {
  description: "Exactly one of these.",
  fields: (t) => ({
    interval: t.field({ type: IntervalInput, required: false }),
    crontab: t.field({ type: CrontabInput, required: false }),
    solar: t.field({ type: SolarInput, required: false }),
    clocked: t.field({ type: ClockedInput, required: false }),
  }),
});

/** The fields create and update share; on update every one is optional. */
const periodicTaskFields = (required: boolean) =>
  builder.inputType(required ? "CreatePeriodicTaskInput" : "UpdatePeriodicTaskInput", {
    description: required
      ? undefined
      : "Fields left out stay as they are; null clears an optional field (or restores a default).",
    fields: (t) => ({
      name: t.string({ required, description: "Unique." }),
      task: t.string({ required, description: "The task to send, by name (ours or Python's)." }),
      schedule: t.field({ type: ScheduleInput, required }),
      args: t.field({ type: "JSON", required: false, description: "A JSON array. Default: []." }),
      kwargs: t.field({
        type: "JSON",
        required: false,
        description: "A JSON object. Default: {}.",
      }),
      queue: t.string({ required: false }),
      exchange: t.string({ required: false }),
      routingKey: t.string({ required: false }),
      priority: t.int({ required: false, description: "0-255." }),
      headers: t.field({
        type: "JSON",
        required: false,
        description: "A JSON object of extra headers.",
      }),
      expires: t.field({
        type: "DateTime",
        required: false,
        description: "The entry stops firing then, and its messages expire then.",
      }),
      expireSeconds: t.int({
        required: false,
        description: "Messages expire this long after being sent.",
      }),
      oneOff: t.boolean({
        required: false,
        description: "Disable after the first run. Default: false.",
      }),
      startTime: t.field({ type: "DateTime", required: false, description: "No run before this." }),
      enabled: t.boolean({ required: false, description: "Default: true." }),
      description: t.string({ required: false }),
      missedRunPolicy: t.field({
        type: MissedRunPolicyEnum,
        required: false,
        description: "Default: RUN_ONCE.",
      }),
      maxMissedRuns: t.int({ required: false, description: "For RUN_ALL: 1-1000. Default: 10." }),
    }),
  });

const CreateInput = periodicTaskFields(true);
const UpdateInput = periodicTaskFields(false);

const DeletedPeriodicTask = builder
  .objectRef<Pick<PeriodicTask, "id" | "name">>("DeletedPeriodicTask")
  .implement({
    fields: (t) => ({ id: t.exposeID("id"), name: t.exposeString("name") }),
  });

const PeriodicRunEvent = builder.objectRef<PeriodicRunMessage>("PeriodicTaskRunEvent").implement({
  description: "A periodic task was sent.",
  fields: (t) => ({
    periodicTaskId: t.exposeID("periodicTaskId"),
    name: t.exposeString("name", { description: "The periodic task's name." }),
    taskId: t.exposeID("taskId"),
    taskName: t.exposeString("taskName"),
    scheduledFor: t.field({ type: "DateTime", resolve: (m) => new Date(m.scheduledFor) }),
    firedAt: t.field({ type: "DateTime", resolve: (m) => new Date(m.firedAt) }),
    task: t.field({
      type: TaskRef,
      nullable: true,
      resolve: (m, _a, ctx) => ctx.db.prisma.task.findUnique({ where: { id: m.taskId } }),
    }),
  }),
});

builder.queryFields((t) => ({
  periodicTasks: t.prismaConnection({
    type: "PeriodicTask",
    cursor: "id",
    description: "Periodic tasks by name.",
    defaultSize: 50,
    maxSize: 500,
    args: { filter: t.arg({ type: PeriodicTaskFilterInput, required: false }) },
    // As `tasks`: the page size, less the edges list's own default ×10.
    complexity: (args) => ({
      field: 1,
      multiplier: Math.min(args.first ?? args.last ?? 50, 500) / 10,
    }),
    totalCount: (_p, args, ctx) =>
      ctx.db.prisma.periodicTask.count({
        where: ctx.services.schedules.where((args.filter ?? {}) as PeriodicTaskFilter),
      }),
    resolve: (query, _root, args, ctx) =>
      ctx.db.prisma.periodicTask.findMany({
        ...query,
        where: ctx.services.schedules.where((args.filter ?? {}) as PeriodicTaskFilter),
        orderBy: [{ name: "asc" }, { id: "asc" }],
      }),
  }),
  periodicTask: t.prismaField({
    type: "PeriodicTask",
    nullable: true,
    description: "By id or by name.",
    args: { id: t.arg.id({ required: false }), name: t.arg.string({ required: false }) },
    resolve: (query, _root, args, ctx) =>
      args.id != null
        ? ctx.db.prisma.periodicTask.findUnique({ ...query, where: { id: String(args.id) } })
        : args.name != null
          ? ctx.db.prisma.periodicTask.findUnique({ ...query, where: { name: args.name } })
          : null,
  }),
}));

/** GraphQL gives absent inputs as undefined and explicit nulls as null: both pass through. */
const asInput = <T>(input: Record<string, unknown>) => input as unknown as T;

builder.mutationFields((t) => ({
  createPeriodicTask: t.field({
    type: PeriodicTaskRef,
    authScopes: { admin: true },
    errors: { types: MUTATION_ERRORS, directResult: true },
    args: { input: t.arg({ type: CreateInput, required: true }) },
    resolve: (_r, { input }, ctx) =>
      ctx.services.schedules.create(ctx.viewer, asInput<PeriodicTaskInput>(input)),
  }),
  updatePeriodicTask: t.field({
    type: PeriodicTaskRef,
    authScopes: { admin: true },
    errors: { types: MUTATION_ERRORS, directResult: true },
    args: { id: t.arg.id({ required: true }), input: t.arg({ type: UpdateInput, required: true }) },
    resolve: (_r, { id, input }, ctx) =>
      ctx.services.schedules.update(ctx.viewer, String(id), asInput<PeriodicTaskUpdate>(input)),
  }),
  deletePeriodicTask: t.field({
    type: DeletedPeriodicTask,
    authScopes: { admin: true },
    errors: { types: MUTATION_ERRORS, directResult: true },
    args: { id: t.arg.id({ required: true }) },
    resolve: (_r, { id }, ctx) => ctx.services.schedules.delete(ctx.viewer, String(id)),
  }),
  setPeriodicTaskEnabled: t.field({
    type: PeriodicTaskRef,
    authScopes: { admin: true },
    errors: { types: MUTATION_ERRORS, directResult: true },
    args: { id: t.arg.id({ required: true }), enabled: t.arg.boolean({ required: true }) },
    resolve: (_r, { id, enabled }, ctx) =>
      ctx.services.schedules.setEnabled(ctx.viewer, String(id), enabled),
  }),
  runPeriodicTaskNow: t.field({
    type: PeriodicTaskRunRef,
    description: "Send it now, outside its schedule (which does not move).",
    authScopes: { operator: true },
    errors: { types: MUTATION_ERRORS, directResult: true },
    args: { id: t.arg.id({ required: true }) },
    resolve: (_r, { id }, ctx) => ctx.services.schedules.runNow(ctx.viewer, String(id)),
  }),
}));

builder.subscriptionFields((t) => ({
  periodicTaskRuns: t.field({
    type: PeriodicRunEvent,
    description: "Each periodic task as it is sent (by the beat or by hand).",
    args: { periodicTaskId: t.arg.id({ required: false }) },
    subscribe: (_r, args, ctx) =>
      ctx.services.pubsub.subscribe("periodic:run", {
        filter: (m) =>
          args.periodicTaskId == null || m.periodicTaskId === String(args.periodicTaskId),
      }),
    resolve: (m) => m,
  }),
}));
