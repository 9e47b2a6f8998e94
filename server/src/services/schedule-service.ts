/**
 * Periodic tasks: reading them with their upcoming runs, and editing them (admin) or running one
 * now (operator). Inputs are validated here, once; every change goes through the audit trail. The
 * beat learns of changes by itself (a trigger notifies it), so nothing here talks to the beat.
 */
import { randomUUID } from "node:crypto";
import { z } from "zod";
import type { Viewer } from "../auth/roles.js";
import { type Clock, systemClock } from "../beat/clock.js";
import { definitionOf, type MessageSource } from "../beat/entry.js";
import type { RunSender } from "../beat/message.js";
import { MISSED_RUN_POLICIES, type MissedRunPolicy } from "../beat/plan.js";
import {
  compileSchedule,
  firstRun,
  INTERVAL_PERIODS,
  type Schedule,
  type ScheduleDefinition,
  ScheduleError,
  type Timing,
  upcomingRuns,
} from "../beat/schedule.js";
import { SOLAR_EVENTS } from "../beat/solar.js";
import type { Database } from "../db/database.js";
import { InvalidInputError, NotFoundError, UnavailableError } from "../errors.js";
import type { PeriodicTask, PeriodicTaskRun, Prisma } from "../generated/prisma/client.js";
import type { PubSub } from "../pubsub/pubsub.js";
import type { AuditLog } from "./audit.js";
import type { Redaction } from "./redaction.js";

export interface ScheduleInput {
  interval?: { every: number; period: string } | null;
  crontab?: {
    minute?: string | null;
    hour?: string | null;
    dayOfWeek?: string | null;
    dayOfMonth?: string | null;
    monthOfYear?: string | null;
    /** IANA name. Default: UTC. */
    timezone?: string | null;
  } | null;
  solar?: { event: string; latitude: number; longitude: number } | null;
  clocked?: { clockedTime: Date } | null;
}

export interface PeriodicTaskInput {
  name: string;
  task: string;
  schedule: ScheduleInput;
  args?: unknown;
  kwargs?: unknown;
  queue?: string | null;
  exchange?: string | null;
  routingKey?: string | null;
  priority?: number | null;
  headers?: unknown;
  expires?: Date | null;
  expireSeconds?: number | null;
  oneOff?: boolean | null;
  startTime?: Date | null;
  enabled?: boolean | null;
  description?: string | null;
  missedRunPolicy?: MissedRunPolicy | null;
  maxMissedRuns?: number | null;
}

/** Fields left out (undefined) stay as they are; null clears a field that may be empty. */
export type PeriodicTaskUpdate = Partial<PeriodicTaskInput>;

export interface PeriodicTaskFilter {
  ids?: string[] | null;
  enabled?: boolean | null;
  /** Task names sent. */
  tasks?: string[] | null;
  scheduleTypes?: string[] | null;
  /** Case-insensitive text in the name, task name or description. */
  search?: string | null;
}

const name = z.string().trim().min(1, "required").max(200);
const optionalName = z.string().trim().min(1).max(200).nullish();
const jsonObject = z.record(z.string(), z.unknown());

const fieldsSchema = z.object({
  name,
  task: name,
  args: z.array(z.unknown()),
  kwargs: jsonObject,
  queue: optionalName,
  exchange: optionalName,
  routingKey: optionalName,
  priority: z.number().int().min(0).max(255).nullish(),
  headers: jsonObject,
  expires: z.date().nullish(),
  expireSeconds: z.number().int().positive().nullish(),
  oneOff: z.boolean(),
  startTime: z.date().nullish(),
  enabled: z.boolean(),
  description: z.string().max(2000),
  missedRunPolicy: z.enum(MISSED_RUN_POLICIES as [MissedRunPolicy, ...MissedRunPolicy[]]),
  maxMissedRuns: z.number().int().min(1).max(1000),
});

type Fields = z.output<typeof fieldsSchema>;

