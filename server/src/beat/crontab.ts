/**
 * Celery's crontab: its pattern syntax (celery.schedules.crontab_parser) and its matching rules,
 * evaluated in an IANA time zone with explicit daylight-saving rules.
 *
 * Syntax, as Celery: each field is a comma list of `*`, `*\/step`, `n`, `a-b` and `a-b/step`;
 * a range may wrap (`fri-mon`, `22-2`) and a step keeps every step-th value of the expanded list
 * (so `*\/2` in day_of_week is 0, 2, 4, 6 and in day_of_month 1, 3, 5 …). day_of_week is 0–6 with
 * 0 = Sunday (7 is rejected, as in Celery 5) and takes names (`sun`, `monday`); month_of_year
 * takes names (`jan`). Matching, as Celery and unlike Unix cron: a day matches when day of week,
 * day of month and month all match (AND).
 *
 * Daylight saving (Celery has no rule of its own; these are ours):
 * - A crontab bound to some hours (not all 24) fires once per matching wall-clock time: on a
 *   repeated hour at the first pass only; a time the clock jumps over fires once, at the first
 *   valid instant after the jump (02:30 in Paris on the last Sunday of March fires at 03:00),
 *   several skipped times of one jump making a single run.
 * - A crontab that matches every hour is periodic in real time (as cron treats `*` hours): it
 *   fires on both passes of a repeated hour, and not at times that do not exist, since the run an
 *   hour after the previous one happens anyway.
 */
import { DAY, instantsOf, type LocalDay, localDay, utcMidnight } from "./zone.js";

export interface CrontabFields {
  minute: string;
  hour: string;
  dayOfWeek: string;
  dayOfMonth: string;
  monthOfYear: string;
}

export type CrontabField = keyof CrontabFields;

const WEEKDAYS = ["sunday", "monday", "tuesday", "wednesday", "thursday", "friday", "saturday"];
const MONTHS = [
  "january",
  "february",
  "march",
  "april",
  "may",
  "june",
  "july",
  "august",
  "september",
  "october",
  "november",
  "december",
];

interface FieldSpec {
  label: string;
  min: number;
  /** How many values, as Celery's `max_`. */
  count: number;
  names?: { list: string[]; base: number };
}

const FIELDS: Record<CrontabField, FieldSpec> = {
  minute: { label: "minute", min: 0, count: 60 },
  hour: { label: "hour", min: 0, count: 24 },
  dayOfWeek: { label: "day_of_week", min: 0, count: 7, names: { list: WEEKDAYS, base: 0 } },
  dayOfMonth: { label: "day_of_month", min: 1, count: 31 },
  monthOfYear: { label: "month_of_year", min: 1, count: 12, names: { list: MONTHS, base: 1 } },
};

export class CrontabError extends Error {
  constructor(
    readonly field: CrontabField,
    message: string,
  ) {
    super(`${FIELDS[field].label}: ${message}`);
    this.name = "CrontabError";
  }
}

/** The values one field allows, sorted, exactly as Celery's crontab_parser expands it. */
export function parseField(field: CrontabField, spec: string): number[] {
  const f = FIELDS[field];
  const max = f.min + f.count - 1;
  const fail = (message: string): never => {
    throw new CrontabError(field, message);
  };
  const number = (token: string): number => {
    const t = token.trim().toLowerCase();
    let n: number | undefined;
    if (/^\d+$/.test(t)) n = Number(t);
    else if (f.names && /^[a-z]{3,}$/.test(t)) {
      const i = f.names.list.findIndex((name) => name === t || name.slice(0, 3) === t);
      if (i >= 0) n = i + f.names.base;
    }
    if (n === undefined)
      return fail(`"${token.trim()}" is not a number${f.names ? " or a name" : ""}`);
    if (n < f.min || n > max) return fail(`${n} is out of range ${f.min}-${max}`);
    return n;
  };
  const star = () => Array.from({ length: f.count }, (_, i) => f.min + i);
  const range = (from: string, to: string) => {
    const a = number(from);
    const b = number(to);
    if (b >= a) return Array.from({ length: b - a + 1 }, (_, i) => a + i);
    // Celery wraps a reversed range around the end: 22-2 is 22, 23, 0, 1, 2.
    return [
      ...Array.from({ length: max - a + 1 }, (_, i) => a + i),
      ...Array.from({ length: b - f.min + 1 }, (_, i) => f.min + i),
    ];
  };
  const step = (values: number[], s: string) => {
    if (!/^\s*\d+\s*$/.test(s)) return fail(`step "${s}" is not a number`);
    const n = Number(s);
    if (n < 1) return fail("a step must be at least 1");
    return values.filter((_, i) => i % n === 0);
  };
  if (!spec.trim()) return fail("empty pattern");
  const out = new Set<number>();
  for (const raw of spec.split(",")) {
    const part = raw.trim();
    if (!part) fail(`empty part in "${spec}"`);
    const rangeStep = part.match(/^(\w+)-(\w+)\/(\w*)$/);
    const plainRange = part.match(/^(\w+)-(\w+)$/);
    const starStep = part.match(/^\*\/(\w*)$/);
    let values: number[];
    if (rangeStep) values = step(range(rangeStep[1]!, rangeStep[2]!), rangeStep[3]!);
    else if (plainRange) values = range(plainRange[1]!, plainRange[2]!);
    else if (starStep) values = step(star(), starStep[1]!);
    else if (part === "*") values = star();
    else if (/^\w+$/.test(part)) values = [number(part)];
    else return fail(`cannot read "${part}"`);
    for (const v of values) out.add(v);
  }
  return [...out].sort((a, b) => a - b);
}

