/**
 * What to fire for one due entry: which scheduled times become runs, where its cursor goes next,
 * and whether it disables itself. Pure, so the rules can be read and tested on their own.
 *
 * A scheduled time is *on time* while it is at most `graceMs` old; older, it was *missed* (the beat
 * was down, or leadership was changing hands for longer than the grace). On-time times always run,
 * each once. Missed ones follow the entry's policy:
 * - run_once (default): one run, for the latest time due, however many were missed;
 * - skip: none (on-time times still run);
 * - run_all: each missed time runs, the latest `maxMissedRuns` of them.
 * The cursor then moves to the first scheduled time after now, so nothing is run twice.
 */
import { nextRun, type Timing } from "./schedule.js";

export type MissedRunPolicy = "run_once" | "skip" | "run_all";
export const MISSED_RUN_POLICIES: readonly MissedRunPolicy[] = ["run_once", "skip", "run_all"];

export interface PlanInput extends Timing {
  /** The scheduled time due now (the cursor); at most `now`. */
  due: number;
  policy: MissedRunPolicy;
  maxMissedRuns: number;
  oneOff: boolean;
  /** Absolute end: no run at or after it. */
  expires: number | null;
}

export interface PlannedRun {
  scheduledFor: number;
  trigger: "schedule" | "catch_up";
}

export interface Plan {
  runs: PlannedRun[];
  /** The new cursor; null when there is no later run. */
  next: number | null;
  /** The entry should stop: a one-off that ran, a clocked time that passed, an expiry reached. */
  disable: boolean;
}

/** More on-time runs than this in one go means a broken schedule, not a busy one. */
const MAX_ON_TIME = 10_000;

export function plan(input: PlanInput, now: number, graceMs: number): Plan {
  const { due, expires } = input;
  if (expires !== null && now >= expires) return { runs: [], next: null, disable: true };
  const cutoff = now - graceMs;
  const next = (after: number) => nextRun(input, after, due);

  const onTime: number[] = [];
  for (
    let t: number | null = due >= cutoff ? due : next(cutoff - 1);
    t !== null && t <= now;
    t = next(t)
  ) {
    onTime.push(t);
    if (onTime.length >= MAX_ON_TIME) break;
  }
  let runs: PlannedRun[] = onTime.map((t) => ({ scheduledFor: t, trigger: "schedule" }));
  if (due < cutoff) {
    if (input.policy === "run_once" && onTime.length === 0)
      runs = latestMissed(input, due, cutoff, 1).map((t) => ({
        scheduledFor: t,
        trigger: "catch_up",
      }));
    else if (input.policy === "run_once") runs = runs.slice(-1);
    else if (input.policy === "run_all")
      runs = [
        ...latestMissed(input, due, cutoff, input.maxMissedRuns).map(
          (t): PlannedRun => ({ scheduledFor: t, trigger: "catch_up" }),
        ),
        ...runs,
      ];
  }

  const after = onTime.length > 0 ? (onTime[onTime.length - 1] as number) : now;
  const following = next(Math.max(after, now));
  const def = input.schedule.definition;
  const disable =
    (input.oneOff && runs.length > 0) ||
    (def.type === "clocked" && following === null) ||
    (expires !== null && following !== null && following >= expires);
  return { runs, next: disable ? null : following, disable };
}

/**
 * The latest `count` scheduled times in [from, before), without walking every one of a long
 * outage: look back over a window that grows until it holds enough.
 */
function latestMissed(input: PlanInput, from: number, before: number, count: number): number[] {
  const next = (after: number) => nextRun(input, after, from);
  for (let window = 60_000; ; window *= 4) {
    const start = Math.max(from, before - window);
    const found: number[] = [];
    for (
      let t: number | null = start === from ? from : next(start - 1);
      t !== null && t < before;
      t = next(t)
    ) {
      found.push(t);
      if (found.length > count * 4) found.splice(0, found.length - count);
    }
    if (found.length >= count || start === from) return found.slice(-count);
  }
}
