/**
 * The beat: fires periodic tasks. Any number of instances run; the one holding the advisory lock
 * leads (election.ts), keeps every enabled entry in a due-time heap, reloads only the rows that
 * LISTEN/NOTIFY says changed, and fires what is due.
 *
 * Exactly once. Firing is two steps:
 *  1. decide: in one transaction on the leader's locked session, advance each due entry's cursor
 *     (compare-and-set on its cursor and version) and insert its runs as `pending`, each with a
 *     task id chosen up front. A scheduled time is decided at most once: the cursor moves past it
 *     in the same commit, the compare-and-set refuses a stale decision, a unique key on (entry,
 *     scheduled time) backs it, and only the lock holder's connection can commit at all.
 *     Entries are decided up to `lookaheadMs` early, so that thousands due at one instant cost
 *     the database before that instant rather than after it; when so many fall due together that
 *     deciding them takes longer than that, earlier still, by the time deciding them takes
 *     (measured), up to `maxLookaheadMs`.
 *  2. send: at the scheduled time, publish each run's message with its task id, then mark the
 *     run `sent`. A timer of its own wakes for it, so that sending waits for no database round;
 *     at most `sendConcurrency` messages are being published at once, and the runs published
 *     meanwhile are marked sent together, in one statement.
 * A round (heartbeat, reload, decide) covers the entries due up to a horizon fixed when it
 * starts, so it ends however steady the load, and `stop()` waits for no more than one.
 * If the send fails, the run stays pending and is sent again (same task id) every
 * `retryPendingMs`. If the leader dies between 1 and 2, the next leader sends its pending runs,
 * each at its scheduled time, except those the control plane has already heard of (an event of
 * that task id was ingested). So every decided run is sent at least once, and twice only if a
 * leader dies after the broker took a message and before the run was marked sent, or pauses
 * there for longer than the session timeout; both copies then carry the same task id.
 */
import { randomUUID } from "node:crypto";
import { hostname } from "node:os";
import type { Logger } from "pino";
import { z } from "zod";
import type { Database } from "../db/database.js";
import type { PubSub } from "../pubsub/pubsub.js";
import { type Clock, systemClock } from "./clock.js";
import { Election } from "./election.js";
import { type Entry, type EntryRow, entryFromRow, type MessageSource } from "./entry.js";
import { DueHeap } from "./heap.js";
import type { RunSender } from "./message.js";
import { type Plan, plan } from "./plan.js";
import { firstRun } from "./schedule.js";
import {
  type Advance,
  type CursorUpdate,
  type FailedMark,
  fingerprint,
  fire,
  loadByIds,
  loadEnabled,
  markAttempts,
  markSent,
  type NewRun,
  pendingRuns,
  pruneRuns,
  type SentMark,
  setCursors,
} from "./store.js";

/** The channel the periodic_tasks triggers notify on (see the schedules migration). */
export const CHANGES_CHANNEL = "celeriac_periodic_tasks";