/** How far ahead to look for a match: 29 February on a given weekday recurs within 40 years. */
const HORIZON_DAYS = 366 * 50;

export class Crontab {
  readonly minutes: number[];
  readonly hours: number[];
  private readonly dow: boolean[];
  private readonly dom: boolean[];
  private readonly months: boolean[];
  /** Matches every hour: periodic in real time across DST changes (see above). */
  private readonly hourly: boolean;

  constructor(
    readonly fields: CrontabFields,
    readonly timezone: string,
  ) {
    this.minutes = parseField("minute", fields.minute);
    this.hours = parseField("hour", fields.hour);
    this.dow = mask(parseField("dayOfWeek", fields.dayOfWeek), 7);
    this.dom = mask(parseField("dayOfMonth", fields.dayOfMonth), 32);
    this.months = mask(parseField("monthOfYear", fields.monthOfYear), 13);
    this.hourly = this.hours.length === 24;
  }

  /** The first firing strictly after `after`; null if none within 50 years. */
  next(after: number): number | null {
    // Local dates are at most 14 h off UTC dates: starting a day early misses nothing.
    let wall = utcMidnight(after) - DAY;
    const end = wall + HORIZON_DAYS * DAY;
    while (wall < end) {
      const date = new Date(wall);
      const month = date.getUTCMonth() + 1;
      if (!this.months[month]) {
        wall = Date.UTC(date.getUTCFullYear(), month, 1);
        continue;
      }
      if (this.dom[date.getUTCDate()] && this.dow[date.getUTCDay()]) {
        const found = this.firstOnDay(localDay(wall, this.timezone), after);
        if (found !== null) return found;
      }
      wall += DAY;
    }
    return null;
  }

  /** The times of `count` firings after `after`. */
  upcoming(after: number, count: number): number[] {
    const out: number[] = [];
    for (let t = this.next(after); t !== null && out.length < count; t = this.next(t)) out.push(t);
    return out;
  }

  /** Whether any date ever matches (day 31 of February never does). */
  matchesSomeDay(): boolean {
    return this.next(Date.UTC(2000, 0, 1)) !== null;
  }

  private firstOnDay(day: LocalDay, after: number): number | null {
    if (day.wall + DAY - Math.min(day.before, day.after) <= after) return null;
    if (day.transition === null) {
      for (const h of this.hours)
        for (const m of this.minutes) {
          const t = day.wall + h * 3_600_000 + m * 60_000 - day.before;
          if (t > after) return t;
        }
      return null;
    }
    // A day with a DST change: instants are not in wall-time order, so take the least.
    let best: number | null = null;
    const largest = Math.max(day.before, day.after);
    for (const h of this.hours)
      for (const m of this.minutes) {
        const wallTime = day.wall + h * 3_600_000 + m * 60_000;
        // Later wall times cannot name an instant earlier than this one.
        if (best !== null && wallTime - largest > best) return best;
        const instants = instantsOf(wallTime, day);
        const fire =
          instants.length === 0
            ? this.hourly
              ? []
              : [day.transition]
            : this.hourly
              ? instants
              : [instants[0]!];
        for (const t of fire) if (t > after && (best === null || t < best)) best = t;
      }
    return best;
  }

  describe(): string {
    const f = this.fields;
    return `${f.minute} ${f.hour} ${f.dayOfMonth} ${f.monthOfYear} ${f.dayOfWeek} (m/h/dM/MY/d) ${this.timezone}`;
  }
}

function mask(values: number[], size: number): boolean[] {
  const m = new Array<boolean>(size).fill(false);
  for (const v of values) m[v] = true;
  return m;
}
