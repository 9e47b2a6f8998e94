/**
 * The Redis result backend, as Celery's: `celery-task-meta-<id>` values written with SETEX and
 * announced with PUBLISH on a channel of the same name, so `get()` waits on pub/sub instead of
 * polling. A stored SUCCESS is never overwritten (a task redelivered after running keeps its
 * first result), checked and written in one script.
 */
import { Redis, type RedisOptions } from "ioredis";
import { redact } from "../../brokers/url.js";
import { CeleriacError } from "../../errors.js";
import { dumps, loads } from "../../protocol/json.js";
import { READY_STATES } from "../../protocol/states.js";
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

export interface RedisBackendOptions {
  /** Seconds results are kept; 0 keeps them forever. Default: 86400 (Celery's `result_expires`). */
  resultExpires: number;
  /** Key prefix. Default: "celery-task-meta-". */
  keyprefix: string;
  /** Key prefix of saved groups and chord counters. Default: "celery-taskset-meta-". */
  groupKeyprefix: string;
}

/** KEYS: result keys. ARGV: expiry seconds, then one value per key. Skips keys already SUCCESS. */
const STORE = `
local expires = tonumber(ARGV[1])
local written = 0
for i, key in ipairs(KEYS) do
  local value = ARGV[i + 1]
  local current = redis.call('GET', key)
  local done = false
  if current then
    local ok, meta = pcall(cjson.decode, current)
    done = (ok and type(meta) == 'table' and meta.status == 'SUCCESS') or ((not ok) and string.find(current, '"status": "SUCCESS"', 1, true) ~= nil)
  end
  if not done then
    if expires > 0 then redis.call('SETEX', key, expires, value) else redis.call('SET', key, value) end
    redis.call('PUBLISH', key, value)
    written = written + 1
  end
end
return written
`;

type Scripted = Redis & {
  celeriacStore(key: string, value: string, expires: number): Promise<number>;
};

export class RedisBackend implements ResultBackend, ChordCounter {
  readonly capabilities: BackendCapabilities = { notifies: true, distributed: true, chords: true };
  readonly displayUrl: string;
  readonly options: RedisBackendOptions;
  private readonly connection: RedisOptions;
  private cmd: Scripted | undefined;
  private sub: Redis | undefined;
  private pendingStores: Array<[string, string]> = [];
  private storeFlush: Promise<void> | undefined;
  /** Waiters by channel (= key), all served by one subscriber connection. */
  private readonly waiters = new Map<string, Set<(meta: ResultMeta) => void>>();