/** What a periodic task holds besides its schedule, with the defaults of a new one. */
const DEFAULTS = {
  args: [],
  kwargs: {},
  headers: {},
  oneOff: false,
  enabled: true,
  description: "",
  missedRunPolicy: "run_once",
  maxMissedRuns: 10,
} as const;

/** The schedule columns, all of them: those of the other kinds cleared. */
type ScheduleColumns = Pick<
  PeriodicTask,
  | "scheduleType"
  | "intervalEvery"
  | "intervalPeriod"
  | "crontabMinute"
  | "crontabHour"
  | "crontabDayOfWeek"
  | "crontabDayOfMonth"
  | "crontabMonthOfYear"
  | "timezone"
  | "solarEvent"
  | "latitude"
  | "longitude"
  | "clockedTime"
>;

const NO_SCHEDULE: Omit<ScheduleColumns, "scheduleType"> = {
  intervalEvery: null,
  intervalPeriod: null,
  crontabMinute: null,
  crontabHour: null,
  crontabDayOfWeek: null,
  crontabDayOfMonth: null,
  crontabMonthOfYear: null,
  timezone: null,
  solarEvent: null,
  latitude: null,
  longitude: null,
  clockedTime: null,
};

function columnsOf(def: ScheduleDefinition): ScheduleColumns {
  switch (def.type) {
    case "interval":
      return {
        ...NO_SCHEDULE,
        scheduleType: "interval",
        intervalEvery: def.every,
        intervalPeriod: def.period,
      };
    case "crontab":
      return {
        ...NO_SCHEDULE,
        scheduleType: "crontab",
        crontabMinute: def.minute.trim(),
        crontabHour: def.hour.trim(),
        crontabDayOfWeek: def.dayOfWeek.trim(),
        crontabDayOfMonth: def.dayOfMonth.trim(),
        crontabMonthOfYear: def.monthOfYear.trim(),
        timezone: def.timezone,
      };
    case "solar":
      return {
        ...NO_SCHEDULE,
        scheduleType: "solar",
        solarEvent: def.event,
        latitude: def.latitude,
        longitude: def.longitude,
      };
    case "clocked":
      return { ...NO_SCHEDULE, scheduleType: "clocked", clockedTime: def.clockedTime };
  }
}

/** The one definition an input names; throws with the path at fault. */
function definitionFromInput(input: ScheduleInput | null | undefined): ScheduleDefinition {
  const given = (["interval", "crontab", "solar", "clocked"] as const).filter(
    (k) => input?.[k] != null,
  );
  if (!input || given.length !== 1)
    throw new ScheduleError(
      ["schedule"],
      "give exactly one of interval, crontab, solar or clocked",
    );
  if (input.interval) {
    const period = input.interval.period.toLowerCase();
    return {
      type: "interval",
      every: input.interval.every,
      period: (INTERVAL_PERIODS as readonly string[]).includes(period)
        ? (period as (typeof INTERVAL_PERIODS)[number])
        : (input.interval.period as never),
    };
  }
  if (input.crontab) {
    const c = input.crontab;
    return {
      type: "crontab",
      minute: c.minute ?? "*",
      hour: c.hour ?? "*",
      dayOfWeek: c.dayOfWeek ?? "*",
      dayOfMonth: c.dayOfMonth ?? "*",
      monthOfYear: c.monthOfYear ?? "*",
      timezone: (c.timezone ?? "UTC").trim(),
    };
  }
  if (input.solar) {
    const event = input.solar.event.toLowerCase();
    return {
      type: "solar",
      event: (SOLAR_EVENTS as readonly string[]).includes(event)
        ? (event as never)
        : (input.solar.event as never),
      latitude: input.solar.latitude,
      longitude: input.solar.longitude,
    };
  }
  return { type: "clocked", clockedTime: (input.clocked as { clockedTime: Date }).clockedTime };
}

function compile(def: ScheduleDefinition): Schedule {
  try {
    return compileSchedule(def);
  } catch (error) {
    if (error instanceof ScheduleError)
      throw new InvalidInputError(`invalid schedule: ${error.message}`, [
        { path: ["schedule", ...error.path], message: error.message },
      ]);
    throw error;
  }
}

