/**
 * The canvas: signatures (a task with its arguments and options, not yet sent) composed into
 * chains, groups and chords, typed end to end. Each is a value: `set`, `link`, `pipe` … return
 * a new one. Each is Celery's signature dict underneath (`toDict()`), so it can be embedded in a
 * message (a link, a chain step, a chord's callback) and read by Python Celery as its own.
 *
 * @example
 * const total = await chain(add.s(2, 3), add.s(10), mul.s(2)).delay(); // (2 + 3 + 10) * 2
 * const sums = await group([add.s(1, 1), add.s(2, 2)]).delay();        // GroupResult<[number, number]>
 * const all = await chord([add.s(1, 1), add.s(2, 2)], tsum.s()).delay(); // tsum([2, 4])
 */
import type { App } from "../app.js";
import { CeleriacError } from "../errors.js";
import type { AsyncResult } from "../producer/async-result.js";
import type { TaskClient } from "../producer/client.js";
import type { GroupResult } from "../producer/group-result.js";
import type { SendOptions } from "../producer/options.js";
import type { SignatureDict } from "../protocol/message.js";
import {
  addCallback,
  addErrback,
  applySignature,
  CHUNKS,
  checkChunkSize,
  chunksGroup,
  cloneSignature,
  signatureDict,
} from "./apply.js";
import { chainDict, chordDict, pipe } from "./compose.js";
import { type SignatureContext, signatureOptions } from "./signature-dict.js";
import type {
  AnyCanvas,
  CheckChain,
  FirstExpects,
  LastResult,
  MembersExpect,
  ResultsOf,
} from "./types.js";

/** Options a signature carries until it is sent: every send option but `kwargs`. */
export type SignatureOptions = Omit<SendOptions, "kwargs">;

/**
 * Anything the canvas composes: it returns `R` when it succeeds, expects `P` prepended to its
 * arguments (the previous step's result, in a chain), and gives a handle `H` when sent.
 */
export abstract class Canvas<R = unknown, P extends unknown[] = unknown[], H = AsyncResult<R>> {
  /** Types only: never set at run time. */
  declare readonly __canvas?: { result: R; expects: (...args: P) => void; handle: H };

  constructor(
    /** The app that sends it (for a group or chain, its first member's). */
    readonly app: App | undefined,
    protected readonly dict: SignatureDict,
  ) {}

  /** Celery's signature dict, as embedded in messages. */
  toDict(): SignatureDict {
    return structuredClone(this.dict);
  }

  /** A copy of this canvas around another dict. */
  protected derive(dict: SignatureDict): this {
    const copy = Object.create(Object.getPrototypeOf(this)) as this;
    Object.assign(copy, this, { dict });
    return copy;
  }

  /** What turning send options into signature options needs to know about this canvas. */
  protected context(): SignatureContext {
    return {
      taskUnique: this.app?.registry.get(this.dict.task)?.options.unique,
      headers: this.dict.options?.headers,
    };
  }

  /** The same, with these options when sent (merged over the ones already set). */
  set(options: SignatureOptions): this {
    return this.derive(
      cloneSignature(this.dict, [], {}, signatureOptions(options, this.context())),
    );
  }

  /** The same, sending `callback` with this one's result when it succeeds. */
  link(callback: Canvas<unknown, [R], unknown>): this {
    const dict = structuredClone(this.dict);
    addCallback(dict, callback.toDict());
    return this.derive(dict);
  }

  /** The same, sending `errback` with the failed task's id if it fails. */
  linkError(errback: Canvas<unknown, [taskId: string], unknown>): this {
    const dict = structuredClone(this.dict);
    addErrback(dict, errback.toDict());
    return this.derive(dict);
  }

  /** This, then `next` with this one's result (Celery's `|`). */
  pipe<R2, H2>(next: Canvas<R2, [R], H2>): Canvas<R2, P, H2> {
    return new Chain(this.app ?? next.app, pipe(this.dict, next.toDict()));
  }

