/**
 * The four kinds of schedule behind one question: when is the next run after a given time?
 * A definition is plain data (what the API takes and the database stores); `compileSchedule`
 * validates it once and returns something that can answer.
 */
import { Crontab, CrontabError, type CrontabField, type CrontabFields } from "./crontab.js";
import { SOLAR_EVENTS, Solar, type SolarEvent } from "./solar.js";
import { isTimeZone } from "./zone.js";

export const INTERVAL_PERIODS = ["seconds", "minutes", "hours", "days"] as const;
export type IntervalPeriod = (typeof INTERVAL_PERIODS)[number];

const PERIOD_MS: Record<IntervalPeriod, number> = {
  seconds: 1000,
  minutes: 60_000,
  hours: 3_600_000,
  days: 86_400_000,
};

export type ScheduleDefinition =
  | { type: "interval"; every: number; period: IntervalPeriod }
  | ({ type: "crontab"; timezone: string } & CrontabFields)
  | { type: "solar"; event: SolarEvent; latitude: number; longitude: number }
  | { type: "clocked"; clockedTime: Date };

export type ScheduleType = ScheduleDefinition["type"];

export interface Schedule {
  readonly definition: ScheduleDefinition;
  /**
   * The first run strictly after `after`, or null if there is none. `anchor` is a time the
   * schedule ran or was due (intervals keep its phase, so they never drift).
   */
  next(after: number, anchor: number): number | null;
  /** As django-celery-beat shows it: `every 5 minutes`, `30 2 * * * (m/h/dM/MY/d) UTC` … */
  describe(): string;
}

/** A problem with a definition, and which field it is about. */
export class ScheduleError extends Error {
  constructor(
    readonly path: string[],
    message: string,
  ) {
    super(message);
    this.name = "ScheduleError";
  }
}

const crontabKey: Record<CrontabField, string> = {
  minute: "minute",
  hour: "hour",
  dayOfWeek: "dayOfWeek",
  dayOfMonth: "dayOfMonth",
  monthOfYear: "monthOfYear",
};

/** Validate a definition; throws a ScheduleError naming the field at fault. */
export function compileSchedule(def: ScheduleDefinition): Schedule {
  switch (def.type) {
    case "interval": {
      if (!Number.isInteger(def.every) || def.every < 1)
        throw new ScheduleError(
          ["interval", "every"],
          "the interval must be a whole number of at least 1",
        );
      if (!INTERVAL_PERIODS.includes(def.period))
        throw new ScheduleError(
          ["interval", "period"],
          `period must be one of ${INTERVAL_PERIODS.join(", ")}`,
        );
      const step = def.every * PERIOD_MS[def.period];
      const unit = def.every === 1 ? def.period.slice(0, -1) : def.period;
      return {
        definition: def,
        next: (after, anchor) =>
          anchor + Math.max(0, Math.floor((after - anchor) / step) + 1) * step,
        describe: () => `every ${def.every === 1 ? "" : `${def.every} `}${unit}`,
      };
    }
    case "crontab": {
      if (!isTimeZone(def.timezone))
        throw new ScheduleError(["crontab", "timezone"], `unknown time zone "${def.timezone}"`);
      let crontab: Crontab;
      try {
        crontab = new Crontab(def, def.timezone);
      } catch (error) {
        if (error instanceof CrontabError)
          throw new ScheduleError(["crontab", crontabKey[error.field]], error.message);
        throw error;
      }
      if (!crontab.matchesSomeDay())
        throw new ScheduleError(
          ["crontab"],
          "no date matches this day of week, day of month and month",
        );
      return {
        definition: def,
        next: (after) => crontab.next(after),
        describe: () => crontab.describe(),
      };
    }
    case "solar": {
      if (!SOLAR_EVENTS.includes(def.event))
        throw new ScheduleError(
          ["solar", "event"],
          `event must be one of ${SOLAR_EVENTS.join(", ")}`,
        );
      if (!(def.latitude >= -90 && def.latitude <= 90))
        throw new ScheduleError(["solar", "latitude"], "latitude must be between -90 and 90");
      if (!(def.longitude >= -180 && def.longitude <= 180))
        throw new ScheduleError(["solar", "longitude"], "longitude must be between -180 and 180");
      const solar = new Solar(def.event, def.latitude, def.longitude);
      return {
        definition: def,
        next: (after) => solar.next(after),
        describe: () => solar.describe(),
      };
    }
    case "clocked": {
      const at = def.clockedTime.getTime();
      if (!Number.isFinite(at))
        throw new ScheduleError(["clocked", "clockedTime"], "not a valid time");
      return {
        definition: def,
        next: (after) => (at > after ? at : null),
        describe: () => `at ${def.clockedTime.toISOString()}`,
      };
    }
  }
}

/** When an entry runs, besides its schedule. */
export interface Timing {
  schedule: Schedule;
  /** No run before this. */
  startTime: number | null;
}

/** The next run strictly after `after`, not before the start time. */
export function nextRun(timing: Timing, after: number, anchor: number): number | null {
  const { schedule, startTime } = timing;
  const from = startTime !== null ? Math.max(after, startTime - 1) : after;
  return schedule.next(from, anchor);
}

/**
 * The first run of an entry created, re-enabled or rescheduled at `now`: an interval counts from
 * its start time (so it first runs then) or from now; a clocked entry runs at its time even if that
 * is past (as django-celery-beat; the missed-run policy decides); the others at their next match.
 */
export function firstRun(timing: Timing, now: number): number | null {
  const def = timing.schedule.definition;
  if (def.type === "clocked") return def.clockedTime.getTime();
  return nextRun(
    timing,
    now,
    def.type === "interval" && timing.startTime !== null ? timing.startTime : now,
  );
}

/** The next `count` runs from `from` (itself included when it is a run time). */
export function upcomingRuns(
  timing: Timing,
  from: number | null,
  count: number,
  now: number,
): number[] {
  const out: number[] = [];
  let t = from ?? firstRun(timing, now);
  const anchor = t ?? now;
  while (t !== null && out.length < count) {
    out.push(t);
    t = nextRun(timing, t, anchor);
  }
  return out;
}
