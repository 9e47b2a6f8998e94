/**
 * The worker: consumes queues and runs tasks, at most `concurrency` at once.
 *
 * Data flows one way: the consumer turns deliveries into Requests; the worker checks them
 * (registered? revoked? expired? due?), holds ETA tasks until due, and starts due ones when a
 * pool slot is free; the pool runs the executor; the completer stores, sends and settles.
 */
import { EventEmitter } from "node:events";
import type { Logger } from "pino";
import type { App, RegisteredTask } from "../app.js";
import type { Broker, QueueDeclaration } from "../brokers/broker.js";
import { redisUrlOf } from "../brokers/url.js";
import { workerCommands } from "../control/commands.js";
import { Mailbox } from "../control/mailbox.js";
import { CeleriacError, TaskRevokedError, WorkerLostError } from "../errors.js";
import { EventDispatcher } from "../events/dispatcher.js";
import { createWorkerLogging } from "../logs/logger.js";
import type { LogShipper } from "../logs/shipper.js";
import { queueDeclaration, type TaskOptions } from "../options.js";
import { Cancellation } from "./cancellation.js";
import { Completer, type TaskEvent } from "./completer.js";
import { TaskConsumer } from "./consumer.js";
import type { Ran } from "./executor.js";
import { GlobalRateLimiter } from "./global-rate-limit.js";
import { Heartbeat } from "./heartbeat.js";
import { type ResolvedWorkerOptions, resolveWorkerOptions, type WorkerOptions } from "./options.js";
import { createPool } from "./pool/index.js";
import type { Pool } from "./pool/pool.js";
import { parseRate, TokenBucket } from "./rate-limit.js";
import type { Request } from "./request.js";
import { RevokedSet } from "./revoked.js";
import { StateDb } from "./state-db.js";
import { type HeldLock, UniqueGuard } from "./unique.js";

/** setTimeout's longest delay; longer ETAs are re-armed. */
const MAX_TIMER_MS = 2 ** 31 - 1;

interface Running {
  request: Request;
  cancellation: Cancellation;
  done: Promise<void>;
}

export interface WorkerEventMap {
  /** A task event with Celery's type and fields (`task-received`, `task-succeeded`, ...). */
  task: [TaskEvent];
  started: [];
  stopped: [];
}

type WorkerState = "new" | "starting" | "running" | "stopping" | "stopped";

export class Worker extends EventEmitter<WorkerEventMap> {
  readonly options: ResolvedWorkerOptions;
  readonly logger: Logger;
  /** Ids that must not run (Celery's revoked LimitedSet). */
  readonly revoked = new RevokedSet();
  /** Tasks running now. */
  readonly active = new Map<string, Running>();
  /** Tasks due and waiting for a pool slot. */
  readonly reserved: Request[] = [];
  /** ETA tasks held until due. */
  readonly scheduled = new Map<Request, NodeJS.Timeout>();
  /** Tasks run, by name (`stats.total`). */
  readonly processed = new Map<string, number>();
  readonly startedAt = Date.now();
  private state: WorkerState = "new";
  private consumer: TaskConsumer | undefined;
  private pool!: Pool;
  private completer!: Completer;
  private readonly abandoned = new Set<Request>();
  private starting: Promise<void> | undefined;
  private stopping: Promise<void> | undefined;
  /** Limits changed at run time (`rate_limit`, `time_limit` commands), by task name. */
  private readonly overrides = new Map<
    string,
    Partial<Pick<TaskOptions, "rateLimit" | "globalRateLimit" | "timeLimit" | "softTimeLimit">>
  >();
  private readonly buckets = new Map<string, TokenBucket>();
  private rateTimer: NodeJS.Timeout | undefined;
  /** Reserved tasks passed over by the last pump for want of a rate-limit token. */
  private rateBlocked = 0;
  private dispatcher: EventDispatcher | undefined;
  private heartbeat: Heartbeat | undefined;
  private mailbox: Mailbox | undefined;
  private stateDb: StateDb | undefined;
  /** Due tasks waiting for a fleet-wide rate-limit token, by task name. */
  private readonly gated = new Map<string, Request[]>();
  private globalLimiter: GlobalRateLimiter | undefined;
  private readonly stopSignal = new AbortController();
  private visibilityTimer: NodeJS.Timeout | undefined;
  /** Publishes log records as `celeriac-log` events (`shipLogs`). */
  private readonly shipper: LogShipper | null = null;
  private readonly unique: UniqueGuard;