function isUniqueViolation(error: unknown): boolean {
  return (error as { code?: string })?.code === "P2002";
}

export class ScheduleService {
  private readonly clock: Clock;

  constructor(
    private readonly db: Database,
    private readonly audit: AuditLog,
    private readonly redaction: Redaction,
    private readonly send: RunSender,
    private readonly pubsub: PubSub | null,
    options: { clock?: Clock } = {},
  ) {
    this.clock = options.clock ?? systemClock;
  }

  where(filter: PeriodicTaskFilter = {}): Prisma.PeriodicTaskWhereInput {
    const inList = (values: string[] | null | undefined) =>
      values && values.length > 0 ? { in: values } : undefined;
    const where: Prisma.PeriodicTaskWhereInput = {
      id: inList(filter.ids),
      task: inList(filter.tasks),
      scheduleType: inList(filter.scheduleTypes?.map((t) => t.toLowerCase())),
      enabled: filter.enabled ?? undefined,
    };
    const text = filter.search?.trim();
    if (text) {
      const contains = { contains: text, mode: "insensitive" as const };
      where.OR = [{ name: contains }, { task: contains }, { description: contains }];
    }
    return where;
  }

  get(id: string): Promise<PeriodicTask | null> {
    return this.db.prisma.periodicTask.findUnique({ where: { id } });
  }

  /** The schedule of a stored entry; null if it cannot be read (a bad edit made in SQL). */
  timing(task: PeriodicTask): Timing | null {
    try {
      return {
        schedule: compileSchedule(definitionOf(task)),
        startTime: task.startTime?.getTime() ?? null,
      };
    } catch {
      return null;
    }
  }

  /** The next `count` runs: from the beat's cursor, or from now if it has none yet. */
  nextRuns(task: PeriodicTask, count: number): Date[] {
    const timing = this.timing(task);
    if (!timing) return [];
    const now = this.clock.now();
    const from = task.enabled ? (task.nextRunAt?.getTime() ?? null) : null;
    const expires = task.expires?.getTime() ?? Number.POSITIVE_INFINITY;
    const limit = task.oneOff || task.scheduleType === "clocked" ? 1 : count;
    return upcomingRuns(timing, from, Math.min(count, limit), now)
      .filter((t) => t < expires)
      .map((t) => new Date(t));
  }

  describe(task: PeriodicTask): string {
    return this.timing(task)?.schedule.describe() ?? `invalid ${task.scheduleType} schedule`;
  }

  async create(viewer: Viewer | null, input: PeriodicTaskInput): Promise<PeriodicTask> {
    return this.audit.record(
      viewer,
      "createPeriodicTask",
      this.auditInput([input.task], input),
      async () => {
        const def = this.definition(input.schedule);
        const fields = this.validate({ ...DEFAULTS, ...stripNulls(input) }, def);
        const now = this.clock.now();
        try {
          return await this.db.prisma.periodicTask.create({
            data: { ...this.data(fields, def), nextRunAt: this.cursor(fields, def, now) },
          });
        } catch (error) {
          if (isUniqueViolation(error)) throw this.nameTaken(fields.name);
          throw error;
        }
      },
    );
  }

