/**
 * The producer side of a task: `delay` and `applyAsync`, typed by the task's definition.
 */
import type { App } from "../app.js";
import { signatureDict } from "../canvas/apply.js";
import { type Chunks, chunks, Signature, type SignatureOptions } from "../canvas/canvas.js";
import { signatureOptions } from "../canvas/signature-dict.js";
import type { Prefix, Suffixes } from "../canvas/types.js";
import type { Kwargs, TaskDefinition } from "../task.js";
import type { AsyncResult } from "./async-result.js";
import type { SendOptions } from "./options.js";

export class TaskClient<A extends unknown[] = unknown[], R = unknown, K extends Kwargs = Kwargs> {
  constructor(
    readonly app: App,
    readonly definition: TaskDefinition<A, R, K>,
  ) {}

  get name(): string {
    return this.definition.name;
  }

  /** Send the task with positional arguments and the task's default options. */
  delay(...args: A): Promise<AsyncResult<R>> {
    return this.applyAsync(args);
  }

  /** Send the task with arguments and per-call options. */
  applyAsync(args: A, options: SendOptions<K> = {}): Promise<AsyncResult<R>> {
    return this.app.send<R>(this.definition, args, options);
  }

  /**
   * A signature of this task: arguments given now, the rest (the first ones) given by the step
   * before it in a chain, which prepends its result.
   *
   * @example
   * chain(add.s(2, 3), add.s(10)); // add(add(2, 3), 10)
   */
  s<G extends Suffixes<A>>(...args: G): Signature<R, Prefix<A, G>> {
    return this.signature(args);
  }

  /** An immutable signature: all arguments given now; the step before's result is ignored. */
  si(...args: A): Signature<R, unknown[]> {
    return new Signature(this.app, signatureDict(this.name, [...args], {}, {}, null, true));
  }

  /** A signature with keyword arguments and options (`add.signature([2, 3], { countdown: 10 })`). */
  signature<G extends Suffixes<A>>(
    args: G,
    options: SignatureOptions & { kwargs?: Partial<K> } = {},
  ): Signature<R, Prefix<A, G>> {
    const { kwargs, ...rest } = options;
    return new Signature(
      this.app,
      signatureDict(this.name, [...args], { ...(kwargs ?? {}) }, signatureOptions(rest)),
    );
  }

  /** Celery's `task.chunks(it, n)`: see `chunks()`. */
  chunks(argsList: Iterable<A>, n: number): Chunks<R> {
    return chunks(this, argsList, n);
  }
}