  private constructor(
    readonly app: App,
    options: WorkerOptions,
  ) {
    super();
    this.options = resolveWorkerOptions(options);
    if (this.options.logger) this.logger = this.options.logger;
    else
      ({ logger: this.logger, shipper: this.shipper } = createWorkerLogging({
        hostname: this.options.hostname,
        level: this.options.logLevel,
        destinations: app.options.logDestinations,
        redact: app.options.logRedact,
        ship: this.options.shipLogs,
        clock: app.clock,
      }));
    this.unique = new UniqueGuard({
      locks: app.locks,
      hostname: this.options.hostname,
      logger: this.logger,
    });
  }

  /** Build a worker for an app (validating its options); `start()` begins consuming. */
  static async create(app: App, options: WorkerOptions = {}): Promise<Worker> {
    return new Worker(app, options);
  }

  get hostname(): string {
    return this.options.hostname;
  }

  get concurrency(): number {
    return this.pool?.size ?? this.options.concurrency;
  }

  get queues(): readonly string[] {
    return this.consumer?.queues ?? this.options.queues ?? [this.app.options.defaultQueue];
  }

  get isRunning(): boolean {
    return this.state === "running";
  }

  /** Connect and start consuming; idempotent. */
  start(): Promise<void> {
    this.starting ??= this.doStart();
    return this.starting;
  }

  private async doStart(): Promise<void> {
    this.state = "starting";
    // Fail at start, not at the first run, when unique tasks have no lock store to share.
    if ([...this.app.registry.values()].some((t) => t.options.unique))
      await this.app.locks.store(this.logger);
    const { broker } = await this.app.connect();
    this.shipper?.start(broker);
    if (this.options.stateDb) {
      this.stateDb = new StateDb(this.options.stateDb, this.revoked);
      const n = await this.stateDb.load();
      if (n)
        this.logger.info({ revoked: n, stateDb: this.options.stateDb }, "restored revoked ids");
    }
    for (const [name, task] of this.app.registry)
      if (task.options.rateLimit) this.setRateLimit(name, task.options.rateLimit);
    if ([...this.app.registry.values()].some((t) => t.options.globalRateLimit))
      this.globalLimiter = this.createGlobalLimiter();
    const env = { app: this.app, hostname: this.hostname, logger: this.logger };
    this.completer = new Completer({
      ...env,
      listening: () => this.listenerCount("task") > 0,
      emit: (e) => this.emit("task", e),
    });
    this.pool = await createPool(this.options, {
      ...env,
      timeLimit: this.options.timeLimit,
      softTimeLimit: this.options.softTimeLimit,
    });
    await this.pool.start();
    const names = this.options.queues ?? [this.app.options.defaultQueue];
    this.consumer = new TaskConsumer({
      broker,
      queues: names.map((name) => this.queueDeclaration(name)),
      prefetch: this.options.concurrency * this.options.prefetchMultiplier,
      logger: this.logger,
      onRequest: (r) => this.receive(r),
    });
    this.dispatcher = new EventDispatcher(broker, {
      hostname: this.hostname,
      clock: this.app.clock,
      logger: this.logger,
      groups: new Set(this.options.taskEvents ? ["worker", "task"] : ["worker"]),
      batchTaskEvents: true,
    });
    if (this.options.taskEvents) this.on("task", this.publishTaskEvent);
    if (this.options.control) {
      this.mailbox = new Mailbox(
        broker,
        this.hostname,
        workerCommands(this),
        this.app.clock,
        this.logger,
      );
      await this.mailbox.start();
    }
    // Running before the consumer starts: on RabbitMQ the first queues deliver while the next are
    // still being declared, and those deliveries are served, not handed back.
    this.state = "running";
    try {
      await this.consumer.start();
    } catch (error) {
      this.state = "starting";
      throw error;
    }
    this.keepHeldVisible(broker);
    if (!this.options.withoutHeartbeat) {
      this.heartbeat = new Heartbeat(
        this.dispatcher,
        { activeCount: () => this.activeCount, processedCount: () => this.processedTotal() },
        this.options.heartbeatInterval,
      );
      this.heartbeat.start();
    }
    this.logger.info(
      {
        queues: names,
        concurrency: this.options.concurrency,
        broker: broker.displayUrl,
        tasks: [...this.app.registry.keys()],
      },
      `${this.hostname} ready`,
    );
    this.emit("started");
  }