export const beatOptionsSchema = z.object({
  /** Advisory lock key shared by every beat of one database. Default: 0x63656c62 ("celb"). */
  lockKey: z.number().int().default(0x63656c62),
  /** How often a follower tries to take the lead. Default: 1,000 ms. */
  electionIntervalMs: z.number().int().positive().default(1000),
  /** How often the leader speaks on its session when idle. Default: 1,000 ms. */
  heartbeatMs: z.number().int().positive().default(1000),
  /**
   * A leader silent for this long (hung, cut off) loses its session and so the lead; must exceed
   * the heartbeat. Default: 10,000 ms.
   */
  sessionTimeoutMs: z.number().int().positive().default(10_000),
  /**
   * A scheduled time older than this when the beat gets to it was missed, and the entry's
   * missed-run policy applies; younger, it simply runs late. Default: 10,000 ms.
   */
  missedGraceMs: z.number().int().nonnegative().default(10_000),
  /**
   * Entries due this soon are decided ahead; their messages still go at the scheduled time. An
   * edit made less than this before a due time applies from the next one. Default: 1,000 ms.
   */
  lookaheadMs: z.number().int().nonnegative().default(1000),
  /**
   * When more entries fall due together than can be decided within `lookaheadMs`, they are
   * decided earlier, by about the time deciding them takes, but never more than this (or
   * `lookaheadMs`, if longer) ahead. Default: 10,000 ms.
   */
  maxLookaheadMs: z.number().int().nonnegative().default(10_000),
  /** Most entries decided in one transaction. Default: 500. */
  batchSize: z.number().int().positive().default(500),
  /** Most messages being published at once. Default: 256. */
  sendConcurrency: z.number().int().positive().default(256),
  /** A run still pending this long after it was decided is sent again. Default: 5,000 ms. */
  retryPendingMs: z.number().int().positive().default(5000),
  /** Edits are gathered for this long before the rows are reloaded. Default: 50 ms. */
  reloadDelayMs: z.number().int().nonnegative().default(50),
  /** How often the leader checks that no change notification was lost. Default: 30,000 ms. */
  resyncIntervalMs: z.number().int().positive().default(30_000),
  /** Days runs are kept; 0 keeps them all. Default: 30. */
  runRetentionDays: z.number().nonnegative().default(30),
  /** This instance's name in logs and pg_stat_activity. Default: `celeriac-beat <host>:<pid>`. */
  name: z.string().min(1).default(`celeriac-beat ${hostname()}:${process.pid}`),
});

export type BeatOptionsInput = z.input<typeof beatOptionsSchema>;
export type BeatOptions = z.output<typeof beatOptionsSchema>;

export interface BeatDependencies {
  db: Database;
  send: RunSender;
  logger: Logger;
  /** Where `periodic:run` is published once a run is sent; null: nowhere. */
  pubsub?: PubSub | null;
  clock?: Clock;
}

export interface BeatStatus {
  leader: boolean;
  entries: number;
  nextDueAt: number | null;
}

interface Held extends Entry {
  /** Bumped on every change, so heap items of an older state are ignored. */
  gen: number;
}

interface Sending {
  runId: string;
  taskId: string;
  source: MessageSource & { id: string };
  /** When to send it; null: at once. */
  scheduledFor: number | null;
}

/** A run handed over to be published; `done` once it is recorded (or given up). */
interface Job {
  run: Sending;
  done: () => void;
}

/** A publish finished, to record: sent at `at`, or failed with `error`. */
interface Outcome {
  job: Job;
  at: number;
  error?: string;
}

const HOUR = 3_600_000;
/** Most outcomes recorded in one statement. */
const MARK_SLICE = 2000;
/** Entries are counted by the slice of time their cursor falls in, this long (see `horizon`). */
const BUCKET_MS = 100;
/**
 * Entries are decided between `lookaheadMs` and `lookaheadMs` minus this before they are due, so
 * that a steady load is decided a batch at a time rather than an entry per round.
 */
const DECIDE_SLACK_MS = 100;
/** The cost of deciding one entry assumed until one has been measured: 10,000 a second. */
const DEFAULT_DECIDE_COST_MS = 0.1;
/** How much longer than measured deciding may take (the database shares its host). */
const LEAD_SAFETY = 1.5;
/** Only batches this large measure the cost of an entry: smaller ones measure the round trips. */
const MEASURED_BATCH = 100;
/** The send timer wakes at most this often. */
const SEND_TICK_MS = 10;
/** How long the send timer sleeps when nothing is waiting (anything queued wakes it). */
const IDLE_SEND_WAIT = 60_000;

