/**
 * The result backend interface: where a task's outcome is stored for `AsyncResult.get()`.
 * Values are Celery's result metadata, so Python clients read ours and we read theirs.
 */
import { READY_STATES } from "../protocol/states.js";

/** Celery's stored result, with its field names (`celery-task-meta-<id>` on Redis). */
export interface ResultMeta {
  status: string;
  result: unknown;
  traceback: string | null;
  children: unknown[];
  date_done: string | null;
  group_id?: string | null;
  parent_id?: string | null;
  /** With extended results (`resultExtended`). */
  name?: string | null;
  args?: unknown[] | null;
  kwargs?: Record<string, unknown> | null;
  worker?: string | null;
  retries?: number | null;
  queue?: string | null;
  task_id: string;
}

/** Python's naive `datetime.utcnow().isoformat()`, as Celery 5.2 writes `date_done`. */
export function utcnowIso(now = new Date()): string {
  return `${now.toISOString().slice(0, 23)}000`;
}

/** What a stored result says besides its state and value: where the task belongs, who ran it. */
export interface MetaContext {
  groupId?: string | null;
  parentId?: string | null;
  /** Extended results (`resultExtended`): name, args, kwargs, worker, retries, queue. */
  extended?: Pick<ResultMeta, "name" | "args" | "kwargs" | "worker" | "retries" | "queue">;
}

/**
 * A stored result with Celery's keys in Celery's order (`status`, `result`, `traceback`,
 * `children`, `date_done`, `group_id`, `parent_id`, the extended fields, `task_id`), so stored
 * JSON reads the same whoever wrote it. `date_done` is set for ready states only.
 */
export function resultMeta(
  taskId: string,
  status: string,
  result: unknown,
  traceback: string | null,
  context: MetaContext = {},
): ResultMeta {
  return {
    status,
    result,
    traceback,
    children: [],
    date_done: READY_STATES.has(status) ? utcnowIso() : null,
    ...(context.groupId ? { group_id: context.groupId } : {}),
    ...(context.parentId ? { parent_id: context.parentId } : {}),
    ...context.extended,
    task_id: taskId,
  };
}

export interface WaitOptions {
  /** Milliseconds; rejects with a TIMEOUT CeleriacError after it. Default: wait forever. */
  timeout?: number;
  signal?: AbortSignal;
}

export interface BackendCapabilities {
  /** Readers are notified of new results (no polling). */
  readonly notifies: boolean;
  /** Results are visible to other processes. */
  readonly distributed: boolean;
  /** Supports the chord counter used for chords. */
  readonly chords: boolean;
}

/** One finished chord header task as Celery records it: `[1, task_id, state, encoded result]`. */
export type ChordPart = [1, string, string, unknown];

/** What the chord counter says after a header task finished. */
export interface ChordCount {
  /** Header tasks finished so far (this one included). */
  readyCount: number;
  /** The chord size set by the client (`.s`), or null when not set (yet). */
  size: number | null;
  /** Tasks added to the header while it ran (`.t`, Celery's `add_to_chord`). */
  extra: number;
}

/**
 * Group results saved by `GroupResult.save()`, Celery's `celery-taskset-meta-<id>` value: the
 * group's result tuple `[[group_id, null], [[[task_id, null], null], …]]`.
 */
export interface GroupMeta {
  result: unknown;
}

/**
 * The chord counter, on backends whose `capabilities.chords` is true. A chord's header tasks each
 * add their result; the one that completes the count sends the chord's callback.
 */
export interface ChordCounter {
  /** Set by the client before the header runs. */
  setChordSize(groupId: string, size: number): Promise<void>;
  /** Record one finished header task (at its `group_index`, or at the end when null) and count. */
  addChordPart(groupId: string, groupIndex: number | null, part: ChordPart): Promise<ChordCount>;
  /** Every recorded part, in `group_index` order. */
  chordParts(groupId: string): Promise<ChordPart[]>;
  /** Forget the chord's bookkeeping once its callback is sent. */
  clearChord(groupId: string): Promise<void>;
}

export interface ResultBackend extends Partial<ChordCounter> {
  readonly displayUrl: string;
  readonly capabilities: BackendCapabilities;
  connect(): Promise<void>;
  close(): Promise<void>;
  /**
   * Store a task's state. Does nothing when the stored state is already SUCCESS (Celery's rule,
   * so a redelivered task that ran twice cannot overwrite its first success).
   */
  store(meta: ResultMeta): Promise<void>;
  /** The stored metadata, or null when nothing is stored (PENDING). */
  get(taskId: string): Promise<ResultMeta | null>;
  /** Resolve when the task reaches a ready state (SUCCESS, FAILURE, REVOKED). */
  waitForReady(taskId: string, options?: WaitOptions): Promise<ResultMeta>;
  /** Delete the stored result. */
  forget(taskId: string): Promise<void>;
  /** Save a group's member ids (`GroupResult.save()`). */
  saveGroup?(groupId: string, meta: GroupMeta): Promise<void>;
  /** A saved group, or null. */
  restoreGroup?(groupId: string): Promise<GroupMeta | null>;
  deleteGroup?(groupId: string): Promise<void>;
}