  queueDeclaration(name: string): QueueDeclaration {
    return queueDeclaration(this.app.options, name);
  }

  private receive(request: Request): void {
    if (this.state !== "running") {
      // Fetched as the consumer stopped: given back untouched, as a stopping kombu consumer
      // restores what it holds.
      this.settleLater(request.giveBack());
      return;
    }
    const task = this.app.registry.get(request.name);
    if (!task) {
      this.settleLater(this.completer.notRegistered(request));
      return;
    }
    if (this.discardIfRevoked(request, task)) return;
    // As Celery's consumer: task-received only for a task it will handle, so not for an unknown
    // one (on_unknown_task) nor a revoked or expired one (the strategy checks that first).
    if (this.listenerCount("task") > 0) {
      const h = request.headers;
      this.emit("task", {
        type: "task-received",
        uuid: request.id,
        name: request.name,
        args: h.argsrepr,
        kwargs: h.kwargsrepr,
        root_id: h.root_id,
        parent_id: h.parent_id,
        retries: h.retries,
        eta: h.eta,
        expires: h.expires,
      });
    }
    const delay = request.eta ? request.eta.getTime() - Date.now() : 0;
    if (delay > 0) this.hold(request, delay);
    else this.ready(request);
  }

  /** Revoked and expired messages are acked and stored as REVOKED, never run. */
  private discardIfRevoked(request: Request, task: RegisteredTask | undefined): boolean {
    if (this.revoked.has(request.id)) {
      this.settleLater(this.completer.revoked(request, task, "revoked"));
      return true;
    }
    if (request.isExpired()) {
      this.revoked.add(request.id);
      this.settleLater(this.completer.revoked(request, task, "expired"));
      return true;
    }
    return false;
  }

  /** Keep an ETA task until due, widening the prefetch window by one so it blocks no other work. */
  private hold(request: Request, delay: number): void {
    const arm = (ms: number) => {
      const timer = setTimeout(
        () => {
          const left = (request.eta?.getTime() ?? 0) - Date.now();
          if (left > 0) return arm(Math.min(left, MAX_TIMER_MS));
          this.scheduled.delete(request);
          this.ready(request);
          this.updateHeld();
        },
        Math.min(ms, MAX_TIMER_MS),
      );
      this.scheduled.set(request, timer);
    };
    arm(delay);
    this.updateHeld();
  }

  /**
   * On brokers with a visibility timeout (Redis), restart it for every message this worker holds
   * unsettled, four times per timeout: an ETA task held for hours, or a long late-acked task, is
   * then never handed to a second worker (a known Celery-on-Redis double run).
   */
  private keepHeldVisible(broker: Broker): void {
    const timeout = broker.visibilityTimeout;
    if (!broker.extendVisibility || !timeout) return;
    this.visibilityTimer = setInterval(
      () => {
        const held = [
          ...this.scheduled.keys(),
          ...this.waiting,
          ...[...this.active.values()].map((r) => r.request),
        ];
        const tags = held.filter((r) => !r.acknowledged).map((r) => r.delivery.deliveryTag);
        if (tags.length) this.settleLater(broker.extendVisibility!(tags));
      },
      (timeout * 1000) / 4,
    );
    this.visibilityTimer.unref();
  }

