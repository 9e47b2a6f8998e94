/**
 * When schedules fire, without a database: Celery's crontab syntax and AND semantics, daylight
 * saving in two zones, intervals, solar events, clocked times, and the missed-run policies.
 */
import { describe, expect, it } from "vitest";
import { Crontab, type CrontabFields, parseField } from "../../server/src/beat/crontab.js";
import { type MissedRunPolicy, plan } from "../../server/src/beat/plan.js";
import {
  compileSchedule,
  firstRun,
  type ScheduleDefinition,
  type ScheduleError,
} from "../../server/src/beat/schedule.js";

const MIN = 60_000;
const HOUR = 60 * MIN;
const at = (iso: string) => Date.parse(iso);
const iso = (t: number | null) =>
  t === null ? null : new Date(t).toISOString().replace(".000", "");

function crontab(fields: Partial<CrontabFields>, timezone = "UTC"): Crontab {
  return new Crontab(
    { minute: "*", hour: "*", dayOfWeek: "*", dayOfMonth: "*", monthOfYear: "*", ...fields },
    timezone,
  );
}

const runs = (c: Crontab, from: string, count: number) => c.upcoming(at(from), count).map(iso);

describe("Celery's crontab syntax", () => {
  it("expands patterns as celery.schedules.crontab_parser does", () => {
    expect(parseField("minute", "*/15")).toEqual([0, 15, 30, 45]);
    expect(parseField("minute", "1,13,30-45,50-59/2")).toEqual([
      1, 13, 30, 31, 32, 33, 34, 35, 36, 37, 38, 39, 40, 41, 42, 43, 44, 45, 50, 52, 54, 56, 58,
    ]);
    // A reversed range wraps around the end; a step keeps every n-th value of the expanded list.
    expect(parseField("hour", "22-2")).toEqual([0, 1, 2, 22, 23]);
    expect(parseField("hour", "22-2/2")).toEqual([0, 2, 22]);
    expect(parseField("dayOfWeek", "fri-mon")).toEqual([0, 1, 5, 6]);
    // `*/2` is "divisible by 2" in day of week (from 0) and "every other day from the 1st" in day of month.
    expect(parseField("dayOfWeek", "*/2")).toEqual([0, 2, 4, 6]);
    expect(parseField("dayOfMonth", "*/10")).toEqual([1, 11, 21, 31]);
    expect(parseField("dayOfWeek", "sun,Monday,sat")).toEqual([0, 1, 6]);
    expect(parseField("monthOfYear", "jan-mar,dec")).toEqual([1, 2, 3, 12]);
    expect(parseField("hour", " 1 , 2 ")).toEqual([1, 2]);
  });

  it("rejects what Celery rejects, saying which field and why", () => {
    expect(() => parseField("minute", "60")).toThrow("minute: 60 is out of range 0-59");
    expect(() => parseField("hour", "24")).toThrow("hour: 24 is out of range 0-23");
    expect(() => parseField("dayOfWeek", "7")).toThrow("day_of_week: 7 is out of range 0-6");
    expect(() => parseField("dayOfMonth", "0")).toThrow("day_of_month: 0 is out of range 1-31");
    expect(() => parseField("monthOfYear", "13")).toThrow("month_of_year: 13 is out of range 1-12");
    expect(() => parseField("hour", "5/2")).toThrow(/cannot read "5\/2"/);
    expect(() => parseField("minute", "*/0")).toThrow(/at least 1/);
    expect(() => parseField("minute", "1,,2")).toThrow(/empty part/);
    expect(() => parseField("minute", "")).toThrow(/empty/);
    expect(() => parseField("dayOfWeek", "funday")).toThrow(/not a number or a name/);
    expect(() => parseField("minute", "-5")).toThrow();
  });

  it("needs day of week, day of month and month to all match (AND), with 0 = Sunday", () => {
    // Friday the 13th, not "every Friday and every 13th".
    const friday13 = crontab({ minute: "0", hour: "9", dayOfWeek: "5", dayOfMonth: "13" });
    expect(runs(friday13, "2026-01-01T00:00:00Z", 3)).toEqual([
      "2026-02-13T09:00:00Z",
      "2026-03-13T09:00:00Z",
      "2026-11-13T09:00:00Z",
    ]);
    const sundays = crontab({ minute: "0", hour: "0", dayOfWeek: "0" });
    for (const t of sundays.upcoming(at("2026-05-01T00:00:00Z"), 5))
      expect(new Date(t).getUTCDay()).toBe(0);
    // 29 February on a Monday: next in 2044.
    expect(
      runs(
        crontab({ minute: "0", hour: "0", dayOfWeek: "mon", dayOfMonth: "29", monthOfYear: "2" }),
        "2026-01-01T00:00:00Z",
        1,
      ),
    ).toEqual(["2044-02-29T00:00:00Z"]);
  });

  it("agrees with a minute-by-minute reading of the pattern (UTC)", () => {
    const patterns: Array<Partial<CrontabFields>> = [
      { minute: "*/7", hour: "3-5,22-1" },
      { minute: "0,30", hour: "*/3", dayOfWeek: "mon-fri" },
      { minute: "15", hour: "12", dayOfMonth: "1,15", monthOfYear: "*/2" },
      { minute: "59", hour: "23", dayOfWeek: "sat", dayOfMonth: "20-31" },
    ];
    for (const p of patterns) {
      const c = crontab(p);
      const sets = {
        minute: new Set(parseField("minute", p.minute ?? "*")),
        hour: new Set(parseField("hour", p.hour ?? "*")),
        dow: new Set(parseField("dayOfWeek", p.dayOfWeek ?? "*")),
        dom: new Set(parseField("dayOfMonth", p.dayOfMonth ?? "*")),
        month: new Set(parseField("monthOfYear", p.monthOfYear ?? "*")),
      };
      const matches = (t: number) => {
        const d = new Date(t);
        return (
          sets.minute.has(d.getUTCMinutes()) &&
          sets.hour.has(d.getUTCHours()) &&
          sets.dow.has(d.getUTCDay()) &&
          sets.dom.has(d.getUTCDate()) &&
          sets.month.has(d.getUTCMonth() + 1)
        );
      };
      const expected: number[] = [];
      for (let t = at("2026-01-01T00:01:00Z"); expected.length < 40; t += MIN)
        if (matches(t)) expected.push(t);
      expect(c.upcoming(at("2026-01-01T00:00:30Z"), 40), JSON.stringify(p)).toEqual(expected);
    }
  });
});