  async update(
    viewer: Viewer | null,
    id: string,
    patch: PeriodicTaskUpdate,
  ): Promise<PeriodicTask> {
    // The audit hides the arguments if the entry's task, before or after the change, is redacted.
    const before = await this.get(id);
    return this.audit.record(
      viewer,
      "updatePeriodicTask",
      { id, ...this.auditInput([patch.task, before?.task], patch) },
      async () => {
        const current = before;
        if (!current) throw new NotFoundError("periodic task", id);
        const def =
          patch.schedule !== undefined
            ? this.definition(patch.schedule)
            : this.storedDefinition(current);
        const merged = { ...this.fieldsOf(current), ...withoutUndefined(patch) } as Record<
          string,
          unknown
        >;
        const fields = this.validate(
          {
            ...merged,
            ...Object.fromEntries(Object.entries(DEFAULTS).filter(([k]) => merged[k] === null)),
          },
          def,
        );
        const rescheduled =
          patch.schedule !== undefined ||
          (patch.startTime !== undefined &&
            patch.startTime?.getTime() !== current.startTime?.getTime()) ||
          (patch.expires !== undefined &&
            patch.expires?.getTime() !== current.expires?.getTime()) ||
          (fields.enabled && !current.enabled);
        const nextRunAt = !fields.enabled
          ? null
          : rescheduled
            ? this.cursor(fields, def, this.clock.now())
            : current.nextRunAt;
        try {
          return await this.db.prisma.periodicTask.update({
            where: { id },
            data: { ...this.data(fields, def), nextRunAt },
          });
        } catch (error) {
          if (isUniqueViolation(error)) throw this.nameTaken(fields.name);
          throw error;
        }
      },
    );
  }

  async setEnabled(viewer: Viewer | null, id: string, enabled: boolean): Promise<PeriodicTask> {
    return this.audit.record(viewer, "setPeriodicTaskEnabled", { id, enabled }, async () => {
      const current = await this.get(id);
      if (!current) throw new NotFoundError("periodic task", id);
      if (current.enabled === enabled) return current;
      let nextRunAt: Date | null = null;
      if (enabled) {
        const def = this.storedDefinition(current);
        nextRunAt = this.cursor(
          { ...(this.fieldsOf(current) as Fields), enabled: true },
          def,
          this.clock.now(),
        );
      }
      return this.db.prisma.periodicTask.update({ where: { id }, data: { enabled, nextRunAt } });
    });
  }

  async delete(viewer: Viewer | null, id: string): Promise<PeriodicTask> {
    return this.audit.record(viewer, "deletePeriodicTask", { id }, async () => {
      try {
        return await this.db.prisma.periodicTask.delete({ where: { id } });
      } catch (error) {
        if ((error as { code?: string })?.code === "P2025")
          throw new NotFoundError("periodic task", id);
        throw error;
      }
    });
  }

  /**
   * Send the task now, outside its schedule (which it does not move), recorded as a `manual` run.
   * Works whether the entry is enabled or not, and whichever instance leads the beat.
   */
  async runNow(viewer: Viewer | null, id: string): Promise<PeriodicTaskRun> {
    return this.audit.record(viewer, "runPeriodicTaskNow", { id }, async () => {
      const task = await this.get(id);
      if (!task) throw new NotFoundError("periodic task", id);
      const now = this.clock.now();
      const run = await this.db.prisma.periodicTaskRun.create({
        data: {
          periodicTaskId: task.id,
          trigger: "manual",
          taskId: randomUUID(),
          taskName: task.task,
          decidedAt: new Date(now),
        },
      });
      try {
        await this.send(messageSourceOf(task), run.taskId);
      } catch (error) {
        const message = (error as Error).message ?? String(error);
        await this.db.prisma.periodicTaskRun.update({
          where: { id: run.id },
          data: { status: "failed", attempts: 1, error: message.slice(0, 2000) },
        });
        throw new UnavailableError(`the broker did not take the message: ${message}`);
      }
      const sent = await this.db.prisma.periodicTaskRun.update({
        where: { id: run.id },
        data: { status: "sent", attempts: 1, sentAt: new Date(this.clock.now()) },
      });
      this.pubsub?.publish("periodic:run", {
        periodicTaskId: task.id,
        name: task.name,
        taskId: run.taskId,
        taskName: task.task,
        scheduledFor: new Date(now).toISOString(),
        firedAt: new Date(now).toISOString(),
      });
      return sent;
    });
  }

  private definition(input: ScheduleInput | null | undefined): ScheduleDefinition {
    try {
      const def = definitionFromInput(input);
      compile(def);
      return def;
    } catch (error) {
      if (error instanceof ScheduleError)
        throw new InvalidInputError(`invalid schedule: ${error.message}`, [
          {
            path: ["schedule", ...error.path.filter((p) => p !== "schedule")],
            message: error.message,
          },
        ]);
      throw error;
    }
  }