  /** Messages held without running widen the prefetch window by as many (see TaskConsumer.setHeld). */
  private updateHeld(): void {
    let gated = 0;
    for (const queue of this.gated.values()) gated += queue.length;
    this.settleLater(this.consumer?.setHeld(this.scheduled.size + this.rateBlocked + gated));
  }

  /** A task type's fleet-wide rate in tasks per second (0: none), as changed at run time. */
  private globalRate(name: string): number {
    return parseRate(this.effectiveTask(name)?.options.globalRateLimit);
  }

  private ready(request: Request): void {
    if (this.globalRate(request.name) > 0 && this.globalLimiter) {
      const queue = this.gated.get(request.name);
      if (queue) queue.push(request);
      else {
        this.gated.set(request.name, [request]);
        void this.drainGate(request.name, this.globalLimiter);
      }
      this.updateHeld();
      return;
    }
    this.reserved.push(request);
    this.pump();
  }

  /**
   * Release one task of a type per fleet-wide token; other types are not held up. The rate is
   * read again for every token, so a change at run time applies to the tasks already waiting
   * (and a limit removed lets them all go).
   */
  private async drainGate(name: string, limiter: GlobalRateLimiter): Promise<void> {
    const queue = this.gated.get(name)!;
    while (queue.length > 0 && this.state === "running") {
      let taken: boolean;
      try {
        taken = await limiter.acquire(name, () => this.globalRate(name), this.stopSignal.signal);
      } catch (error) {
        if (this.stopSignal.signal.aborted) break;
        this.logger.error(
          { err: error, task: name },
          "global rate limit unavailable; retrying in 1 s",
        );
        await new Promise((r) => setTimeout(r, 1000));
        continue;
      }
      if (!taken) {
        // The limit was removed: what waited for it runs as any task does.
        this.reserved.push(...queue.splice(0));
        break;
      }
      const request = queue.shift();
      if (!request) break;
      this.reserved.push(request);
      this.pump();
      this.updateHeld();
    }
    if (queue.length === 0) this.gated.delete(name);
    this.pump();
    this.updateHeld();
  }

  private createGlobalLimiter(): GlobalRateLimiter {
    const { broker, resultBackend, rateLimitRedis } = this.app.options;
    const url = rateLimitRedis ?? redisUrlOf(broker) ?? redisUrlOf(resultBackend);
    if (!url)
      throw new CeleriacError(
        "INVALID_OPTION",
        "globalRateLimit needs Redis: set the app's rateLimitRedis (or use a Redis broker or result backend)",
      );
    return new GlobalRateLimiter(url);
  }

  /**
   * Start due tasks while slots are free, in arrival order, skipping task types that wait for a
   * rate-limit token (they keep their place; other types go ahead).
   */
  private pump(): void {
    if (this.state !== "running") return;
    let wait = Number.POSITIVE_INFINITY;
    let passedOver = 0;
    const blocked = new Set<string>();
    for (let i = 0; i < this.reserved.length && this.active.size < this.pool.size; ) {
      const request = this.reserved[i]!;
      const bucket = this.buckets.get(request.name);
      if (bucket) {
        const ms = blocked.has(request.name) ? Number.POSITIVE_INFINITY : bucket.take();
        if (ms > 0) {
          blocked.add(request.name);
          wait = Math.min(wait, ms);
          passedOver++;
          i++;
          continue;
        }
      }
      this.reserved.splice(i, 1);
      this.run(request);
    }
    // Count every limited task still waiting, not only those the loop reached.
    if (blocked.size > 0) passedOver = this.reserved.filter((r) => blocked.has(r.name)).length;
    if (passedOver !== this.rateBlocked) {
      this.rateBlocked = passedOver;
      this.updateHeld();
    }
    if (Number.isFinite(wait) && !this.rateTimer) {
      this.rateTimer = setTimeout(() => {
        this.rateTimer = undefined;
        this.pump();
      }, wait);
    }
  }

