/**
 * The fleet as seen through its events, with Celery's rules: a task's state only moves forward
 * by precedence (a late `task-started` after `task-succeeded` changes nothing), and a worker is
 * alive while a heartbeat arrived within twice its heartbeat interval.
 */
import { EventEmitter } from "node:events";
import { isStateAdvance, TaskState } from "../protocol/states.js";
import type { CeleryEvent } from "./event.js";

/** Celery's HEARTBEAT_EXPIRE_WINDOW: alive until 200 % of the interval has passed. */
const EXPIRE_WINDOW = 2;
const KEPT_HEARTBEATS = 4;

const STATE_OF_EVENT: Record<string, string> = {
  "task-sent": TaskState.PENDING,
  "task-received": TaskState.RECEIVED,
  "task-started": TaskState.STARTED,
  "task-succeeded": TaskState.SUCCESS,
  "task-failed": TaskState.FAILURE,
  "task-retried": TaskState.RETRY,
  "task-revoked": TaskState.REVOKED,
  "task-rejected": TaskState.REJECTED,
};

export interface TaskSnapshot {
  uuid: string;
  state: string;
  name?: string;
  hostname?: string;
  /** Fields merged from every event seen (args, kwargs, result, exception, runtime, ...). */
  fields: Record<string, unknown>;
  /** Unix seconds of each event type seen. */
  timestamps: Record<string, number>;
}

export interface WorkerSnapshot {
  hostname: string;
  pid?: number;
  freq: number;
  active: number;
  processed: number;
  loadavg?: number[];
  swIdent?: string;
  swVer?: string;
  /** Local receive times (unix seconds) of the last heartbeats, newest last. */
  heartbeats: number[];
}

export interface StateEventMap {
  task: [TaskSnapshot, CeleryEvent];
  worker: [WorkerSnapshot, CeleryEvent];
}

export class ClusterState extends EventEmitter<StateEventMap> {
  readonly tasks = new Map<string, TaskSnapshot>();
  readonly workers = new Map<string, WorkerSnapshot>();

  constructor(private readonly now: () => number = () => Date.now() / 1000) {
    super();
  }

  /** Apply one event. */
  apply(event: CeleryEvent): void {
    if (event.type.startsWith("task-")) this.applyTask(event);
    else if (event.type.startsWith("worker-")) this.applyWorker(event);
  }

  private applyTask(event: CeleryEvent): void {
    const uuid = event.uuid;
    if (typeof uuid !== "string") return;
    let task = this.tasks.get(uuid);
    if (!task) {
      task = { uuid, state: TaskState.PENDING, fields: {}, timestamps: {} };
      this.tasks.set(uuid, task);
    }
    const {
      type,
      hostname,
      timestamp,
      utcoffset: _u,
      pid: _p,
      clock: _c,
      local_received: _l,
      uuid: _id,
      ...fields
    } = event;
    task.timestamps[type] = typeof timestamp === "number" ? timestamp : this.now();
    const next = STATE_OF_EVENT[type];
    // A later state always wins; an earlier one only adds fields it did not have (Celery's merge).
    if (next && isStateAdvance(task.state, next)) {
      task.state = next;
      Object.assign(task.fields, fields);
      if (type !== "task-sent") task.hostname = hostname;
    } else {
      for (const [k, v] of Object.entries(fields)) if (!(k in task.fields)) task.fields[k] = v;
    }
    if (typeof fields.name === "string") task.name = fields.name;
    this.emit("task", task, event);
  }

  private applyWorker(event: CeleryEvent): void {
    const hostname = event.hostname;
    let worker = this.workers.get(hostname);
    if (!worker) {
      worker = { hostname, freq: 2, active: 0, processed: 0, heartbeats: [] };
      this.workers.set(hostname, worker);
    }
    if (typeof event.pid === "number") worker.pid = event.pid;
    if (typeof event.freq === "number") worker.freq = event.freq;
    if (typeof event.active === "number") worker.active = event.active;
    if (typeof event.processed === "number") worker.processed = event.processed;
    if (Array.isArray(event.loadavg)) worker.loadavg = event.loadavg as number[];
    if (typeof event.sw_ident === "string") worker.swIdent = event.sw_ident;
    if (typeof event.sw_ver === "string") worker.swVer = event.sw_ver;
    if (event.type === "worker-offline") worker.heartbeats = [];
    else {
      worker.heartbeats.push(event.local_received ?? this.now());
      if (worker.heartbeats.length > KEPT_HEARTBEATS) worker.heartbeats.shift();
    }
    this.emit("worker", worker, event);
  }

  /** Alive while a heartbeat arrived within `freq × 2` seconds; never after `worker-offline`. */
  isAlive(hostname: string, now = this.now()): boolean {
    const w = this.workers.get(hostname);
    const last = w?.heartbeats[w.heartbeats.length - 1];
    return w !== undefined && last !== undefined && now < last + w.freq * EXPIRE_WINDOW;
  }

  aliveWorkers(now = this.now()): WorkerSnapshot[] {
    return [...this.workers.values()].filter((w) => this.isAlive(w.hostname, now));
  }
}