  /**
   * Send it. `args` are prepended to its own (unless immutable); `options.kwargs` are merged
   * into its kwargs; other options override the ones it carries.
   */
  async applyAsync(args?: P, options: SendOptions = {}): Promise<H> {
    const app = this.app;
    if (!app)
      throw new CeleriacError(
        "INVALID_ARGUMENTS",
        "this canvas has no app to send it: build it from tasks (task.s(...)) or app.signature(...)",
      );
    const { kwargs, ...rest } = options;
    const dict = this.dict;
    // A task's signature knows its final arguments now: a function `unique.by` can run on them.
    const call =
      dict.subtask_type === null || dict.subtask_type === undefined
        ? {
            args: dict.immutable ? dict.args : [...(args ?? []), ...dict.args],
            kwargs: dict.immutable ? dict.kwargs : { ...dict.kwargs, ...kwargs },
          }
        : undefined;
    return (await applySignature(
      app,
      dict,
      args ?? [],
      kwargs ?? {},
      signatureOptions(rest, { ...this.context(), ...(call ? { call } : {}) }),
    )) as H;
  }

  /** Send it with these arguments prepended. */
  delay(...args: P): Promise<H> {
    return this.applyAsync(args);
  }
}

/** One task call: a task name, arguments, options (`add.s(2, 3)`, `add.si(2, 3)`). */
export class Signature<R = unknown, P extends unknown[] = []> extends Canvas<R, P> {
  get task(): string {
    return this.dict.task;
  }

  get args(): readonly unknown[] {
    return this.dict.args;
  }

  get kwargs(): Readonly<Record<string, unknown>> {
    return this.dict.kwargs;
  }

  get options(): Readonly<Record<string, unknown>> {
    return this.dict.options;
  }

  /** An immutable signature ignores the result of the step before it. */
  get immutable(): boolean {
    return this.dict.immutable;
  }

  override pipe<R2, H2>(next: Canvas<R2, [R], H2>): Chain<R2, P, H2> {
    return new Chain(this.app ?? next.app, pipe(this.dict, next.toDict()));
  }
}

/** Steps run one after another, each getting the previous result prepended. */
export class Chain<R = unknown, P extends unknown[] = unknown[], H = AsyncResult<R>> extends Canvas<
  R,
  P,
  H
> {
  override pipe<R2, H2>(next: Canvas<R2, [R], H2>): Chain<R2, P, H2> {
    return new Chain(this.app ?? next.app, pipe(this.dict, next.toDict()));
  }
}

/** Members run in parallel; the result is every member's, in order. */
export class Group<R extends unknown[] = unknown[], P extends unknown[] = unknown[]> extends Canvas<
  R,
  P,
  GroupResult<R>
> {
  get length(): number {
    return ((this.dict.kwargs.tasks ?? []) as unknown[]).length;
  }

  /** A group followed by anything is a chord: `next` gets every member's result. */
  override pipe<R2, H2>(next: Canvas<R2, [R], H2>): Chord<R2, P, H2> {
    return new Chord(this.app ?? next.app, pipe(this.dict, next.toDict()));
  }
}

/** A group whose callback runs once, with every member's result, when all have succeeded. */
export class Chord<R = unknown, P extends unknown[] = unknown[], H = AsyncResult<R>> extends Canvas<
  R,
  P,
  H
> {
  /** The callback grows into a chain: `next` gets the callback's result. */
  override pipe<R2, H2>(next: Canvas<R2, [R], H2>): Chord<R2, P, H2> {
    return new Chord(this.app ?? next.app, pipe(this.dict, next.toDict()));
  }
}

/** Celery's chunks: argument tuples cut into parts, each part run by one `celery.starmap` task. */
export class Chunks<R = unknown> extends Canvas<R[][], [], GroupResult<R[][]>> {
  /** The group of parts, for a chord's header or to set options on each part. */
  group(): Group<R[][], []> {
    return new Group(this.app, chunksGroup(this.dict));
  }
}

function firstApp(canvases: readonly AnyCanvas[]): App | undefined {
  return canvases.find((c) => c.app)?.app;
}

/**
 * Run canvases in parallel.
 *
 * @example
 * const r = await group([add.s(1, 1), mul.s(2, 3)]).delay();
 * const [sum, product] = await r.get({ timeout: 10 });
 */
export function group<const T extends readonly AnyCanvas[]>(
  tasks: T,
): Group<ResultsOf<T>, MembersExpect<T>>;
export function group<const T extends readonly AnyCanvas[]>(
  ...tasks: T
): Group<ResultsOf<T>, MembersExpect<T>>;
export function group(...input: unknown[]): AnyCanvas {
  const tasks = (Array.isArray(input[0]) ? input[0] : input) as AnyCanvas[];
  return new Group(
    firstApp(tasks),
    signatureDict("celery.group", [], { tasks: tasks.map((t) => t.toDict()) }, {}, "group"),
  );
}

