/**
 * A periodic task as the beat holds it in memory: its message, its schedule compiled once, and
 * its cursor. Built from a database row, whether written by the API or by hand in SQL.
 */
import type { MissedRunPolicy, PlanInput } from "./plan.js";
import { MISSED_RUN_POLICIES } from "./plan.js";
import {
  compileSchedule,
  INTERVAL_PERIODS,
  type IntervalPeriod,
  type ScheduleDefinition,
  ScheduleError,
} from "./schedule.js";
import { SOLAR_EVENTS, type SolarEvent } from "./solar.js";

/** The schedule columns of a periodic task (Prisma's field names); times as Date or epoch ms. */
export interface ScheduleColumns {
  scheduleType: string;
  intervalEvery: number | null;
  intervalPeriod: string | null;
  crontabMinute: string | null;
  crontabHour: string | null;
  crontabDayOfWeek: string | null;
  crontabDayOfMonth: string | null;
  crontabMonthOfYear: string | null;
  timezone: string | null;
  solarEvent: string | null;
  latitude: number | null;
  longitude: number | null;
  clockedTime: Date | number | null;
}

/** What a message is made of. */
export interface MessageSource {
  name: string;
  task: string;
  args: unknown;
  kwargs: unknown;
  queue: string | null;
  exchange: string | null;
  routingKey: string | null;
  priority: number | null;
  headers: unknown;
  /** Epoch ms. */
  expires: number | null;
  expireSeconds: number | null;
}

/** A row as the beat selects it: times as epoch ms. */
export interface EntryRow extends MessageSource, Omit<ScheduleColumns, "clockedTime"> {
  id: string;
  version: number;
  enabled: boolean;
  oneOff: boolean;
  startTime: number | null;
  clockedTime: number | null;
  missedRunPolicy: string;
  maxMissedRuns: number;
  nextRunAt: number | null;
}

export interface Entry extends MessageSource, Omit<PlanInput, "due"> {
  id: string;
  version: number;
  /** The cursor: when it runs next; null until computed. */
  nextRunAt: number | null;
}

export function definitionOf(row: ScheduleColumns): ScheduleDefinition {
  const missing = (path: string[]): never => {
    throw new ScheduleError(path, `${path.join(".")} is missing`);
  };
  switch (row.scheduleType) {
    case "interval":
      if (!INTERVAL_PERIODS.includes(row.intervalPeriod as IntervalPeriod))
        throw new ScheduleError(["interval", "period"], `unknown period "${row.intervalPeriod}"`);
      return {
        type: "interval",
        every: row.intervalEvery ?? missing(["interval", "every"]),
        period: row.intervalPeriod as IntervalPeriod,
      };
    case "crontab":
      return {
        type: "crontab",
        minute: row.crontabMinute ?? "*",
        hour: row.crontabHour ?? "*",
        dayOfWeek: row.crontabDayOfWeek ?? "*",
        dayOfMonth: row.crontabDayOfMonth ?? "*",
        monthOfYear: row.crontabMonthOfYear ?? "*",
        timezone: row.timezone ?? "UTC",
      };
    case "solar":
      if (!SOLAR_EVENTS.includes(row.solarEvent as SolarEvent))
        throw new ScheduleError(["solar", "event"], `unknown solar event "${row.solarEvent}"`);
      return {
        type: "solar",
        event: row.solarEvent as SolarEvent,
        latitude: row.latitude ?? missing(["solar", "latitude"]),
        longitude: row.longitude ?? missing(["solar", "longitude"]),
      };
    case "clocked":
      return {
        type: "clocked",
        clockedTime: new Date(row.clockedTime ?? missing(["clocked", "clockedTime"])),
      };
    default:
      throw new ScheduleError(["scheduleType"], `unknown schedule type "${row.scheduleType}"`);
  }
}

/** Throws a ScheduleError when the row cannot be run (possible only for rows written in SQL). */
export function entryFromRow(row: EntryRow): Entry {
  const policy = MISSED_RUN_POLICIES.includes(row.missedRunPolicy as MissedRunPolicy)
    ? (row.missedRunPolicy as MissedRunPolicy)
    : "run_once";
  return {
    id: row.id,
    version: row.version,
    name: row.name,
    task: row.task,
    args: row.args,
    kwargs: row.kwargs,
    queue: row.queue,
    exchange: row.exchange,
    routingKey: row.routingKey,
    priority: row.priority,
    headers: row.headers,
    expires: row.expires,
    expireSeconds: row.expireSeconds,
    schedule: compileSchedule(definitionOf(row)),
    startTime: row.startTime,
    oneOff: row.oneOff || row.scheduleType === "clocked",
    policy,
    maxMissedRuns: Math.max(1, row.maxMissedRuns),
    nextRunAt: row.nextRunAt,
  };
}