export class Beat {
  readonly options: BeatOptions;
  private readonly db: Database;
  private readonly send: RunSender;
  private readonly log: Logger;
  private readonly pubsub: PubSub | null;
  private readonly clock: Clock;
  private readonly election: Election;
  private readonly entries = new Map<string, Held>();
  private readonly heap = new DueHeap();
  /** Held entries by `floor(nextRunAt / BUCKET_MS)`: how many fall due when. */
  private readonly buckets = new Map<number, number>();
  /** What deciding takes per entry, in ms: a moving average over large batches. */
  private decideCostMs = DEFAULT_DECIDE_COST_MS;
  private gen = 0;
  /** Ids announced as changed, to reload. */
  private readonly changed = new Set<string>();
  private reloadAll = true;
  private needsCursor = new Set<string>();
  /** Runs decided (ahead), waiting for their time: a heap of task ids by scheduled time. */
  private readonly waiting = new DueHeap();
  private readonly waitingRuns = new Map<string, Sending>();
  /**
   * Task ids waiting, being published or being recorded: never re-sent by the pending sweep.
   */
  private readonly inFlight = new Set<string>();
  /** Runs due, in order, for the publishers (from `readyHead` on). */
  private ready: Array<Job | undefined> = [];
  private readyHead = 0;
  private publishing = 0;
  /** Publishes finished, to record; `marking` records them, a statement at a time. */
  private outcomes: Outcome[] = [];
  private marking: Promise<void> | undefined;
  private idleWaiters: Array<() => void> = [];
  private unparsable = new Set<string>();
  private lastRecovery = Number.NEGATIVE_INFINITY;
  private lastResync = 0;
  private lastPrune = Number.NEGATIVE_INFINITY;
  private pruning: Promise<void> | undefined;
  private knownFingerprint = "";
  private stopListening: (() => Promise<void>) | undefined;
  private loop: Promise<void> | undefined;
  private sendLoop: Promise<void> | undefined;
  private wake = new AbortController();
  private sendWake = new AbortController();
  /** When the send timer, while it sleeps, is due to wake (it is woken for a run due before). */
  private sendAt = Number.NEGATIVE_INFINITY;
  private reloadTimer: NodeJS.Timeout | undefined;
  private stepping: Promise<unknown> = Promise.resolve();
  private state: "new" | "running" | "stopped" = "new";
  /** When this instance last lost its session (real time: it is about the connection, not the schedule). */
  private lostAt = Number.NEGATIVE_INFINITY;

