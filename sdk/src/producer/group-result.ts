/**
 * A handle on the results of a group: every member's AsyncResult, in the group's order, read
 * together (`completedCount()`, `ready()`, `get()` …). Saved and restored by id in Celery's
 * `celery-taskset-meta-<id>` format, so Python's `GroupResult.restore(id)` reads ours and back.
 */
import type { GroupMeta, ResultBackend } from "../backends/backend.js";
import { CeleriacError } from "../errors.js";
import { AsyncResult, type BackendSource, type GetOptions } from "./async-result.js";

/** Either kind of result a canvas returns: one task's, or a group's. */
export type ResultHandle = AsyncResult<unknown> | GroupResult<unknown[]>;

/** Celery's result tuple: `[[id, parent], null]` for a task, `[[id, parent], [members…]]` for a group. */
export type ResultTuple = [[string, unknown], ResultTuple[] | null];

async function resolve(source: BackendSource): Promise<ResultBackend> {
  const backend = typeof source === "function" ? await source() : source;
  if (!backend)
    throw new CeleriacError(
      "NO_BACKEND",
      "no result backend is configured: set resultBackend (or RESULT_BACKEND) to read results",
    );
  return backend;
}

export class GroupResult<R extends unknown[] = unknown[]> {
  /** Each member's result, in the group's order. */
  readonly results: { readonly [K in keyof R]: AsyncResult<R[K]> };

  constructor(
    readonly id: string,
    results: readonly ResultHandle[],
    private readonly backend: BackendSource,
  ) {
    this.results = [...results] as unknown as { readonly [K in keyof R]: AsyncResult<R[K]> };
  }

  private get members(): readonly ResultHandle[] {
    return this.results as unknown as readonly ResultHandle[];
  }

  get length(): number {
    return this.members.length;
  }

  /** How many members succeeded. */
  async completedCount(): Promise<number> {
    const done = await Promise.all(this.members.map((r) => r.successful()));
    return done.filter(Boolean).length;
  }

  /** True when every member is ready (succeeded, failed or revoked). */
  async ready(): Promise<boolean> {
    return (await Promise.all(this.members.map((r) => r.ready()))).every(Boolean);
  }

  /** True when every member succeeded. */
  async successful(): Promise<boolean> {
    return (await Promise.all(this.members.map((r) => r.successful()))).every(Boolean);
  }

  /** True when any member failed. */
  async failed(): Promise<boolean> {
    return (await Promise.all(this.members.map((r) => r.failed()))).some(Boolean);
  }

  /** True when any member is not ready yet. */
  async waiting(): Promise<boolean> {
    return !(await this.ready());
  }

  /** The members' results in order, waiting for them; the same as `join()`. */
  get(options: GetOptions = {}): Promise<R> {
    return this.join(options);
  }

  /**
   * Wait for every member and return their results in the group's order. As in Celery, the
   * first failure in that order is re-thrown (unless `propagate: false`, which returns the
   * errors in place); `timeout` bounds the whole wait.
   */
  async join(options: GetOptions = {}): Promise<R> {
    const stop = new AbortController();
    const signal = options.signal ? AbortSignal.any([options.signal, stop.signal]) : stop.signal;
    // All wait at once; the results are taken in order, so the first failure in order is thrown
    // and the waits still pending are stopped.
    const waits = this.members.map((r) => r.get({ ...options, signal }));
    for (const w of waits) w.catch(() => {});
    const values: unknown[] = [];
    try {
      for (const w of waits) values.push(await w);
    } finally {
      stop.abort();
    }
    return values as R;
  }

  /** Celery's `as_tuple()`: how a group is saved and embedded. */
  asTuple(): ResultTuple {
    return [
      [this.id, null],
      this.members.map((r) => (r instanceof GroupResult ? r.asTuple() : [[r.id, null], null])),
    ];
  }

  /** Save the member ids under the group's id, for `GroupResult.restore(id, app)` anywhere. */
  async save(): Promise<this> {
    const backend = await resolve(this.backend);
    if (!backend.saveGroup)
      throw new CeleriacError(
        "BACKEND_ERROR",
        `the result backend ${backend.displayUrl} cannot save groups`,
      );
    await backend.saveGroup(this.id, { result: this.asTuple() });
    return this;
  }

  /** Delete the saved group (the members' results stay). */
  async delete(): Promise<void> {
    await (await resolve(this.backend)).deleteGroup?.(this.id);
  }

  /** Delete the saved group and every member's result. */
  async forget(): Promise<void> {
    await Promise.all([this.delete(), ...this.members.map((r) => r.forget())]);
  }

  /**
   * A group saved by `save()` (here or by Python's `GroupResult.save()`), or null when none is
   * saved under that id. `from` is the app (or backend) whose result backend holds it.
   */
  static async restore<R extends unknown[] = unknown[]>(
    id: string,
    from: AppLike | BackendSource,
  ): Promise<GroupResult<R> | null> {
    const source: BackendSource =
      from && typeof from === "object" && !("capabilities" in from)
        ? async () => (await from.connect()).backend
        : (from as BackendSource);
    const backend = await resolve(source);
    const meta: GroupMeta | null = (await backend.restoreGroup?.(id)) ?? null;
    if (!meta) return null;
    const restored = fromTuple(meta.result, backend);
    return restored instanceof GroupResult ? (restored as GroupResult<R>) : null;
  }
}

/** An app, as far as restoring needs one: something that connects to a result backend. */
interface AppLike {
  connect(): Promise<{ backend: ResultBackend | null }>;
}

/** Celery's `result_from_tuple`. */
export function fromTuple(tuple: unknown, backend: BackendSource): ResultHandle | null {
  if (!Array.isArray(tuple) || !Array.isArray(tuple[0])) return null;
  const id = String(tuple[0][0]);
  const children = tuple[1];
  if (Array.isArray(children)) {
    const members = children
      .map((c) => fromTuple(c, backend))
      .filter((m): m is ResultHandle => m !== null);
    return new GroupResult(id, members, backend);
  }
  return new AsyncResult(id, backend);
}