/**
 * Run steps one after another, each with the previous step's result prepended to its arguments
 * (unless it is immutable, `task.si(...)`). The chain's result is its last step's.
 *
 * @example
 * await chain(add.s(1, 2), add.s(10), add.si(100, 200)).delay(); // 300
 */
export function chain<const T extends readonly [AnyCanvas, ...AnyCanvas[]]>(
  ...steps: T & CheckChain<T>
): Chain<LastResult<T>, FirstExpects<T>, ExpectsHandle<T>> {
  const all = steps as unknown as AnyCanvas[];
  // Celery's `chain(a, b, c)` is `chain() | a | b | c`: the same upgrades as `pipe`.
  const dict = all.reduce((acc, step) => pipe(acc, step.toDict()), chainDict([]));
  return new Chain(firstApp(all), dict);
}

/** The handle a chain gives: its last step's. */
type ExpectsHandle<T extends readonly unknown[]> = T extends readonly [...unknown[], infer L]
  ? L extends Canvas<infer _R, infer _P, infer H>
    ? H
    : never
  : never;

/**
 * Run a header in parallel, then `callback` once with every header result, in order. The
 * worker that finishes the last header task sends it; no worker waits for the header.
 * If a header task fails, the callback does not run: it fails with a ChordError and its
 * errbacks (`callback.linkError(...)`) run. Needs a result backend with a chord counter
 * (Redis, or memory in tests).
 *
 * @example
 * await chord(ids.map((id) => fetch.s(id)), merge.s()).delay();
 */
export function chord<const T extends readonly AnyCanvas[], R, H>(
  header: T,
  callback: Canvas<R, [ResultsOf<NoInfer<T>>], H>,
): Chord<R, MembersExpect<T>, H>;
export function chord<GR extends unknown[], GP extends unknown[], R, H>(
  header: Group<GR, GP>,
  callback: Canvas<R, [GR], H>,
): Chord<R, GP, H>;
export function chord<CR, R, H>(
  header: Chunks<CR>,
  callback: Canvas<R, [CR[][]], H>,
): Chord<R, [], H>;
export function chord(header: readonly AnyCanvas[] | AnyCanvas, callback: AnyCanvas): AnyCanvas {
  const members: AnyCanvas = Array.isArray(header)
    ? group(header as readonly AnyCanvas[])
    : header instanceof Chunks
      ? header.group()
      : (header as AnyCanvas);
  return new Chord(members.app ?? callback.app, chordDict(members.toDict(), callback.toDict()));
}

/**
 * Celery's chunks: `argsList` cut into parts of `n`; each part is one task (`celery.starmap`)
 * that calls `task` once per argument tuple, in the worker that runs it, and returns their
 * results. Sent as a group; `.group()` gives it to a chord.
 *
 * @example
 * const parts = await chunks(add, pairs, 100).delay(); // GroupResult<number[][]>
 */
export function chunks<A extends unknown[], R>(
  // biome-ignore lint/suspicious/noExplicitAny: any keyword arguments.
  task: TaskClient<A, R, any>,
  argsList: Iterable<NoInfer<A>>,
  n: number,
): Chunks<R> {
  checkChunkSize(n);
  const it = [...argsList].map((args) => [...args]);
  const taskSig = signatureDict(task.name);
  return new Chunks(
    task.app,
    signatureDict(CHUNKS, [], { task: taskSig, it, n }, {}, "chunks", true),
  );
}

/**
 * A canvas from a signature dict (from a message, or built by Python), or a task by name with
 * arguments: how Python tasks join a chain.
 */
export function signatureFromDict(app: App | undefined, dict: SignatureDict): AnyCanvas {
  switch (dict.subtask_type) {
    case "chain":
      return new Chain(app, structuredClone(dict));
    case "group":
      return new Group(app, structuredClone(dict));
    case "chord":
      return new Chord(app, structuredClone(dict));
    case "chunks":
      return new Chunks(app, structuredClone(dict));
    default:
      return new Signature(app, structuredClone(dict));
  }
}

/** A signature for any task by name, typed by the caller (`R`). */
export function signatureByName<R = unknown>(
  app: App | undefined,
  name: string,
  args: readonly unknown[] = [],
  options: SendOptions & { immutable?: boolean } = {},
): Signature<R, unknown[]> {
  const { kwargs, immutable, ...rest } = options;
  return new Signature<R, unknown[]>(
    app,
    signatureDict(
      name,
      [...args],
      { ...(kwargs ?? {}) },
      signatureOptions(rest, { taskUnique: app?.registry.get(name)?.options.unique }),
      null,
      immutable ?? false,
    ),
  );
}
