/**
 * IANA time zones with nothing but Intl (Node 20 has no Temporal): UTC offsets, and the local
 * days a crontab walks through, each with the daylight-saving transition it contains, if any.
 *
 * A "wall" time is a local date and time written as if it were UTC (`Date.UTC(y, m, d, h, mi)`);
 * the instant it names is `wall - offset`, when it exists.
 */

const HOUR = 3_600_000;
const DAY = 24 * HOUR;

const formatters = new Map<string, Intl.DateTimeFormat>();

function formatter(zone: string): Intl.DateTimeFormat {
  let f = formatters.get(zone);
  if (!f) {
    f = new Intl.DateTimeFormat("en-US", {
      timeZone: zone,
      hourCycle: "h23",
      year: "numeric",
      month: "numeric",
      day: "numeric",
      hour: "numeric",
      minute: "numeric",
      second: "numeric",
    });
    formatters.set(zone, f);
  }
  return f;
}

/** Whether Intl knows `zone` (IANA names such as `Europe/Paris`, and `UTC`). */
export function isTimeZone(zone: string): boolean {
  if (!zone.trim()) return false;
  try {
    formatter(zone);
    return true;
  } catch {
    return false;
  }
}

/** Local time minus UTC at `instant`, in ms (Paris in summer: +2 h). Whole seconds. */
export function offsetAt(instant: number, zone: string): number {
  if (zone === "UTC") return 0;
  const second = Math.floor(instant / 1000) * 1000;
  const p: Record<string, number> = {};
  for (const part of formatter(zone).formatToParts(second))
    if (part.type !== "literal") p[part.type] = Number(part.value);
  const wall = Date.UTC(
    p.year as number,
    (p.month as number) - 1,
    p.day,
    p.hour,
    p.minute,
    p.second,
  );
  return wall - second;
}

/**
 * One local day: its wall midnight, the offset before and after, and the instant the offset
 * changes (null when it does not, which is nearly always).
 */
export interface LocalDay {
  /** Wall time of 00:00 that day. */
  wall: number;
  before: number;
  after: number;
  transition: number | null;
}

const days = new Map<string, LocalDay>();
const DAYS_CACHED = 20_000;

/**
 * The local day starting at wall midnight `wall` in `zone`. Its instants lie within 14 h of the
 * wall times, so looking from 14 h before midnight to 14 h after the next one sees any transition.
 */
export function localDay(wall: number, zone: string): LocalDay {
  const key = `${zone} ${wall}`;
  const cached = days.get(key);
  if (cached) return cached;
  const lo = wall - 14 * HOUR;
  const hi = wall + DAY + 14 * HOUR;
  const before = offsetAt(lo, zone);
  const after = offsetAt(hi, zone);
  const day: LocalDay = {
    wall,
    before,
    after,
    transition: before === after ? null : findTransition(lo, hi, before, zone),
  };
  if (days.size >= DAYS_CACHED) days.clear();
  days.set(key, day);
  return day;
}

/** The first whole second in (lo, hi] whose offset is no longer `before`. */
function findTransition(lo: number, hi: number, before: number, zone: string): number {
  let a = Math.floor(lo / 1000);
  let b = Math.ceil(hi / 1000);
  while (b - a > 1) {
    const mid = Math.floor((a + b) / 2);
    if (offsetAt(mid * 1000, zone) === before) a = mid;
    else b = mid;
  }
  return b * 1000;
}

/**
 * The instants a wall time of `day` names: one; two when the clock is set back and the time
 * repeats (earlier first); none when the clock jumps over it.
 */
export function instantsOf(wallTime: number, day: LocalDay): number[] {
  if (day.transition === null) return [wallTime - day.before];
  const out: number[] = [];
  const early = wallTime - day.before;
  if (early < day.transition) out.push(early);
  const late = wallTime - day.after;
  if (late >= day.transition && late !== early) out.push(late);
  return out.sort((x, y) => x - y);
}

/** Wall midnight of the UTC day containing `instant`. */
export function utcMidnight(instant: number): number {
  return Math.floor(instant / DAY) * DAY;
}

export { DAY, HOUR };