  private storedDefinition(task: PeriodicTask): ScheduleDefinition {
    try {
      return definitionOf(task);
    } catch (error) {
      if (error instanceof ScheduleError)
        throw new InvalidInputError(
          `the stored schedule is invalid (give a new one): ${error.message}`,
          [{ path: ["schedule"], message: error.message }],
        );
      throw error;
    }
  }

  private validate(input: Record<string, unknown>, def: ScheduleDefinition): Fields {
    const parsed = fieldsSchema.safeParse(input);
    if (!parsed.success)
      throw InvalidInputError.fromIssues("invalid periodic task", parsed.error.issues);
    const fields = parsed.data;
    if (fields.expires && fields.expireSeconds)
      throw new InvalidInputError("invalid periodic task", [
        { path: ["expireSeconds"], message: "give expires or expireSeconds, not both" },
      ]);
    compile(def);
    // A clocked entry runs once, as django-celery-beat requires of it.
    if (def.type === "clocked") fields.oneOff = true;
    return fields;
  }

  private cursor(fields: Fields, def: ScheduleDefinition, now: number): Date | null {
    if (!fields.enabled) return null;
    const next = firstRun(
      { schedule: compile(def), startTime: fields.startTime?.getTime() ?? null },
      now,
    );
    return next === null ? null : new Date(next);
  }

  private data(fields: Fields, def: ScheduleDefinition) {
    return {
      name: fields.name,
      task: fields.task,
      args: fields.args as Prisma.InputJsonValue,
      kwargs: fields.kwargs as Prisma.InputJsonValue,
      queue: fields.queue ?? null,
      exchange: fields.exchange ?? null,
      routingKey: fields.routingKey ?? null,
      priority: fields.priority ?? null,
      headers: fields.headers as Prisma.InputJsonValue,
      expires: fields.expires ?? null,
      expireSeconds: fields.expireSeconds ?? null,
      oneOff: fields.oneOff,
      startTime: fields.startTime ?? null,
      enabled: fields.enabled,
      description: fields.description,
      missedRunPolicy: fields.missedRunPolicy,
      maxMissedRuns: fields.maxMissedRuns,
      ...columnsOf(def),
    };
  }

  private fieldsOf(task: PeriodicTask): Record<string, unknown> {
    const { name: n, task: t, args, kwargs, queue, exchange, routingKey, priority, headers } = task;
    return {
      name: n,
      task: t,
      args,
      kwargs,
      queue,
      exchange,
      routingKey,
      priority,
      headers,
      expires: task.expires,
      expireSeconds: task.expireSeconds,
      oneOff: task.oneOff,
      startTime: task.startTime,
      enabled: task.enabled,
      description: task.description,
      missedRunPolicy: task.missedRunPolicy,
      maxMissedRuns: task.maxMissedRuns,
    };
  }

  private nameTaken(n: string): InvalidInputError {
    return new InvalidInputError(`a periodic task named "${n}" exists`, [
      { path: ["name"], message: "already taken" },
    ]);
  }

  private auditInput(
    taskNames: Array<string | null | undefined>,
    input: object,
  ): Record<string, unknown> {
    return this.redaction.fields(taskNames, { ...(input as Record<string, unknown>) });
  }
}

/** A stored entry as the source of its message. */
export function messageSourceOf(task: PeriodicTask): MessageSource {
  return {
    name: task.name,
    task: task.task,
    args: task.args,
    kwargs: task.kwargs,
    queue: task.queue,
    exchange: task.exchange,
    routingKey: task.routingKey,
    priority: task.priority,
    headers: task.headers,
    expires: task.expires?.getTime() ?? null,
    expireSeconds: task.expireSeconds,
  };
}

function withoutUndefined<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(
    Object.entries(o).filter(([k, v]) => v !== undefined && k !== "schedule"),
  ) as Partial<T>;
}

function stripNulls<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(
    Object.entries(o).filter(([k, v]) => v !== undefined && v !== null && k !== "schedule"),
  ) as Partial<T>;
}