  private run(request: Request): void {
    const task = this.effectiveTask(request.name)!;
    if (this.discardIfRevoked(request, task)) return;
    const cancellation = new Cancellation();
    const running: Running = { request, cancellation, done: Promise.resolve() };
    this.active.set(request.id, running);
    request.startedAt = Date.now();
    running.done = this.execute(request, task, cancellation).finally(() => {
      this.active.delete(request.id);
      this.pump();
    });
  }

  private async execute(
    request: Request,
    task: RegisteredTask,
    cancellation: Cancellation,
  ): Promise<void> {
    let lock: HeldLock | undefined;
    let ran: Ran | undefined;
    try {
      // Unique tasks take their lock before the early ack: a run that ends on a conflict
      // settles its message itself.
      const taken = await this.unique.take(request, task);
      if (taken && "ended" in taken) {
        await this.completer.complete(request, task, taken.ended);
        return;
      }
      lock = taken?.held;
      // Early ack (Celery's default) happens as the task starts; the run does not wait for it.
      if (!task.options.acksLate) this.settleLater(request.ack());
      if (this.listenerCount("task") > 0)
        this.emit("task", { type: "task-started", uuid: request.id });
      await this.completer.started(request, task);
      ran = await this.pool.run(request, task, cancellation);
      // Freed before the result is stored: a caller who waited for it may send the next run at once.
      await this.releaseLock(lock);
      this.processed.set(request.name, (this.processed.get(request.name) ?? 0) + 1);
      if (this.abandoned.has(request)) return;
      await this.completer.complete(request, task, ran.outcome, ran.hooks);
    } catch (error) {
      // Completing failed (backend or broker down): give the message back rather than lose it.
      this.logger.error(
        { err: error, taskId: request.id, task: request.name },
        "could not complete task; message requeued if not yet acked",
      );
      await request.reject(true).catch(() => {});
    } finally {
      // Hooks the completer did not run (abandoned, or completing failed) are skipped, which
      // frees an isolated pool's child waiting for them.
      await ran?.hooks(true);
      await this.releaseLock(lock);
    }
  }

  /** Release a unique task's lock (idempotent); if that fails, it expires after its ttl. */
  private async releaseLock(lock: HeldLock | undefined): Promise<void> {
    await lock
      ?.release()
      .catch((error) =>
        this.logger.warn({ err: error, key: lock.key }, "could not release a unique lock"),
      );
  }

  /** Background settlements must never become unhandled rejections. */
  private settleLater(p: Promise<unknown> | undefined): void {
    p?.catch((error) => this.logger.error({ err: error }, "broker or backend operation failed"));
  }

  /**
   * Revoke tasks: they will not run when they arrive; with `terminate`, running ones are stopped
   * (their AbortSignal fires and they end as REVOKED). Returns the ids that were running.
   */
  revoke(ids: string[], options: { terminate?: boolean; signum?: number } = {}): string[] {
    const terminated: string[] = [];
    for (const id of ids) {
      this.revoked.add(id);
      const running = this.active.get(id);
      if (running && options.terminate) {
        running.request.terminatedWith = options.signum ?? 15;
        running.cancellation.abort(new TaskRevokedError("terminated"));
        terminated.push(id);
      }
    }
    if (ids.length) this.stateDb?.scheduleSave();
    return terminated;
  }

  /** The registered task with the limits changed at run time applied. */
  effectiveTask(name: string): RegisteredTask | undefined {
    const task = this.app.registry.get(name);
    const override = this.overrides.get(name);
    return task && override ? { ...task, options: { ...task.options, ...override } } : task;
  }

