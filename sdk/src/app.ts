/**
 * The app: one broker, one optional result backend, and the registry of tasks this process
 * implements. Producers send through it; workers run its registry.
 */

import { randomUUID } from "node:crypto";
import os from "node:os";
import { pino } from "pino";
import type { ResultBackend } from "./backends/backend.js";
import { createBackend } from "./backends/index.js";
import type { Broker } from "./brokers/broker.js";
import { createBroker } from "./brokers/index.js";
import { registerBuiltins } from "./canvas/builtins.js";
import { type Signature, type SignatureOptions, signatureByName } from "./canvas/canvas.js";
import { LamportClock } from "./clock.js";
import { ControlClient } from "./control/client.js";
import { CeleriacError } from "./errors.js";
import { EventDispatcher } from "./events/dispatcher.js";
import { Locks } from "./locks/locks.js";
import { UNIQUE_HEADER, uniqueHeader } from "./locks/options.js";
import {
  type AppOptions,
  queueDeclaration,
  type ResolvedAppOptions,
  resolveAppOptions,
  type TaskOptions,
  validateTaskOptions,
} from "./options.js";
import { AsyncResult } from "./producer/async-result.js";
import { TaskClient } from "./producer/client.js";
import { buildTaskMessage } from "./producer/message-builder.js";
import type { InternalSendOptions, SendOptions } from "./producer/options.js";
import { Producer } from "./producer/producer.js";
import type { TaskHeaders } from "./protocol/message.js";
import { defineTask, type Kwargs, type TaskDefinition, type TaskHandler } from "./task.js";
import { currentTask, type TaskMiddleware } from "./worker/context.js";

/** A task this app implements: its contract, handler and options merged with the app's defaults. */
export interface RegisteredTask {
  readonly definition: TaskDefinition;
  readonly handler: TaskHandler<unknown[], unknown, Kwargs>;
  readonly options: Readonly<TaskOptions>;
}

/** A task defined on an app: it can be sent (`delay`, `applyAsync`) and run by the app's workers. */
export class Task<
  A extends unknown[] = unknown[],
  R = unknown,
  K extends Kwargs = Kwargs,
> extends TaskClient<A, R, K> {
  constructor(
    app: App,
    definition: TaskDefinition<A, R, K>,
    readonly handler: TaskHandler<A, R, K>,
  ) {
    super(app, definition);
  }
}

interface Connection {
  broker: Broker;
  backend: ResultBackend | null;
  producer: Producer;
}

export class App {
  readonly registry = new Map<string, RegisteredTask>();
  /** Reply address of this client (Celery's "oid"). */
  readonly oid = randomUUID();
  /** The Lamport clock of events and control messages sent from this app. */
  readonly clock = new LamportClock();
  /** Remote control of workers: `app.control.ping()`, `.revoke(id, { terminate: true })`, `.inspect("active")` … */
  readonly control = new ControlClient(
    async () => (await this.connect()).broker,
    this.oid,
    this.clock,
  );
  /** The locks of unique tasks: `app.locks.list()` (who holds what, until when), `.release(key)`. */
  readonly locks = new Locks(() => this.opts);
  private sentEvents: EventDispatcher | undefined;
  private cachedNodename: string | undefined;
  private readonly middlewareStack: TaskMiddleware[] = [];
  private opts: ResolvedAppOptions;
  private connection: Promise<Connection> | undefined;
  private resolved: Connection | undefined;

  constructor(options: AppOptions = {}) {
    this.opts = resolveAppOptions(options);
    registerBuiltins(this);
  }

  get options(): Readonly<ResolvedAppOptions> {
    return this.opts;
  }

  /** Change options before the first connection (the CLI applies `--broker` this way). */
  configure(options: AppOptions): void {
    if (this.connection)
      throw new CeleriacError(
        "INVALID_OPTION",
        "configure() must be called before the app connects",
      );
    this.opts = resolveAppOptions({ ...this.opts, ...options });
  }

  /**
   * Define and register a task.
   *
   * @example
   * const add = app.task("tasks.add", (ctx, x: number, y: number) => x + y);
   * const add = app.task(addContract, (ctx, x, y) => x + y); // implement a defineTask() contract
   */
  task<A extends unknown[], R, K extends Kwargs = Kwargs>(
    definition: TaskDefinition<A, R, K>,
    handler: TaskHandler<NoInfer<A>, NoInfer<R>, NoInfer<K>>,
    options?: TaskOptions,
  ): Task<A, R, K>;
  task<A extends unknown[], R, K extends Kwargs = Kwargs>(
    name: string,
    handler: TaskHandler<A, R, K>,
    options?: TaskOptions,
  ): Task<A, Awaited<R>, K>;
  task<A extends unknown[], R, K extends Kwargs = Kwargs>(
    nameOrDefinition: string | TaskDefinition<A, R, K>,
    handler: TaskHandler<A, R, K>,
    options: TaskOptions = {},
  ): Task<A, Awaited<R>, K> {
    const base =
      typeof nameOrDefinition === "string"
        ? defineTask<A, R, K>(nameOrDefinition)
        : nameOrDefinition;
    // Options given here override the contract's, as a base's do; hooks of both run, the contract's first.
    const definition = Object.keys(options).length
      ? {
          ...base,
          options: Object.freeze(
            validateTaskOptions(base.name, mergeTaskOptions(base.options, options)),
          ),
        }
      : base;
    if (this.registry.has(definition.name)) {
      throw new CeleriacError(
        "INVALID_OPTION",
        `task ${definition.name} is already registered on this app`,
      );
    }
    this.registry.set(definition.name, {
      definition: definition as TaskDefinition,
      handler: handler as TaskHandler<unknown[], unknown, Kwargs>,
      options: Object.freeze(mergeTaskOptions(this.opts.taskDefaults, definition.options)),
    });
    return new Task(
      this,
      definition as TaskDefinition<A, Awaited<R>, K>,
      handler as TaskHandler<A, Awaited<R>, K>,
    );
  }