describe("daylight saving time", () => {
  describe("Europe/Paris (02:00 → 03:00 on 29 March 2026, 03:00 → 02:00 on 25 October 2026)", () => {
    it("fires a 02:30 crontab once at 03:00 on the day 02:30 does not exist", () => {
      expect(
        runs(crontab({ minute: "30", hour: "2" }, "Europe/Paris"), "2026-03-28T12:00:00Z", 3),
      ).toEqual([
        "2026-03-29T01:00:00Z", // 03:00 CEST, the first valid time after 02:30
        "2026-03-30T00:30:00Z", // 02:30 CEST
        "2026-03-31T00:30:00Z",
      ]);
    });

    it("merges several skipped times into one run", () => {
      expect(
        runs(crontab({ minute: "*/15", hour: "2" }, "Europe/Paris"), "2026-03-28T12:00:00Z", 2),
      ).toEqual(["2026-03-29T01:00:00Z", "2026-03-30T00:00:00Z"]);
      // A skipped time and a real one at the same instant: still one run.
      expect(
        runs(crontab({ minute: "0,30", hour: "2,3" }, "Europe/Paris"), "2026-03-28T12:00:00Z", 3),
      ).toEqual(["2026-03-29T01:00:00Z", "2026-03-29T01:30:00Z", "2026-03-30T00:00:00Z"]);
    });

    it("fires a 02:30 crontab once on the day 02:30 happens twice (at the first)", () => {
      expect(
        runs(crontab({ minute: "30", hour: "2" }, "Europe/Paris"), "2026-10-24T12:00:00Z", 2),
      ).toEqual([
        "2026-10-25T00:30:00Z", // 02:30 CEST; 02:30 CET an hour later does not fire
        "2026-10-26T01:30:00Z",
      ]);
    });

    it("keeps an every-hour crontab hourly in real time", () => {
      expect(runs(crontab({ minute: "0" }, "Europe/Paris"), "2026-10-24T23:30:00Z", 4)).toEqual([
        "2026-10-25T00:00:00Z", // 02:00 CEST
        "2026-10-25T01:00:00Z", // 02:00 CET
        "2026-10-25T02:00:00Z", // 03:00 CET
        "2026-10-25T03:00:00Z",
      ]);
      expect(runs(crontab({ minute: "0" }, "Europe/Paris"), "2026-03-28T23:30:00Z", 3)).toEqual([
        "2026-03-29T00:00:00Z", // 01:00 CET
        "2026-03-29T01:00:00Z", // 03:00 CEST: 02:00 did not exist, and no extra run
        "2026-03-29T02:00:00Z",
      ]);
    });
  });

  describe("America/New_York (02:00 → 03:00 on 8 March 2026, 02:00 → 01:00 on 1 November 2026)", () => {
    it("fires a 02:30 crontab once at 03:00 EDT when 02:30 is skipped", () => {
      expect(
        runs(crontab({ minute: "30", hour: "2" }, "America/New_York"), "2026-03-07T12:00:00Z", 2),
      ).toEqual(["2026-03-08T07:00:00Z", "2026-03-09T06:30:00Z"]);
    });

    it("fires a 01:30 crontab once when 01:30 repeats", () => {
      expect(
        runs(crontab({ minute: "30", hour: "1" }, "America/New_York"), "2026-10-31T12:00:00Z", 2),
      ).toEqual([
        "2026-11-01T05:30:00Z", // 01:30 EDT; not 01:30 EST
        "2026-11-02T06:30:00Z",
      ]);
    });

    it("runs an every-hour crontab on both passes of the repeated hour", () => {
      expect(
        runs(crontab({ minute: "30" }, "America/New_York"), "2026-11-01T04:00:00Z", 4),
      ).toEqual([
        "2026-11-01T04:30:00Z",
        "2026-11-01T05:30:00Z",
        "2026-11-01T06:30:00Z",
        "2026-11-01T07:30:00Z",
      ]);
    });
  });
});