  constructor(deps: BeatDependencies, options: BeatOptionsInput = {}) {
    const parsed = beatOptionsSchema.safeParse(options);
    if (!parsed.success)
      throw new Error(
        `invalid beat options: ${parsed.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`).join("; ")}`,
      );
    this.options = parsed.data;
    if (this.options.sessionTimeoutMs <= this.options.heartbeatMs)
      throw new Error("invalid beat options: sessionTimeoutMs must exceed heartbeatMs");
    this.db = deps.db;
    this.send = deps.send;
    this.log = deps.logger;
    this.pubsub = deps.pubsub ?? null;
    this.clock = deps.clock ?? systemClock;
    this.election = new Election(this.db, this.log, {
      lockKey: this.options.lockKey,
      sessionTimeoutMs: this.options.sessionTimeoutMs,
      name: this.options.name,
    });
    this.election.onLost(() => {
      this.lostAt = Date.now();
      this.forget();
    });
  }

  get leading(): boolean {
    return this.election.leading;
  }

  status(): BeatStatus {
    return { leader: this.leading, entries: this.entries.size, nextDueAt: this.nextDue() };
  }

  /** Listen for changes, then run the loop (and the send timer) in the background. */
  async start(): Promise<void> {
    await this.listen();
    if (this.state !== "new") return;
    this.state = "running";
    this.loop = this.run();
    this.sendLoop = this.sendOnTime();
  }

  /**
   * Listen for changes without running the loop: for callers that drive `step()` themselves
   * (tests with a manual clock).
   */
  async listen(): Promise<void> {
    this.stopListening ??= await this.db.listen(CHANGES_CHANNEL, (payload) =>
      this.onNotify(payload),
    );
  }

  /**
   * Leave the lead (another instance takes over at once) and stop. Runs decided but not yet
   * handed to the broker stay pending, for whoever leads next; those being published are
   * finished and recorded first.
   */
  async stop(): Promise<void> {
    if (this.state === "stopped") return;
    this.state = "stopped";
    clearTimeout(this.reloadTimer);
    this.wake.abort();
    this.sendWake.abort();
    this.abandonReady();
    await this.loop;
    await this.sendLoop;
    await this.stepping.catch(() => {});
    await this.pruning;
    await this.settled();
    await this.stopListening?.();
    await this.election.resign();
    this.forget();
  }

  /**
   * One round: campaign (or heartbeat), reload what changed, decide what is due (or nearly);
   * without the loop, also send what is due and wait until it is recorded. The loop calls it;
   * tests call it with a manual clock. Rounds never overlap.
   */
  step(): Promise<void> {
    const next = this.stepping.then(() => this.round());
    this.stepping = next.catch(() => {});
    return next;
  }

  /** When the next entry or decided run is due (epoch ms); null if none is. */
  nextDue(): number | null {
    return earliest(this.nextEntryDue(), this.waiting.peek()?.due ?? null);
  }

  private nextEntryDue(): number | null {
    for (;;) {
      const top = this.heap.peek();
      if (!top) return null;
      if (this.entries.get(top.id)?.gen === top.gen) return top.due;
      this.heap.pop();
    }
  }

  /**
   * How far ahead to decide now (`until`), and when to decide next (`wake`; null: nothing held).
   * Normally `lookaheadMs` ahead. But deciding takes time, about `decideCostMs` an entry: when
   * more entries fall due by some instant than can be decided in the lookahead before it, they
   * are decided that much earlier. Counting entries by slices of `BUCKET_MS` keeps this to a
   * few map reads, however many entries are held.
   */
  private horizon(now: number): { until: number; wake: number | null } {
    const o = this.options;
    const max = Math.max(o.lookaheadMs, o.maxLookaheadMs);
    const top = this.nextEntryDue();
    let until = now + o.lookaheadMs;
    if (top === null) return { until, wake: null };
    const slack = Math.min(DECIDE_SLACK_MS, Math.floor(o.lookaheadMs / 4));
    let wake = top - o.lookaheadMs + slack;
    const perEntry = this.decideCostMs * LEAD_SAFETY;
    // Entries already late count from the current second: older ones are being decided anyway.
    const first = Math.floor(Math.max(top, now - 1000) / BUCKET_MS);
    const last = Math.floor((now + max) / BUCKET_MS);
    let undecided = 0;
    for (let b = first; b <= last; b++) {
      const n = this.buckets.get(b);
      if (n === undefined) continue;
      undecided += n;
      // Deciding all due by the end of this slice takes about `lead`: start that much earlier.
      // A lead shorter than a slice is not worth deciding a whole slice early for.
      const lead = undecided * perEntry;
      if (lead <= BUCKET_MS) continue;
      const start = b * BUCKET_MS - o.lookaheadMs - lead;
      if (start <= now) until = Math.max(until, (b + 1) * BUCKET_MS - 1);
      else if (start < wake) wake = start;
    }
    return { until: Math.min(until, now + max), wake };
  }

  private async run(): Promise<void> {
    const o = this.options;
    while (this.state === "running") {
      let wait: number;
      try {
        await this.step();
        if (!this.leading) wait = o.electionIntervalMs;
        else {
          const now = this.clock.now();
          const { wake } = this.horizon(now);
          wait = Math.min(o.heartbeatMs, wake === null ? o.heartbeatMs : Math.max(0, wake - now));
        }
      } catch (error) {
        this.log.error({ err: error }, "beat round failed");
        wait = o.electionIntervalMs;
      }
      if (this.state !== "running") break;
      await this.clock.sleep(wait, this.wake.signal);
      if (this.wake.signal.aborted && this.state === "running") this.wake = new AbortController();
    }
  }

  /** The send timer: hands each decided run to the publishers at its time, without a round. */
  private async sendOnTime(): Promise<void> {
    while (this.state === "running") {
      const now = this.clock.now();
      if (this.leading) void this.dispatch(this.takeDue(now));
      const top = this.waiting.peek();
      // At most one wake a tick: a steady load is sent (and marked) in small batches, not
      // one run at a time, each at most a tick late.
      const wait = top ? Math.max(SEND_TICK_MS, top.due - now) : IDLE_SEND_WAIT;
      this.sendAt = now + wait;
      await this.clock.sleep(wait, this.sendWake.signal);
      this.sendAt = Number.NEGATIVE_INFINITY;
      if (this.sendWake.signal.aborted && this.state === "running")
        this.sendWake = new AbortController();
    }
  }

  private onNotify(payload: string): void {
    if (payload === "*") this.reloadAll = true;
    else {
      const [id, v] = payload.split(":");
      if (!id) return;
      const held = this.entries.get(id);
      // A version already held was read after the edit that announced it.
      if (held && v !== undefined && Number(v) <= held.version) return;
      this.changed.add(id);
    }
    if (this.leading && this.state === "running" && !this.reloadTimer)
      this.reloadTimer = setTimeout(() => {
        this.reloadTimer = undefined;
        this.wake.abort();
      }, this.options.reloadDelayMs);
  }

  private async round(): Promise<void> {
    if (!this.leading) {
      // A beat that just lost its session stands back for one election interval, so that a
      // healthy follower takes over rather than the instance whose connection failed.
      if (Date.now() - this.lostAt < this.options.electionIntervalMs) return;
      if (!(await this.election.campaign())) return;
      this.log.info({ name: this.options.name }, "beat is the leader");
      this.forget();
    } else if (
      // Deciding speaks on the session too: under load, heartbeats would only add round trips.
      this.election.quietMs >= this.options.heartbeatMs / 2 &&
      !(await this.election.campaign())
    )
      return;
    const now = this.clock.now();
    await this.sync(now);
    await this.recover(now);
    await this.decideDue(now);
    await this.maintain(now);
    // The running loop leaves sending to the send timer, and so never waits on the broker; a
    // caller driving `step()` gets what is due sent, and recorded, before the step ends.
    if (this.state !== "running") await this.dispatch(this.takeDue(this.clock.now()));
  }

  /** Drop everything held: after losing the lead, or before taking it. */
  private forget(): void {
    this.clear();
    // Runs decided ahead stay pending in the database: whoever leads next sends them.
    for (const taskId of this.waitingRuns.keys()) this.inFlight.delete(taskId);
    this.waitingRuns.clear();
    this.waiting.clear();
    this.abandonReady();
    this.reloadAll = true;
    this.lastRecovery = Number.NEGATIVE_INFINITY;
  }

  private clear(): void {
    this.entries.clear();
    this.heap.clear();
    this.buckets.clear();
    this.needsCursor.clear();
  }

  private async sync(now: number): Promise<void> {
    if (this.reloadAll) {
      this.reloadAll = false;
      this.changed.clear();
      this.clear();
      const rows = await loadEnabled(this.db);
      for (const row of rows) this.hold(row);
      this.knownFingerprint = await fingerprint(this.db);
      this.log.info({ entries: this.entries.size }, "beat loaded its schedule");
    } else if (this.changed.size > 0) {
      const ids = [...this.changed];
      this.changed.clear();
      const rows = await loadByIds(this.db, ids);
      const seen = new Set(rows.map((r) => r.id));
      for (const id of ids) if (!seen.has(id)) this.drop(id);
      for (const row of rows) row.enabled ? this.hold(row) : this.drop(row.id);
      this.knownFingerprint = await fingerprint(this.db);
    }
    if (this.needsCursor.size > 0) await this.placeCursors(now);
  }

  private hold(row: EntryRow): void {
    let entry: Entry;
    try {
      entry = entryFromRow(row);
    } catch (error) {
      const key = `${row.id}:${row.version}`;
      if (!this.unparsable.has(key)) {
        this.unparsable.add(key);
        this.log.warn(
          { err: error, periodicTask: row.name },
          "periodic task skipped: its schedule is invalid",
        );
      }
      this.drop(row.id);
      return;
    }
    this.drop(entry.id);
    const held: Held = { ...entry, nextRunAt: null, gen: 0 };
    this.entries.set(held.id, held);
    if (entry.nextRunAt !== null) this.moveCursor(held, entry.nextRunAt);
    else this.needsCursor.add(held.id);
  }

  private drop(id: string): void {
    const e = this.entries.get(id);
    if (e) this.count(e.nextRunAt, -1);
    this.entries.delete(id);
    this.needsCursor.delete(id);
  }

  /** Set a held entry's cursor: in the heap (a new generation) and in the counts. */
  private moveCursor(e: Held, next: number | null): void {
    this.count(e.nextRunAt, -1);
    e.nextRunAt = next;
    e.gen = ++this.gen;
    this.count(next, 1);
    if (next !== null) this.heap.push({ due: next, id: e.id, gen: e.gen });
  }

  private count(due: number | null, delta: 1 | -1): void {
    if (due === null) return;
    const b = Math.floor(due / BUCKET_MS);
    const n = (this.buckets.get(b) ?? 0) + delta;
    if (n > 0) this.buckets.set(b, n);
    else this.buckets.delete(b);
  }

  /** Rows without a cursor (edited in SQL) get one: their next run after now. */
  private async placeCursors(now: number): Promise<void> {
    const updates: CursorUpdate[] = [];
    for (const id of this.needsCursor) {
      const e = this.entries.get(id);
      if (e) updates.push({ id, version: e.version, next: firstRun(e, now) });
    }
    this.needsCursor.clear();
    if (updates.length === 0) return;
    const placed = await this.election.transaction((sql) => setCursors(sql, updates));
    for (const u of updates) {
      const e = this.entries.get(u.id);
      if (!e) continue;
      if (!placed.has(u.id)) {
        this.changed.add(u.id); // edited meanwhile: read it again
        continue;
      }
      this.moveCursor(e, u.next);
    }
  }

  /**
   * Decide the entries due up to the round's horizon, a batch per transaction. The horizon is
   * fixed when the round starts: entries falling due meanwhile are the next round's, so that a
   * steady load cannot keep one round (and `stop()`, heartbeats, reloads) waiting forever.
   */
  private async decideDue(now: number): Promise<void> {
    const { until } = this.horizon(now);
    while (this.leading && this.state !== "stopped") {
      const batch: Held[] = [];
      while (batch.length < this.options.batchSize) {
        const top = this.heap.peek();
        if (!top || top.due > until) break;
        this.heap.pop();
        const e = this.entries.get(top.id);
        if (e && e.gen === top.gen && e.nextRunAt !== null) batch.push(e);
      }
      if (batch.length === 0) break;
      this.queue(await this.decide(batch, this.clock.now()));
    }
  }

  /** Step 1: the decision, committed. Returns the runs to send. */
  private async decide(batch: Held[], now: number): Promise<Sending[]> {
    const plans = new Map<string, Plan>();
    const advances: Advance[] = [];
    const runs: NewRun[] = [];
    for (const e of batch) {
      const due = e.nextRunAt as number;
      // Decided ahead: as of its due time. Decided late: as of now, for the missed-run policy.
      const p = plan({ ...e, due }, Math.max(now, due), this.options.missedGraceMs);
      plans.set(e.id, p);
      advances.push({
        id: e.id,
        version: e.version,
        due,
        next: p.next,
        disable: p.disable,
        runs: p.runs.length,
        lastRun: p.runs.length > 0 ? Math.max(...p.runs.map((r) => r.scheduledFor)) : null,
      });
      for (const r of p.runs)
        runs.push({
          periodicTaskId: e.id,
          scheduledFor: r.scheduledFor,
          trigger: r.trigger,
          taskId: randomUUID(),
          taskName: e.task,
        });
    }
    let result: Awaited<ReturnType<typeof fire>>;
    const started = performance.now();
    try {
      result = await this.election.transaction((sql) => fire(sql, advances, runs, now));
    } catch (error) {
      // Nothing was decided: put the batch back (unless the lead is gone, and the state with it).
      if (this.leading)
        for (const e of batch) this.heap.push({ due: e.nextRunAt as number, id: e.id, gen: e.gen });
      throw error;
    }
    if (batch.length >= MEASURED_BATCH) {
      const cost = Math.min(10, Math.max(0.005, (performance.now() - started) / batch.length));
      this.decideCostMs = 0.7 * this.decideCostMs + 0.3 * cost;
    }
    const byRun = new Map(runs.map((r) => [r.taskId, r]));
    const byId = new Map(batch.map((e) => [e.id, e]));
    for (const e of batch) {
      const version = result.advanced.get(e.id);
      if (version === undefined) {
        this.changed.add(e.id); // edited, disabled or deleted meanwhile: read it again
        continue;
      }
      const p = plans.get(e.id) as Plan;
      if (p.disable) {
        this.drop(e.id);
        continue;
      }
      e.version = version;
      this.moveCursor(e, p.next);
    }
    return result.fired.map((f) => ({
      runId: f.runId,
      taskId: f.taskId,
      source: byId.get(f.periodicTaskId) as Held,
      scheduledFor: byRun.get(f.taskId)?.scheduledFor ?? null,
    }));
  }

  /** Keep decided runs until their time; wake the send timer if one is due before it wakes. */
  private queue(runs: Sending[]): void {
    for (const run of runs) {
      this.inFlight.add(run.taskId);
      this.waitingRuns.set(run.taskId, run);
      this.waiting.push({ due: run.scheduledFor ?? 0, id: run.taskId, gen: 0 });
    }
    const top = this.waiting.peek();
    if (top && top.due < this.sendAt) this.sendWake.abort();
  }

  /** The decided runs whose time has come, in order. */
  private takeDue(now: number): Sending[] {
    const due: Sending[] = [];
    for (let top = this.waiting.peek(); top && top.due <= now; top = this.waiting.peek()) {
      this.waiting.pop();
      const run = this.waitingRuns.get(top.id);
      this.waitingRuns.delete(top.id);
      if (run) due.push(run);
    }
    return due;
  }

  /**
   * Step 2: hand runs to the publishers (at most `sendConcurrency` messages in flight, across
   * every call). Resolves once each is recorded as sent, or as a failed attempt: it stays
   * pending for the next sweep.
   */
  private dispatch(runs: Sending[]): Promise<void> {
    if (runs.length === 0) return Promise.resolve();
    let left = runs.length;
    return new Promise<void>((resolve) => {
      const done = () => {
        if (--left === 0) resolve();
      };
      for (const run of runs) this.ready.push({ run, done });
      this.pump();
    });
  }

  private pump(): void {
    while (this.publishing < this.options.sendConcurrency && this.readyHead < this.ready.length) {
      const job = this.ready[this.readyHead] as Job;
      this.ready[this.readyHead++] = undefined;
      if (!this.leading || this.state === "stopped") this.abandon(job);
      else {
        this.publishing++;
        void this.publish(job);
      }
    }
    if (this.readyHead === this.ready.length) {
      this.ready = [];
      this.readyHead = 0;
    }
  }

  private async publish(job: Job): Promise<void> {
    let error: string | undefined;
    try {
      await this.send(job.run.source, job.run.taskId);
    } catch (err) {
      error = (err as Error)?.message ?? String(err);
      this.log.warn(
        { err, periodicTask: job.run.source.name, taskId: job.run.taskId },
        "periodic task not sent; will retry",
      );
    }
    this.publishing--;
    this.outcomes.push({ job, at: this.clock.now(), ...(error !== undefined ? { error } : {}) });
    this.record();
    this.pump();
  }

  /** Not published (the lead is gone, or the beat stops): the run stays pending. */
  private abandon(job: Job): void {
    this.inFlight.delete(job.run.taskId);
    job.done();
  }

  private abandonReady(): void {
    const jobs = this.ready.slice(this.readyHead);
    this.ready = [];
    this.readyHead = 0;
    for (const job of jobs) if (job) this.abandon(job);
  }

  /**
   * Record outcomes: at once (the publishes that finish in the same turn of the event loop
   * together), so that a published run stays unmarked, and would be sent again (same task id)
   * by the next leader should this one die, for no longer than a round trip; and in one
   * statement for all that finished while the previous one was written.
   * A run leaves `inFlight` only once recorded, so that the pending sweep cannot mistake a run
   * just published for one left behind.
   */
  private record(): void {
    if (this.marking) return;
    this.marking = new Promise<void>((resolve) => setImmediate(resolve))
      .then(async () => {
        while (this.outcomes.length > 0) {
          const batch = this.outcomes.splice(0, MARK_SLICE);
          await this.write(batch);
          for (const { job } of batch) {
            this.inFlight.delete(job.run.taskId);
            job.done();
          }
        }
      })
      .finally(() => {
        this.marking = undefined;
        if (this.outcomes.length > 0) this.record();
        else if (this.publishing === 0) for (const resolve of this.idleWaiters.splice(0)) resolve();
      });
  }

  private async write(batch: Outcome[]): Promise<void> {
    const sent: SentMark[] = [];
    const failed: FailedMark[] = [];
    for (const o of batch)
      if (o.error === undefined) sent.push({ runId: o.job.run.runId, at: o.at });
      else failed.push({ runId: o.job.run.runId, error: o.error });
    await markSent(this.db, sent).catch((error) =>
      this.log.warn({ err: error }, "could not mark periodic runs sent; they will be re-checked"),
    );
    await markAttempts(this.db, failed).catch(() => {});
    if (this.pubsub)
      for (const o of batch) {
        if (o.error !== undefined) continue;
        const s = o.job.run;
        this.pubsub.publish("periodic:run", {
          periodicTaskId: s.source.id,
          name: s.source.name,
          taskId: s.taskId,
          taskName: s.source.task,
          scheduledFor: new Date(s.scheduledFor ?? o.at).toISOString(),
          firedAt: new Date(o.at).toISOString(),
        });
      }
  }

  /** Resolves once nothing is being published or recorded. */
  private settled(): Promise<void> {
    if (this.publishing === 0 && !this.marking && this.outcomes.length === 0)
      return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  /**
   * Runs left pending: on taking the lead, all of them (a previous leader's, each sent at its
   * time); after that, every `retryPendingMs`, those whose send failed.
   */
  private async recover(now: number): Promise<void> {
    const first = this.lastRecovery === Number.NEGATIVE_INFINITY;
    if (!first && now - this.lastRecovery < this.options.retryPendingMs) return;
    this.lastRecovery = now;
    const pending = (
      first
        ? await pendingRuns(this.db, now + 1)
        : await pendingRuns(this.db, now - this.options.retryPendingMs, now)
    ).filter((p) => !this.inFlight.has(p.taskId));
    if (pending.length === 0) return;
    const sources = new Map<string, MessageSource & { id: string }>();
    const missing = [...new Set(pending.map((p) => p.periodicTaskId))].filter((id) => {
      const held = this.entries.get(id);
      if (held) sources.set(id, held);
      return !held;
    });
    if (missing.length > 0)
      for (const row of await loadByIds(this.db, missing)) sources.set(row.id, row);
    const runs: Sending[] = [];
    for (const p of pending) {
      const source = sources.get(p.periodicTaskId);
      if (source)
        runs.push({ runId: p.runId, taskId: p.taskId, source, scheduledFor: p.scheduledFor });
    }
    if (first)
      this.log.info({ runs: runs.length }, "beat sends the runs a previous leader left pending");
    this.queue(runs);
  }

  private async maintain(now: number): Promise<void> {
    const o = this.options;
    if (now - this.lastResync >= o.resyncIntervalMs) {
      this.lastResync = now;
      if ((await fingerprint(this.db)) !== this.knownFingerprint && this.changed.size === 0) {
        this.log.warn("beat missed a change notification: reloading the schedule");
        this.reloadAll = true;
      }
    }
    if (o.runRetentionDays > 0 && now - this.lastPrune >= HOUR && !this.pruning) {
      this.lastPrune = now;
      // In the background: a large backlog to delete must not hold up the rounds that decide.
      this.pruning = pruneRuns(
        this.db,
        now - o.runRetentionDays * 24 * HOUR,
        () => this.state !== "stopped",
      )
        .then((pruned) => {
          if (pruned > 0) this.log.info({ pruned }, "old periodic task runs deleted");
        })
        .catch((error) => this.log.warn({ err: error }, "could not delete old periodic task runs"))
        .finally(() => {
          this.pruning = undefined;
        });
    }
  }
}

function earliest(a: number | null, b: number | null): number | null {
  return a === null ? b : b === null ? a : Math.min(a, b);
}