  /**
   * Add middleware around every task this app's workers run (first added runs outermost).
   *
   * @example
   * app.use(async (ctx, next) => {
   *   ctx.locals.dir = await mkdtemp(path.join(os.tmpdir(), "task-"));
   *   try { return await next(); } finally { await rm(ctx.locals.dir as string, { recursive: true, force: true }); }
   * });
   */
  use(middleware: TaskMiddleware): this {
    this.middlewareStack.push(middleware);
    return this;
  }

  /** @internal */
  get middleware(): readonly TaskMiddleware[] {
    return this.middlewareStack;
  }

  /**
   * A base task: shared options and hooks that many tasks extend without repeating them. Hooks
   * of the base and of the task both run, the base's first.
   */
  base(options: TaskOptions): TaskBase {
    return new TaskBase(this, validateTaskOptions("(base)", options));
  }

  /** A typed sender for a task implemented elsewhere (another service, or Python). */
  client<A extends unknown[], R, K extends Kwargs>(
    definition: TaskDefinition<A, R, K>,
  ): TaskClient<A, R, K> {
    return new TaskClient(this, definition);
  }

  /** Send a task by name, typed or not (`app.sendTask("tasks.add", [2, 3])`). */
  sendTask<R = unknown>(
    name: string,
    args: unknown[] = [],
    kwargs: Kwargs = {},
    options: SendOptions = {},
  ): Promise<AsyncResult<R>> {
    const definition = this.registry.get(name)?.definition ?? defineTask(name);
    return this.send<R>(definition, args, { ...options, kwargs });
  }

  /**
   * A signature for any task by name, e.g. one written in Python, to put in a chain, group or
   * chord; its result type is the caller's to state.
   *
   * @example
   * await chain(app.signature<number>("py.parse", ["a.csv"]), report.s()).delay();
   */
  signature<R = unknown>(
    name: string,
    args: unknown[] = [],
    options: SignatureOptions & { kwargs?: Kwargs; immutable?: boolean } = {},
  ): Signature<R, unknown[]> {
    return signatureByName<R>(this, name, args, options);
  }

  /** A handle on the result of a task sent earlier (the app connects on first read). */
  asyncResult<R = unknown>(id: string): AsyncResult<R> {
    return new AsyncResult<R>(id, async () => (await this.connect()).backend);
  }

  /** @internal The one path every send takes: validate, build, publish. */
  async send<R>(
    definition: TaskDefinition,
    args: readonly unknown[],
    options: InternalSendOptions,
  ): Promise<AsyncResult<R>> {
    const { producer, backend } = await this.connect();
    const argsSchema = definition.schemas.args;
    if (argsSchema) {
      const parsed = argsSchema.safeParse(args);
      if (!parsed.success)
        throw new CeleriacError("INVALID_ARGUMENTS", `${definition.name}: ${parsed.error.message}`);
    }
    const taskOptions = this.registry.get(definition.name)?.options ?? {
      ...this.opts.taskDefaults,
      ...definition.options,
    };
    const parent = currentTask();
    const message = buildTaskMessage(
      definition.name,
      args,
      {
        ...(parent ? { parentId: parent.id, rootId: parent.rootId } : {}),
        ...options,
        ...(options.unique !== undefined
          ? {
              headers: {
                ...options.headers,
                [UNIQUE_HEADER]: uniqueHeader(
                  options.unique,
                  taskOptions.unique,
                  args,
                  options.kwargs ?? {},
                ),
              },
            }
          : {}),
        ignoreResult:
          options.ignoreResult ??
          taskOptions.ignoreResult ??
          (backend === null ? undefined : false),
      },
      {
        origin: this.nodename,
        replyTo: this.oid,
        ...pick(taskOptions, ["timeLimit", "softTimeLimit", "priority", "expires"]),
      },
    );
    const queue = options.queue ?? taskOptions.queue ?? this.opts.defaultQueue;
    const routingKey = options.routingKey ?? queue;
    const exchange = options.exchange ?? "";
    await producer.publish(message, { queue, exchange, routingKey });
    if (this.opts.taskSendSentEvent)
      this.sendSentEvent(message.headers, queue, exchange, routingKey);
    return new AsyncResult<R>(message.headers.id, backend);
  }

