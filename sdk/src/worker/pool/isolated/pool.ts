/**
 * The isolated pools: tasks run in worker threads or child processes, one at a time each, so a
 * task can really be stopped (hard time limit, terminate) by ending its thread or process, and
 * leaky code can be recycled. A child that ends is replaced and the worker keeps serving.
 */
import type { RegisteredTask } from "../../../app.js";
import {
  CeleriacError,
  TaskRevokedError,
  TimeLimitExceeded,
  WorkerLostError,
} from "../../../errors.js";
import { lowerLevel } from "../../../logs/logger.js";
import { relayRecord } from "../../../logs/relay.js";
import type { Cancellation } from "../../cancellation.js";
import { type ExecutorEnv, noHooks, type Outcome, type Ran, timeLimits } from "../../executor.js";
import type { ResolvedWorkerOptions } from "../../options.js";
import type { Request } from "../../request.js";
import type { Pool } from "../pool.js";
import { type ChildMessage, deserializeOutcome, type RunMessage } from "./protocol.js";
import { spawnChild, type Transport } from "./transport.js";

const SIGNAL_NUMBERS: Record<string, number> = {
  SIGHUP: 1,
  SIGINT: 2,
  SIGQUIT: 3,
  SIGABRT: 6,
  SIGKILL: 9,
  SIGSEGV: 11,
  SIGTERM: 15,
};
const SIGNAL_NAMES = Object.fromEntries(
  Object.entries(SIGNAL_NUMBERS).map(([k, v]) => [v, k]),
) as Record<number, NodeJS.Signals>;

interface Job {
  /** The run's outcome; with `hooks`, the child then waits to be told to run the task's hooks. */
  resolve(outcome: Outcome, hooks: boolean): void;
  /** Set while the child waits to run, or runs, the task's hooks: its outcome is already out. */
  hooksDone?: () => void;
}

class Child {
  readonly ready: Promise<void>;
  job: Job | undefined;
  tasksRun = 0;
  /** Set when the child must go after its current task (recycling), or has gone. */
  retiring = false;
  exited = false;

  constructor(
    readonly transport: Transport,
    onExit: (child: Child, description: string) => void,
    onMessage: (child: Child, message: ChildMessage) => void,
  ) {
    this.ready = new Promise((resolve, reject) => {
      transport.onMessage((m) => {
        if (m.type === "ready") resolve();
        else if (m.type === "failed-to-start")
          reject(
            new CeleriacError("INVALID_OPTION", `pool child could not load the app: ${m.error}`),
          );
        else onMessage(this, m);
      });
      transport.onExit((code, signal) => {
        this.exited = true;
        const description = signal
          ? `signal ${SIGNAL_NUMBERS[signal] ?? "?"} (${signal})`
          : `exitcode ${code}`;
        reject(
          new CeleriacError("INVALID_OPTION", `pool child exited while starting: ${description}`),
        );
        onExit(this, description);
      });
    });
  }
}

export class IsolatedPool implements Pool {
  readonly kind: "threads" | "processes";
  private readonly children = new Set<Child>();
  private readonly waiting: Array<(child: Child) => void> = [];
  private target: number;
  private closed = false;

  constructor(
    kind: "threads" | "processes",
    private readonly options: ResolvedWorkerOptions,
    private readonly env: ExecutorEnv,
  ) {
    this.kind = kind;
    this.target = options.concurrency;
    if (!options.appModule)
      throw new CeleriacError("INVALID_OPTION", `the ${kind} pool needs appModule`);
  }

  get size(): number {
    return this.target;
  }

  set size(n: number) {
    this.target = n;
    this.balance();
  }

  async start(): Promise<void> {
    this.balance();
    await Promise.all([...this.children].map((c) => c.ready));
  }

  pids(): number[] {
    return [...this.children].map((c) => c.transport.id);
  }