  constructor(
    private readonly url: string,
    options: Partial<RedisBackendOptions> = {},
  ) {
    const u = new URL(url);
    this.options = {
      resultExpires: 86_400,
      keyprefix: "celery-task-meta-",
      groupKeyprefix: "celery-taskset-meta-",
      ...options,
    };
    if (!(this.options.resultExpires >= 0))
      throw new CeleriacError("INVALID_OPTION", "resultExpires must be >= 0 seconds");
    const db = Number(u.pathname.replace(/^\//, "") || 0);
    this.displayUrl = redact(
      `${u.protocol}//${u.username || u.password ? `${u.username}:${u.password}@` : ""}${u.host}/${db}`,
    );
    this.connection = {
      host: u.hostname || "127.0.0.1",
      port: Number(u.port || 6379),
      db,
      ...(u.username ? { username: decodeURIComponent(u.username) } : {}),
      ...(u.password ? { password: decodeURIComponent(u.password) } : {}),
      ...(u.protocol === "rediss:" ? { tls: {} } : {}),
      lazyConnect: true,
      maxRetriesPerRequest: null,
      retryStrategy: (times) => Math.min(100 * 2 ** Math.min(times, 5), 2000),
    };
  }

  /** @internal The URL it was built with (password included): other stores share this Redis. */
  get redisUrl(): string {
    return this.url;
  }

  private key(taskId: string): string {
    return this.options.keyprefix + taskId;
  }

  private client(role: string): Redis {
    const c = new Redis({
      ...this.connection,
      connectionName: `celeriac:backend-${role}`,
    });
    c.on("error", () => {});
    return c;
  }

  async connect(): Promise<void> {
    if (this.cmd) return;
    const cmd = this.client("cmd") as Scripted;
    cmd.defineCommand("celeriacStore", { lua: STORE });
    this.cmd = cmd;
    await cmd.connect();
  }

  private get redis(): Scripted {
    if (!this.cmd) throw new CeleriacError("BACKEND_ERROR", "the result backend is not connected");
    return this.cmd;
  }

  async close(): Promise<void> {
    const cmd = this.cmd;
    this.cmd = undefined;
    this.sub?.disconnect();
    this.sub = undefined;
    this.waiters.clear();
    await cmd?.quit().catch(() => cmd.disconnect());
  }

  /**
   * Stores are coalesced: every result of one turn of the event loop is written by one script
   * call, each still checked against a stored SUCCESS and announced on its own channel.
   */
  store(meta: ResultMeta): Promise<void> {
    const redis = this.redis;
    this.pendingStores.push([this.key(meta.task_id), dumps(meta)]);
    this.storeFlush ??= new Promise<void>((resolve, reject) => {
      setImmediate(() => {
        const batch = this.pendingStores;
        this.pendingStores = [];
        this.storeFlush = undefined;
        const args: Array<string | number> = [
          batch.length,
          ...batch.map(([k]) => k),
          this.options.resultExpires,
          ...batch.map(([, v]) => v),
        ];
        (Reflect.apply(redis.celeriacStore, redis, args) as Promise<number>).then(
          () => resolve(),
          reject,
        );
      });
    });
    return this.storeFlush;
  }

  async get(taskId: string): Promise<ResultMeta | null> {
    const text = await this.redis.get(this.key(taskId));
    return text === null ? null : (loads(text) as ResultMeta);
  }

  private subscriber(): Redis {
    if (!this.sub) {
      const sub = this.client("sub");
      sub.on("message", (channel: string, text: string) => {
        const set = this.waiters.get(channel);
        if (!set) return;
        let meta: ResultMeta;
        try {
          meta = loads(text) as ResultMeta;
        } catch {
          return;
        }
        if (READY_STATES.has(meta.status)) for (const w of [...set]) w(meta);
      });
      // After a reconnection a notification may have been missed: read every awaited key again.
      sub.on("ready", () => {
        for (const channel of this.waiters.keys()) {
          void this.cmd?.get(channel).then(
            (text) => {
              if (text === null) return;
              const meta = loads(text) as ResultMeta;
              if (READY_STATES.has(meta.status))
                for (const w of [...(this.waiters.get(channel) ?? [])]) w(meta);
            },
            () => {},
          );
        }
      });
      this.sub = sub;
    }
    return this.sub;
  }

  async waitForReady(taskId: string, options: WaitOptions = {}): Promise<ResultMeta> {
    const channel = this.key(taskId);
    const sub = this.subscriber();
    let set = this.waiters.get(channel);
    const first = !set;
    if (!set) {
      set = new Set();
      this.waiters.set(channel, set);
    }
    let cleanup = () => {};
    const result = new Promise<ResultMeta>((resolve, reject) => {
      let timer: NodeJS.Timeout | undefined;
      const onReady = (meta: ResultMeta) => {
        cleanup();
        resolve(meta);
      };
      const onAbort = () => {
        cleanup();
        reject(options.signal?.reason ?? new CeleriacError("TIMEOUT", "aborted"));
      };
      cleanup = () => {
        if (timer) clearTimeout(timer);
        options.signal?.removeEventListener("abort", onAbort);
        const s = this.waiters.get(channel);
        s?.delete(onReady);
        if (s && s.size === 0) {
          this.waiters.delete(channel);
          void this.sub?.unsubscribe(channel).catch(() => {});
        }
      };
      set.add(onReady);
      if (options.timeout !== undefined) {
        timer = setTimeout(() => {
          cleanup();
          reject(
            new CeleriacError("TIMEOUT", `task ${taskId} not ready after ${options.timeout} ms`),
          );
        }, options.timeout);
      }
      options.signal?.addEventListener("abort", onAbort, { once: true });
    });
    try {
      // Subscribe first, then read: a result stored in between is seen by one or the other.
      if (first) await sub.subscribe(channel);
      const meta = await this.get(taskId);
      if (meta && READY_STATES.has(meta.status)) {
        cleanup();
        return meta;
      }
    } catch (error) {
      cleanup();
      throw error;
    }
    return result;
  }

  async forget(taskId: string): Promise<void> {
    await this.redis.del(this.key(taskId));
  }

  private groupKey(groupId: string, suffix = ""): string {
    return `${this.options.groupKeyprefix}${groupId}${suffix}`;
  }

  /** Celery's `set`: SETEX (or SET) and PUBLISH on the key's channel, in one transaction. */
  private async setAndPublish(key: string, value: string): Promise<void> {
    const expires = this.options.resultExpires;
    const tx = this.redis.multi();
    if (expires > 0) tx.setex(key, expires, value);
    else tx.set(key, value);
    await tx.publish(key, value).exec();
  }

  async saveGroup(groupId: string, meta: GroupMeta): Promise<void> {
    await this.setAndPublish(this.groupKey(groupId), dumps(meta));
  }

  async restoreGroup(groupId: string): Promise<GroupMeta | null> {
    const text = await this.redis.get(this.groupKey(groupId));
    return text === null ? null : (loads(text) as GroupMeta);
  }

  async deleteGroup(groupId: string): Promise<void> {
    await this.redis.del(this.groupKey(groupId));
  }

  async setChordSize(groupId: string, size: number): Promise<void> {
    await this.setAndPublish(this.groupKey(groupId, ".s"), String(size));
  }

  /**
   * Celery's `on_chord_part_return` transaction, command for command: ZADD the part at its
   * group_index, count the parts, read the extra count and the size, refresh the expiries. Two
   * header tasks finishing at once each see a distinct count, so exactly one sees the last.
   */
  async addChordPart(
    groupId: string,
    groupIndex: number | null,
    part: ChordPart,
  ): Promise<ChordCount> {
    const [j, t, s] = [".j", ".t", ".s"].map((suffix) => this.groupKey(groupId, suffix)) as [
      string,
      string,
      string,
    ];
    const tx = this.redis
      .multi()
      .zadd(j, groupIndex ?? "+inf", dumps(part))
      .zcount(j, "-inf", "+inf")
      .get(t)
      .get(s);
    const expires = this.options.resultExpires;
    if (expires > 0) tx.expire(j, expires).expire(t, expires).expire(s, expires);
    const replies = (await tx.exec()) ?? [];
    const failed = replies.find(([error]) => error);
    if (failed?.[0])
      throw new CeleriacError("BACKEND_ERROR", `chord counter: ${failed[0].message}`, {
        cause: failed[0],
      });
    const [, readyCount, extra, size] = replies.map(([, value]) => value) as [
      unknown,
      number,
      string | null,
      string | null,
    ];
    return {
      readyCount: Number(readyCount),
      size: size === null ? null : Number(size),
      extra: Number(extra ?? 0),
    };
  }

  async chordParts(groupId: string): Promise<ChordPart[]> {
    const members = await this.redis.zrange(this.groupKey(groupId, ".j"), "0", "-1");
    return members.map((m) => loads(m) as ChordPart);
  }

  async clearChord(groupId: string): Promise<void> {
    const [j, t, s] = [".j", ".t", ".s"].map((suffix) => this.groupKey(groupId, suffix)) as [
      string,
      string,
      string,
    ];
    await this.redis.multi().del(j).del(t).del(s).exec();
  }
}