  /** `task-sent`, as Celery's producer sends it with `task_send_sent_event`. */
  private sendSentEvent(h: TaskHeaders, queue: string, exchange: string, routingKey: string): void {
    if (!this.resolved) return;
    this.sentEvents ??= new EventDispatcher(this.resolved.broker, {
      hostname: this.nodename,
      clock: this.clock,
      logger: pino({ level: "warn" }),
    });
    this.sentEvents.send("task-sent", {
      uuid: h.id,
      root_id: h.root_id,
      parent_id: h.parent_id,
      name: h.task,
      args: h.argsrepr,
      kwargs: h.kwargsrepr,
      retries: h.retries,
      eta: h.eta,
      expires: h.expires,
      queue,
      exchange,
      routing_key: routingKey,
    });
  }

  /** The node name this process sends as: `gen<pid>@<host>`, as Celery producers do. */
  get nodename(): string {
    // Asked on every send: os.hostname() is a system call each time.
    this.cachedNodename ??= `gen${process.pid}@${os.hostname()}`;
    return this.cachedNodename;
  }

  /** Connect the broker and backend; idempotent, and done by the first send on its own. */
  connect(): Promise<Connection> {
    if (!this.connection) {
      this.connection = (async () => {
        const broker =
          typeof this.opts.broker === "string"
            ? await createBroker(this.opts.broker)
            : this.opts.broker;
        const rb = this.opts.resultBackend;
        const backend = rb === null ? null : typeof rb === "string" ? await createBackend(rb) : rb;
        await Promise.all([broker.connect(), backend?.connect()]);
        const conn = {
          broker,
          backend,
          producer: new Producer(broker, {
            declaration: (queue) => queueDeclaration(this.opts, queue),
          }),
        };
        this.resolved = conn;
        return conn;
      })();
      this.connection.catch(() => {
        this.connection = undefined;
      });
    }
    return this.connection;
  }

  /** The connected broker and backend; throws before `connect()`. */
  get connected(): Connection {
    if (!this.resolved)
      throw new CeleriacError(
        "INVALID_OPTION",
        "the app is not connected yet: await app.connect()",
      );
    return this.resolved;
  }

  /** Close the broker and backend; idempotent. */
  async close(): Promise<void> {
    const pending = this.connection;
    this.connection = undefined;
    this.resolved = undefined;
    await this.locks.close();
    if (!pending) return;
    const conn = await pending.catch(() => undefined);
    if (conn) await Promise.all([conn.broker.close(), conn.backend?.close()]);
  }
}

function pick<T extends object, K extends keyof T>(obj: T, keys: K[]): Partial<Pick<T, K>> {
  const out: Partial<Pick<T, K>> = {};
  for (const k of keys) if (obj[k] !== undefined) out[k] = obj[k];
  return out;
}

const HOOKS = ["onSuccess", "onFailure", "onRetry", "afterReturn"] as const;

/** Merge task options: later values win, hooks of both run (earlier first). */
export function mergeTaskOptions(base: TaskOptions, extra: TaskOptions): TaskOptions {
  const merged: TaskOptions = { ...base, ...extra };
  for (const hook of HOOKS) {
    const a = base[hook] as ((...args: never[]) => unknown) | undefined;
    const b = extra[hook] as ((...args: never[]) => unknown) | undefined;
    if (a && b) {
      (merged as Record<string, unknown>)[hook] = async (...args: never[]) => {
        await a(...args);
        await b(...args);
      };
    }
  }
  return merged;
}

/** Shared defaults and hooks for many tasks: `const base = app.base({...}); base.task(name, handler)`. */
export class TaskBase {
  constructor(
    readonly app: App,
    readonly options: TaskOptions,
  ) {}

  task<A extends unknown[], R, K extends Kwargs = Kwargs>(
    definition: TaskDefinition<A, R, K>,
    handler: TaskHandler<NoInfer<A>, NoInfer<R>, NoInfer<K>>,
    options?: TaskOptions,
  ): Task<A, R, K>;
  task<A extends unknown[], R, K extends Kwargs = Kwargs>(
    name: string,
    handler: TaskHandler<A, R, K>,
    options?: TaskOptions,
  ): Task<A, Awaited<R>, K>;
  task<A extends unknown[], R, K extends Kwargs = Kwargs>(
    nameOrDefinition: string | TaskDefinition<A, R, K>,
    handler: TaskHandler<A, R, K>,
    options: TaskOptions = {},
  ): Task<A, Awaited<R>, K> {
    return this.app.task(
      nameOrDefinition as string,
      handler,
      mergeTaskOptions(this.options, options),
    );
  }

  /** A base on top of this one. */
  extend(options: TaskOptions): TaskBase {
    return new TaskBase(this.app, mergeTaskOptions(this.options, options));
  }
}

/** Create an app. Connections open on first use (or `await app.connect()`). */
export function createApp(options: AppOptions = {}): App {
  return new App(options);
}