  private spawn(): Child {
    const { broker, resultBackend, defaultQueue } = this.env.app.options;
    const transport = spawnChild(this.kind, {
      appModule: this.options.appModule!,
      hostname: this.env.hostname,
      // The worker's logger decides what is kept; the child sends all it may want: what the
      // worker's standard output (logLevel) or the broker (shipLogs) takes, and what any of its
      // logger's destinations takes (a logger given in the options: its level alone).
      logLevel: lowerLevel(
        this.env.logger.level,
        this.options.logger ? null : lowerLevel(this.options.logLevel, this.options.shipLogs),
      ),
      ...(typeof broker === "string" ? { broker } : {}),
      ...(resultBackend === null || typeof resultBackend === "string" ? { resultBackend } : {}),
      defaultQueue,
    });
    const child = new Child(
      transport,
      (c, how) => this.onExit(c, how),
      (c, m) => this.onMessage(c, m),
    );
    this.children.add(child);
    child.ready.then(
      () => this.offer(child),
      (error) => this.env.logger.error({ err: error }, "pool child failed to start"),
    );
    return child;
  }

  /** Keep as many live children as the pool's size: spawn, or retire idle ones. */
  private balance(): void {
    if (this.closed) return;
    const live = [...this.children].filter((c) => !c.retiring);
    for (let i = live.length; i < this.target; i++) this.spawn();
    for (const c of live.slice(this.target)) {
      c.retiring = true;
      if (!c.job) c.transport.kill("SIGTERM");
    }
  }

  /** A child is free: give it to a waiting run. */
  private offer(child: Child): void {
    if (child.retiring || child.exited || child.job) return;
    const next = this.waiting.shift();
    if (next) next(child);
  }

  private idle(): Child | undefined {
    for (const c of this.children) if (!c.job && !c.retiring && !c.exited) return c;
    return undefined;
  }

  private replace(child: Child, reason: string): void {
    if (child.retiring && child.exited) return;
    this.env.logger.info(
      { pool: this.kind, child: child.transport.id, reason },
      `replacing pool child: ${reason}`,
    );
    child.retiring = true;
    if (!child.exited) child.transport.kill("SIGKILL");
  }

  private onExit(child: Child, how: string): void {
    this.children.delete(child);
    const job = child.job;
    child.job = undefined;
    if (job?.hooksDone) job.hooksDone();
    else
      job?.resolve(
        {
          kind: "failure",
          error: new WorkerLostError(`Worker exited prematurely: ${how}.`),
          runtime: 0,
        },
        false,
      );
    this.balance();
  }

  private onMessage(child: Child, message: ChildMessage): void {
    if (message.type === "log") relayRecord(this.env.logger, message.line);
    if (message.type === "hooks-done") {
      const job = child.job;
      this.finished(child, message.memoryKiB);
      job?.hooksDone?.();
      this.offer(child);
      return;
    }
    if (message.type !== "outcome") return;
    const job = child.job;
    const outcome = deserializeOutcome(message.outcome);
    // With hooks, the child stays busy until it has run them (see dispatch).
    if (message.hooks) {
      job?.resolve(outcome, true);
      return;
    }
    this.finished(child, message.memoryKiB);
    job?.resolve(outcome, false);
    this.offer(child);
  }

  /** A child is done with its task: count it, and replace the child past its limits. */
  private finished(child: Child, memoryKiB: number): void {
    child.job = undefined;
    child.tasksRun++;
    const { maxTasksPerChild, maxMemoryPerChild } = this.options;
    if (maxTasksPerChild && child.tasksRun >= maxTasksPerChild)
      this.replace(
        child,
        `it ran ${child.tasksRun} tasks (max-tasks-per-child ${maxTasksPerChild})`,
      );
    else if (maxMemoryPerChild && memoryKiB > maxMemoryPerChild) {
      this.replace(
        child,
        `it uses ${memoryKiB} KiB (max-memory-per-child ${maxMemoryPerChild} KiB${this.kind === "threads" ? ", thread heap" : ", resident"})`,
      );
    }
  }

  run(request: Request, task: RegisteredTask, cancellation: Cancellation): Promise<Ran> {
    if (this.closed)
      return Promise.resolve({
        outcome: {
          kind: "failure",
          error: new WorkerLostError("the pool is closed"),
          runtime: 0,
        },
        hooks: noHooks,
      });
    const start = (child: Child) => this.dispatch(child, request, task, cancellation);
    const free = this.idle();
    if (free) return start(free);
    return new Promise<Child>((resolve) => this.waiting.push(resolve)).then(start);
  }

