/** Time zones for the schedule editor: the browser's IANA list, and wall-clock times in a zone. */

export function timeZones(): string[] {
  const supported = (Intl as { supportedValuesOf?: (key: string) => string[] }).supportedValuesOf;
  const zones = supported ? supported("timeZone") : [];
  return zones.includes("UTC") ? zones : ["UTC", ...zones];
}

export const localZone = (): string => Intl.DateTimeFormat().resolvedOptions().timeZone || "UTC";

/** The zone's offset from UTC at `date`, in minutes. */
function offsetMinutes(date: Date, zone: string): number {
  const parts = new Intl.DateTimeFormat("en-US", {
    timeZone: zone,
    hourCycle: "h23",
    year: "numeric",
    month: "2-digit",
    day: "2-digit",
    hour: "2-digit",
    minute: "2-digit",
    second: "2-digit",
  }).formatToParts(date);
  const get = (type: string) => Number(parts.find((p) => p.type === type)?.value ?? 0);
  const asUtc = Date.UTC(
    get("year"),
    get("month") - 1,
    get("day"),
    get("hour"),
    get("minute"),
    get("second"),
  );
  return Math.round((asUtc - date.getTime()) / 60_000);
}

/** `2026-12-24T18:00` read as a wall-clock time in `zone`, as an instant. */
export function wallTimeToDate(wall: string, zone: string): Date {
  const [datePart = "", timePart = "00:00"] = wall.split("T");
  const [y = 1970, m = 1, d = 1] = datePart.split("-").map(Number);
  const [hh = 0, mm = 0, ss = 0] = timePart.split(":").map(Number);
  const guess = Date.UTC(y, m - 1, d, hh, mm, ss);
  // Two passes settle the offset around a change of daylight saving time.
  let instant = guess - offsetMinutes(new Date(guess), zone) * 60_000;
  instant = guess - offsetMinutes(new Date(instant), zone) * 60_000;
  return new Date(instant);
}

/** An instant as the wall-clock time of `zone`, in the `datetime-local` input's format. */
export function dateToWallTime(date: Date, zone: string): string {
  const shifted = new Date(date.getTime() + offsetMinutes(date, zone) * 60_000);
  return shifted.toISOString().slice(0, 16);
}