describe("other schedules", () => {
  const compile = (def: ScheduleDefinition) => compileSchedule(def);

  it("interval: keeps its phase from the anchor, whatever the delay", () => {
    const s = compile({ type: "interval", every: 10, period: "minutes" });
    const anchor = at("2026-01-01T00:00:00Z");
    expect(iso(s.next(anchor, anchor))).toBe("2026-01-01T00:10:00Z");
    expect(iso(s.next(at("2026-01-01T00:37:12Z"), anchor))).toBe("2026-01-01T00:40:00Z");
    expect(iso(s.next(at("2025-12-31T00:00:00Z"), anchor))).toBe("2026-01-01T00:00:00Z");
    // A start time anchors the first run; without one the first run is one interval from now.
    const now = at("2026-01-01T12:00:00Z");
    expect(iso(firstRun({ schedule: s, startTime: at("2026-01-02T08:00:00Z") }, now))).toBe(
      "2026-01-02T08:00:00Z",
    );
    expect(iso(firstRun({ schedule: s, startTime: at("2026-01-01T11:55:00Z") }, now))).toBe(
      "2026-01-01T12:05:00Z",
    );
    expect(iso(firstRun({ schedule: s, startTime: null }, now))).toBe("2026-01-01T12:10:00Z");
  });

  it("solar: sunrise and twilights at a place, days without the event skipped", () => {
    const paris = compile({
      type: "solar",
      event: "sunrise",
      latitude: 48.8566,
      longitude: 2.3522,
    });
    const sunrise = paris.next(at("2026-06-21T00:00:00Z"), 0) as number;
    // 05:47 CEST in Paris on the solstice (ephem, as Celery uses, says 03:47 UTC).
    expect(Math.abs(sunrise - at("2026-06-21T03:47:00Z"))).toBeLessThan(2 * MIN);
    expect((paris.next(sunrise, 0) as number) - sunrise).toBeGreaterThan(23.9 * HOUR);
    const dusk = compile({
      type: "solar",
      event: "dusk_civil",
      latitude: 48.8566,
      longitude: 2.3522,
    });
    const sunset = compile({
      type: "solar",
      event: "sunset",
      latitude: 48.8566,
      longitude: 2.3522,
    });
    const day = at("2026-03-01T00:00:00Z");
    expect((dusk.next(day, 0) as number) - (sunset.next(day, 0) as number)).toBeGreaterThan(
      20 * MIN,
    );
    // Svalbard: midnight sun until late August, so the next sunset after 1 May is then.
    const svalbard = compile({ type: "solar", event: "sunset", latitude: 78.2, longitude: 15.6 });
    expect(iso(svalbard.next(at("2026-05-01T00:00:00Z"), 0))?.slice(0, 7)).toBe("2026-08");
  });

  it("clocked: once, at its time (even a past one, for the missed-run policy to judge)", () => {
    const t = at("2026-01-01T09:00:00Z");
    const s = compile({ type: "clocked", clockedTime: new Date(t) });
    expect(s.next(t - 1, t)).toBe(t);
    expect(s.next(t, t)).toBeNull();
    expect(firstRun({ schedule: s, startTime: null }, t + HOUR)).toBe(t);
  });

  it("rejects invalid definitions with the field at fault", () => {
    const fails = (def: ScheduleDefinition) => {
      try {
        compile(def);
      } catch (error) {
        return { path: (error as ScheduleError).path, message: (error as Error).message };
      }
      return null;
    };
    expect(fails({ type: "interval", every: 0, period: "seconds" })).toMatchObject({
      path: ["interval", "every"],
    });
    expect(
      fails({
        type: "crontab",
        minute: "61",
        hour: "*",
        dayOfWeek: "*",
        dayOfMonth: "*",
        monthOfYear: "*",
        timezone: "UTC",
      }),
    ).toMatchObject({ path: ["crontab", "minute"], message: "minute: 61 is out of range 0-59" });
    expect(
      fails({
        type: "crontab",
        minute: "0",
        hour: "*",
        dayOfWeek: "*",
        dayOfMonth: "*",
        monthOfYear: "*",
        timezone: "Mars/Olympus",
      }),
    ).toMatchObject({ path: ["crontab", "timezone"] });
    expect(
      fails({
        type: "crontab",
        minute: "0",
        hour: "0",
        dayOfWeek: "*",
        dayOfMonth: "30",
        monthOfYear: "2",
        timezone: "UTC",
      }),
    ).toMatchObject({ path: ["crontab"] });
    expect(fails({ type: "solar", event: "sunrise", latitude: 91, longitude: 0 })).toMatchObject({
      path: ["solar", "latitude"],
    });
  });
});