  private dispatch(
    child: Child,
    request: Request,
    task: RegisteredTask,
    cancellation: Cancellation,
  ): Promise<Ran> {
    const [hard, soft] = timeLimits(request, task, this.env);
    const started = performance.now();
    const runtime = () => (performance.now() - started) / 1000;
    return new Promise<Ran>((resolve) => {
      let timer: NodeJS.Timeout | undefined;
      let phase: "run" | "hooks" | "done" = "run";
      const end = () => {
        phase = "done";
        if (timer) clearTimeout(timer);
      };
      const job: Job = {
        resolve: (outcome, hooks) => {
          if (phase !== "run") return;
          if (!hooks) {
            end();
            return resolve({ outcome, hooks: noHooks });
          }
          // The hooks run in the child when the completer asks, still within the hard limit.
          phase = "hooks";
          const done = new Promise<void>((resolveDone) => {
            job.hooksDone = () => {
              end();
              resolveDone();
            };
          });
          let asked = false;
          resolve({
            outcome,
            hooks: (skip = false) => {
              if (!asked) {
                asked = true;
                if (child.exited) job.hooksDone?.();
                else child.transport.send({ type: "hooks", skip });
              }
              return done;
            },
          });
        },
      };
      child.job = job;
      cancellation.onAbort((reason) => {
        // Stopping the code for real means ending the child; the run ends now, the child is replaced.
        if (
          !(
            reason instanceof TaskRevokedError ||
            reason instanceof TimeLimitExceeded ||
            reason instanceof WorkerLostError
          )
        )
          return;
        if (child.job !== job || phase === "done") return;
        const running = phase === "run";
        if (running) {
          end();
          child.job = undefined;
        }
        const signal =
          reason instanceof TaskRevokedError
            ? (SIGNAL_NAMES[request.terminatedWith ?? 15] ?? "SIGTERM")
            : "SIGKILL";
        this.env.logger.info(
          {
            pool: this.kind,
            child: child.transport.id,
            taskId: request.id,
            reason: reason.message,
          },
          "stopping pool child",
        );
        child.retiring = true;
        child.transport.kill(signal);
        // Stopped in its hooks: the outcome stands, the child's exit ends the wait for them.
        if (!running) return;
        // The child is gone: no hooks run (as when Celery's pool ends a process).
        resolve({
          outcome:
            reason instanceof TaskRevokedError
              ? { kind: "revoked", error: reason, runtime: runtime() }
              : { kind: "failure", error: reason, runtime: runtime() },
          hooks: noHooks,
        });
      });
      if (hard !== undefined)
        timer = setTimeout(() => cancellation.abort(new TimeLimitExceeded(hard)), hard * 1000);
      const message: RunMessage = {
        type: "run",
        message: {
          ...request.message,
          headers: { ...request.message.headers, timelimit: [null, soft ?? null] },
        },
        delivery: {
          exchange: request.delivery.exchange,
          routingKey: request.delivery.routingKey,
          queue: request.delivery.queue,
          redelivered: request.delivery.redelivered,
        },
        softTimeLimit: soft,
      };
      child.transport.send(message);
    });
  }

  async close(): Promise<void> {
    this.closed = true;
    const exits = [...this.children].map(
      (c) =>
        new Promise<void>((resolve) => {
          if (c.exited) return resolve();
          c.transport.onExit(() => resolve());
          c.transport.kill("SIGTERM");
        }),
    );
    await Promise.race([Promise.all(exits), new Promise((r) => setTimeout(r, 5000))]);
    for (const c of this.children) if (!c.exited) c.transport.kill("SIGKILL");
  }
}

// Children never outlive the worker, even when it exits without closing its pool.
const everyPool = new Set<IsolatedPool>();
process.once("exit", () => {
  for (const p of everyPool) void p.close();
});
export function trackPool(pool: IsolatedPool): IsolatedPool {
  everyPool.add(pool);
  return pool;
}