  /**
   * Change a task type's rate limit (`"10/s"`; null or "0" removes it): on this worker (Celery's
   * `rate_limit`), or with `global` the fleet-wide one this worker takes its tokens under (sent
   * to every worker, as a broadcast does, it changes the fleet's). A global limit needs Redis.
   */
  setRateLimit(name: string, rate: string | null, options: { global?: boolean } = {}): void {
    const perSecond = parseRate(rate);
    if (options.global) {
      if (perSecond > 0) this.globalLimiter ??= this.createGlobalLimiter();
      this.overrides.set(name, { ...this.overrides.get(name), globalRateLimit: rate });
      return;
    }
    this.overrides.set(name, { ...this.overrides.get(name), rateLimit: rate });
    if (perSecond > 0) this.buckets.set(name, new TokenBucket(perSecond));
    else this.buckets.delete(name);
    if (this.state === "running") this.pump();
  }

  rateLimitOf(name: string): string | null {
    return this.effectiveTask(name)?.options.rateLimit ?? null;
  }

  /** Change a task type's time limits on this worker (seconds; null removes one). */
  setTimeLimit(name: string, limits: { soft: number | null; hard: number | null }): void {
    this.overrides.set(name, {
      ...this.overrides.get(name),
      ...(limits.soft !== null ? { softTimeLimit: limits.soft } : { softTimeLimit: undefined }),
      ...(limits.hard !== null ? { timeLimit: limits.hard } : { timeLimit: undefined }),
    });
  }

  /** Task events go to the dispatcher only while enabled, so none are built when nobody listens. */
  private readonly publishTaskEvent = ({ type, ...fields }: TaskEvent) =>
    this.dispatcher?.send(type, fields);

  /** Turn task events on or off; returns whether anything changed. */
  setTaskEvents(enabled: boolean): boolean {
    const groups = this.dispatcher?.groups;
    if (!groups || groups.has("task") === enabled) return false;
    if (enabled) {
      groups.add("task");
      this.on("task", this.publishTaskEvent);
    } else {
      groups.delete("task");
      this.off("task", this.publishTaskEvent);
    }
    return true;
  }

  get taskEventsEnabled(): boolean {
    return this.dispatcher?.groups?.has("task") ?? this.options.taskEvents;
  }

  heartbeatNow(): void {
    this.heartbeat?.beat();
  }

  /**
   * Messages fetched and due but not running yet: waiting for a free slot or a rate-limit token
   * (Celery's "reserved"), fleet-wide tokens included.
   */
  get waiting(): Request[] {
    return [...this.reserved, ...[...this.gated.values()].flat()];
  }

  /** Tasks running now, until each is completed (its result stored, its message settled). */
  get activeCount(): number {
    return this.active.size;
  }

  /** Tasks run since the worker started (Celery's `processed`), counted as each run ends. */
  processedTotal(): number {
    let n = 0;
    for (const v of this.processed.values()) n += v;
    return n;
  }

  /** Change how many tasks run at once. */
  resize(concurrency: number): void {
    if (!Number.isInteger(concurrency) || concurrency < 1)
      throw new CeleriacError("INVALID_OPTION", "concurrency must be a positive integer");
    this.pool.size = concurrency;
    this.settleLater(this.consumer?.setBasePrefetch(concurrency * this.options.prefetchMultiplier));
    this.pump();
  }

  async addQueue(name: string): Promise<void> {
    await this.consumer?.addQueue(this.queueDeclaration(name));
  }

  async cancelQueue(name: string): Promise<void> {
    await this.consumer?.removeQueue(name);
  }

  /**
   * Stop. Warm (default): stop fetching, give back held and waiting messages, let running tasks
   * finish for up to `shutdownTimeout` seconds, then abort the rest. `force` skips the wait.
   * Idempotent; a forced stop during a warm one cuts it short.
   */
  stop(options: { force?: boolean } = {}): Promise<void> {
    if (options.force && this.stopping) {
      this.abandonActive();
      return this.stopping;
    }
    this.stopping ??= this.doStop(options.force ?? false);
    return this.stopping;
  }