describe("missed-run policies", () => {
  const everyMinute = compileSchedule({ type: "interval", every: 1, period: "minutes" });
  const base = at("2026-01-01T00:00:00Z");
  const input = (policy: MissedRunPolicy, extra: Partial<Parameters<typeof plan>[0]> = {}) => ({
    schedule: everyMinute,
    startTime: null,
    due: base,
    policy,
    maxMissedRuns: 3,
    oneOff: false,
    expires: null,
    ...extra,
  });
  const grace = 10_000;

  it("runs a time due within the grace, late or not, whatever the policy", () => {
    for (const policy of ["run_once", "skip", "run_all"] as const) {
      const p = plan(input(policy), base + 4_000, grace);
      expect(p.runs).toEqual([{ scheduledFor: base, trigger: "schedule" }]);
      expect(p.next).toBe(base + MIN);
    }
  });

  it("after an outage: one run (default), none, or each of the latest up to the cap", () => {
    const now = base + 10 * MIN + 30_000; // ten times missed, none on time
    const once = plan(input("run_once"), now, grace);
    expect(once.runs).toEqual([{ scheduledFor: base + 10 * MIN, trigger: "catch_up" }]);
    expect(once.next).toBe(base + 11 * MIN);
    const skip = plan(input("skip"), now, grace);
    expect(skip.runs).toEqual([]);
    expect(skip.next).toBe(base + 11 * MIN);
    const all = plan(input("run_all"), now, grace);
    expect(all.runs.map((r) => r.scheduledFor)).toEqual([
      base + 8 * MIN,
      base + 9 * MIN,
      base + 10 * MIN,
    ]);
    expect(all.next).toBe(base + 11 * MIN);
  });

  it("counts a time still within the grace as on time, even after an outage", () => {
    const now = base + 10 * MIN + 5_000;
    expect(plan(input("skip"), now, grace).runs).toEqual([
      { scheduledFor: base + 10 * MIN, trigger: "schedule" },
    ]);
    expect(plan(input("run_once"), now, grace).runs).toEqual([
      { scheduledFor: base + 10 * MIN, trigger: "schedule" },
    ]);
    expect(plan(input("run_all"), now, grace).runs.map((r) => r.trigger)).toEqual([
      "catch_up",
      "catch_up",
      "catch_up",
      "schedule",
    ]);
  });

  it("finds the latest missed times of a long outage without walking it", () => {
    const everySecond = compileSchedule({ type: "interval", every: 1, period: "seconds" });
    const now = base + 30 * 24 * HOUR;
    const t0 = performance.now();
    const p = plan(input("run_all", { schedule: everySecond, maxMissedRuns: 2 }), now, grace);
    expect(performance.now() - t0).toBeLessThan(200);
    // The two latest missed seconds, then the eleven within the grace.
    expect(p.runs.map((r) => (now - r.scheduledFor) / 1000)).toEqual([
      12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0,
    ]);
  });

  it("disables one-offs after they ran, clocked entries once their time passed, and expired entries", () => {
    expect(plan(input("run_once", { oneOff: true }), base, grace)).toMatchObject({
      disable: true,
      next: null,
    });
    expect(
      plan(input("skip", { oneOff: true, due: base - HOUR }), base + 30_000, grace),
    ).toMatchObject({ runs: [], disable: false });
    const clocked = compileSchedule({ type: "clocked", clockedTime: new Date(base) });
    expect(plan(input("skip", { schedule: clocked, due: base }), base + HOUR, grace)).toMatchObject(
      { runs: [], disable: true },
    );
    expect(plan(input("run_once", { expires: base - 1 }), base, grace)).toMatchObject({
      runs: [],
      disable: true,
    });
    expect(plan(input("run_once", { expires: base + 30_000 }), base, grace)).toMatchObject({
      disable: true,
      runs: [{ scheduledFor: base }],
    });
  });
});
