/**
 * The in-memory result backend: results inside this process, for tests and dev mode. Backends
 * built with the same URL share their store, like the memory broker.
 */
import { memoryName } from "../../brokers/url.js";
import { CeleriacError } from "../../errors.js";
import { dumps } from "../../protocol/json.js";
import { READY_STATES, TaskState } from "../../protocol/states.js";
import type {
  BackendCapabilities,
  ChordCount,
  ChordCounter,
  ChordPart,
  GroupMeta,
  ResultBackend,
  ResultMeta,
  WaitOptions,
} from "../backend.js";

/** A chord's counter, as the Redis backend keeps it in `.s`, `.t` and the `.j` sorted set. */
interface Chord {
  size: number | null;
  extra: number;
  /** Parts by their encoded value (a re-run that stores the same part counts once, as in a zset). */
  parts: Map<string, { score: number; part: ChordPart }>;
}

interface Store {
  results: Map<string, ResultMeta>;
  waiters: Map<string, Set<(meta: ResultMeta) => void>>;
  groups: Map<string, GroupMeta>;
  chords: Map<string, Chord>;
}

const stores = new Map<string, Store>();

export class MemoryBackend implements ResultBackend, ChordCounter {
  readonly capabilities: BackendCapabilities = {
    notifies: true,
    distributed: false,
    chords: true,
  };
  readonly displayUrl: string;
  private readonly shared: Store;

  constructor(url = "memory://") {
    const { name, displayUrl } = memoryName(url);
    this.displayUrl = displayUrl;
    let store = stores.get(name);
    if (!store) {
      store = { results: new Map(), waiters: new Map(), groups: new Map(), chords: new Map() };
      stores.set(name, store);
    }
    this.shared = store;
  }

  async connect() {}
  async close() {}

  async store(meta: ResultMeta): Promise<void> {
    if (this.shared.results.get(meta.task_id)?.status === TaskState.SUCCESS) return;
    this.shared.results.set(meta.task_id, structuredClone(meta));
    if (READY_STATES.has(meta.status)) {
      for (const w of this.shared.waiters.get(meta.task_id) ?? []) w(meta);
    }
  }

  async get(taskId: string): Promise<ResultMeta | null> {
    const meta = this.shared.results.get(taskId);
    return meta ? structuredClone(meta) : null;
  }

  waitForReady(taskId: string, options: WaitOptions = {}): Promise<ResultMeta> {
    const existing = this.shared.results.get(taskId);
    if (existing && READY_STATES.has(existing.status))
      return Promise.resolve(structuredClone(existing));
    return new Promise((resolve, reject) => {
      const waiters = this.shared.waiters.get(taskId) ?? new Set();
      this.shared.waiters.set(taskId, waiters);
      let timer: NodeJS.Timeout | undefined;
      const done = () => {
        waiters.delete(onReady);
        if (waiters.size === 0) this.shared.waiters.delete(taskId);
        if (timer) clearTimeout(timer);
        options.signal?.removeEventListener("abort", onAbort);
      };
      const onReady = (meta: ResultMeta) => {
        done();
        resolve(structuredClone(meta));
      };
      const onAbort = () => {
        done();
        reject(options.signal?.reason ?? new CeleriacError("TIMEOUT", "aborted"));
      };
      waiters.add(onReady);
      if (options.timeout !== undefined) {
        timer = setTimeout(() => {
          done();
          reject(
            new CeleriacError("TIMEOUT", `task ${taskId} not ready after ${options.timeout} ms`),
          );
        }, options.timeout);
      }
      options.signal?.addEventListener("abort", onAbort, { once: true });
    });
  }

  async forget(taskId: string): Promise<void> {
    this.shared.results.delete(taskId);
  }

  async saveGroup(groupId: string, meta: GroupMeta): Promise<void> {
    this.shared.groups.set(groupId, structuredClone(meta));
  }

  async restoreGroup(groupId: string): Promise<GroupMeta | null> {
    const meta = this.shared.groups.get(groupId);
    return meta ? structuredClone(meta) : null;
  }

  async deleteGroup(groupId: string): Promise<void> {
    this.shared.groups.delete(groupId);
  }

  private chord(groupId: string): Chord {
    let chord = this.shared.chords.get(groupId);
    if (!chord) {
      chord = { size: null, extra: 0, parts: new Map() };
      this.shared.chords.set(groupId, chord);
    }
    return chord;
  }

  async setChordSize(groupId: string, size: number): Promise<void> {
    this.chord(groupId).size = size;
  }

  async addChordPart(
    groupId: string,
    groupIndex: number | null,
    part: ChordPart,
  ): Promise<ChordCount> {
    const chord = this.chord(groupId);
    chord.parts.set(dumps(part), {
      score: groupIndex ?? Number.POSITIVE_INFINITY,
      part: structuredClone(part),
    });
    return { readyCount: chord.parts.size, size: chord.size, extra: chord.extra };
  }

  async chordParts(groupId: string): Promise<ChordPart[]> {
    const parts = [...(this.shared.chords.get(groupId)?.parts ?? new Map()).entries()];
    // A sorted set's order: by score, then by member.
    parts.sort(([ka, a], [kb, b]) => a.score - b.score || (ka < kb ? -1 : ka > kb ? 1 : 0));
    return parts.map(([, { part }]) => structuredClone(part));
  }

  async clearChord(groupId: string): Promise<void> {
    this.shared.chords.delete(groupId);
  }
}
