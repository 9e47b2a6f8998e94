/** Options of one send (`applyAsync`, `sendTask`). */
import type { UniqueOptions } from "../locks/options.js";
import type { SignatureDict } from "../protocol/message.js";
import type { Kwargs } from "../task.js";

/** Anything that becomes a signature dict: a plain dict or a canvas Signature. */
export type SignatureLike = SignatureDict | { toDict(): SignatureDict };

export interface SendOptions<K extends Kwargs = Kwargs> {
  kwargs?: K;
  /** Seconds from now before the task may run (becomes an absolute `eta`). */
  countdown?: number;
  /** The earliest time the task may run. */
  eta?: Date | string;
  /** Seconds from now, or a time, after which the task is discarded unstarted. */
  expires?: number | Date | string;
  /** 0-9. On AMQP higher runs first; on Redis lower runs first (kombu's priority steps). */
  priority?: number;
  /** The queue; default: the task's queue, else the app's default queue. */
  queue?: string;
  /** Extra message headers, readable in the task as `ctx.headers`. */
  headers?: Record<string, unknown>;
  /** Use this id instead of a new UUID. */
  taskId?: string;
  /** Hard time limit for this call, seconds. */
  timeLimit?: number;
  /** Soft time limit for this call, seconds. */
  softTimeLimit?: number;
  /** Store no result for this call. */
  ignoreResult?: boolean;
  /** Tasks to send with this task's result prepended to their args, when it succeeds. */
  link?: SignatureLike | SignatureLike[];
  /** Tasks to send with this task's id when it fails. */
  linkError?: SignatureLike | SignatureLike[];
  /** Another name for logs and monitors. */
  shadow?: string;
  /**
   * Run this call as a unique task (`false`: not unique even if the task is). Its fields are
   * merged over the task's own `unique` rule (when this producer knows the task): a field left
   * out keeps the task's value. Travels in the `celeriac_unique` header; a function `by` runs
   * here, in the producer. In a signature (`.set({ unique })`, `app.signature`), `by` must be
   * "name" or "args": a function cannot travel with it.
   */
  unique?: UniqueOptions | boolean;
}

/** Workflow fields set by the worker and the canvas, not by users directly. */
export interface InternalSendOptions<K extends Kwargs = Kwargs> extends SendOptions<K> {
  retries?: number;
  parentId?: string | null;
  rootId?: string | null;
  groupId?: string | null;
  groupIndex?: number | null;
  chain?: SignatureDict[] | null;
  chord?: SignatureDict | null;
  /** Route of the retry: back to the exchange and routing key the task came from. */
  exchange?: string;
  routingKey?: string;
}