  private async doStop(force: boolean): Promise<void> {
    await this.starting?.catch(() => {});
    if (this.state === "new") {
      this.state = "stopped";
      return;
    }
    this.state = "stopping";
    this.logger.info({ force, active: this.active.size }, `${this.hostname} shutting down`);
    await this.consumer?.stop();
    for (const timer of this.scheduled.values()) clearTimeout(timer);
    const held = [
      ...this.scheduled.keys(),
      ...this.reserved.splice(0),
      ...[...this.gated.values()].flatMap((queue) => queue.splice(0)),
    ];
    this.scheduled.clear();
    this.stopSignal.abort();
    // In the background, as before: a broker that is down must not hold up the shutdown (what it
    // has not restored when the broker closes, the broker's close restores the same way).
    this.settleLater(this.giveBack(held));

    const allDone = Promise.all([...this.active.values()].map((r) => r.done));
    if (!force && this.active.size > 0) {
      let timer: NodeJS.Timeout | undefined;
      const timeout = new Promise<void>((r) => {
        timer = setTimeout(r, this.options.shutdownTimeout * 1000);
      });
      await Promise.race([allDone, timeout]);
      clearTimeout(timer);
    }
    await this.abandonActive();
    await this.unique.releaseAll();
    await this.pool.close();
    if (this.rateTimer) clearTimeout(this.rateTimer);
    if (this.visibilityTimer) clearInterval(this.visibilityTimer);
    this.heartbeat?.stop();
    this.dispatcher?.flush();
    await this.mailbox?.stop();
    await this.globalLimiter?.close();
    await this.stateDb
      ?.save()
      .catch((error) => this.logger.error({ err: error }, "could not save the state db"));
    this.state = "stopped";
    this.logger.info(`${this.hostname} stopped`);
    await this.shipper?.close();
    this.emit("stopped");
  }

  /**
   * Messages held and not started, given back one by one in the order they came, as kombu's
   * `restore_unacked` does at warm shutdown: on Redis each goes to the end of its queue consumed
   * next (RPUSH), so they run before what was never fetched, where a requeue (LPUSH) would put
   * them behind it.
   */
  private async giveBack(requests: Request[]): Promise<void> {
    for (const request of requests.sort((a, b) => a.seq - b.seq))
      await request
        .giveBack()
        .catch((error) =>
          this.logger.error({ err: error, taskId: request.id }, "could not give a message back"),
        );
  }

  /** Tasks still running at the end of a shutdown: aborted; unacked ones given back, acked ones marked lost. */
  private async abandonActive(): Promise<void> {
    const settlements: Promise<unknown>[] = [];
    for (const { request, cancellation } of this.active.values()) {
      if (this.abandoned.has(request)) continue;
      this.abandoned.add(request);
      const error = new WorkerLostError("Worker exited prematurely: shutdown");
      cancellation.abort(error);
      if (!request.acknowledged) settlements.push(request.giveBack());
      else settlements.push(this.storeLost(request, error));
    }
    await Promise.allSettled(settlements);
  }

  /**
   * A task acked and then abandoned (Celery: its child lost): failed as any failure is, through
   * the completer — stored with its group and parent, counted for its chord, the rest of its
   * chain failed, its errbacks sent — but without its hooks, as Celery's
   * `mark_as_failure(request=...)` for a WorkerLostError.
   */
  private async storeLost(request: Request, error: WorkerLostError): Promise<void> {
    await this.completer.failed(request, this.effectiveTask(request.name), error);
  }

  /** What `inspect stats` reports, in Celery's shape. */
  stats() {
    return {
      total: Object.fromEntries(this.processed),
      pid: process.pid,
      uptime: Math.round((Date.now() - this.startedAt) / 1000),
      pool: {
        "max-concurrency": this.concurrency,
        processes: this.pool?.pids() ?? [process.pid],
        "max-tasks-per-child": this.options.maxTasksPerChild ?? "N/A",
        implementation: `celeriac:${this.pool?.kind ?? this.options.pool}`,
      },
      prefetch_count: this.concurrency * this.options.prefetchMultiplier + this.scheduled.size,
    };
  }
}

/** Create a worker for an app; call `start()` to begin. */
export function createWorker(app: App, options: WorkerOptions = {}): Promise<Worker> {
  return Worker.create(app, options);
}
