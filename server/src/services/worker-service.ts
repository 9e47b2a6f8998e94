/**
 * Workers: who is in the fleet and whether each is alive (a heartbeat within twice its interval,
 * Celery's rule), and steering them over remote control. Every command is audited, and a command
 * addressed to named workers must reach them: one that reached nobody is an error, not an empty
 * success (see `checkAnswered`).
 */
import type { App, BroadcastOptions } from "@celeriac/sdk";
import type { Viewer } from "../auth/roles.js";
import type { Database } from "../db/database.js";
import { InvalidInputError, NotFoundError, UnavailableError } from "../errors.js";
import type { Worker } from "../generated/prisma/client.js";
import type { AuditLog } from "./audit.js";
import type { Redaction } from "./redaction.js";
import type { RegistryService } from "./registry-service.js";
import { flattenReplies, type WorkerReply } from "./replies.js";

/** Celery's HEARTBEAT_EXPIRE_WINDOW: alive until twice the heartbeat interval has passed. */
const EXPIRE_WINDOW = 2;

export function isOnline(
  worker: Pick<Worker, "offline" | "lastHeartbeat" | "freq">,
  now = Date.now(),
): boolean {
  if (worker.offline || !worker.lastHeartbeat) return false;
  return now < new Date(worker.lastHeartbeat).getTime() + worker.freq * EXPIRE_WINDOW * 1000;
}

const RATE = /^\d+(\.\d+)?(\/[smh])?$/;

export class WorkerService {
  constructor(
    private readonly db: Database,
    private readonly app: App,
    private readonly audit: AuditLog,
    private readonly redaction: Redaction,
    private readonly timeout: number,
    /** Asked again after a command that changes a worker's pool or queues, so reads show it. */
    private readonly registry?: Pick<RegistryService, "refresh">,
  ) {}

  async list(filter: { online?: boolean | null } = {}): Promise<Worker[]> {
    const workers = await this.db.prisma.worker.findMany({ orderBy: { hostname: "asc" } });
    if (filter.online == null) return workers;
    return workers.filter((w) => isOnline(w) === filter.online);
  }

  get(hostname: string): Promise<Worker | null> {
    return this.db.prisma.worker.findUnique({ where: { hostname } });
  }

  private options(destination?: string[] | null): BroadcastOptions {
    return {
      reply: true,
      timeout: this.timeout,
      ...(destination && destination.length > 0 ? { destination } : {}),
    };
  }

  private command(
    viewer: Viewer | null,
    action: string,
    input: Record<string, unknown>,
    send: () => Promise<Array<Record<string, unknown>>>,
    addressed: { destination?: string[] | null; answerless?: boolean; refresh?: boolean } = {},
  ): Promise<WorkerReply[]> {
    return this.audit.record(viewer, action, input, async () => {
      const replies = flattenReplies(await send());
      const checked = addressed.destination?.length
        ? await this.checkAnswered(addressed.destination, replies, addressed.answerless ?? false)
        : replies;
      // The worker's row (pool size, queues) is filled from the registry's questions, every 30 s
      // otherwise: a person who just grew a pool expects to see it grown.
      if (addressed.refresh && checked.some((r) => r.ok)) void this.registry?.refresh();
      return checked;
    });
  }

  /**
   * Workers a command named that did not answer. If none answered, the command failed: a node
   * name the control plane never heard of is NotFoundError (most often a typo), a known worker is
   * UnavailableError (offline, or too busy to answer within the timeout). If some answered, each
   * silent one is listed as not ok, so the caller sees who did not act. `answerless` commands
   * (`shutdown`: Celery's workers stop without answering it) succeed without an answer from a
   * worker that is online.
   */
  private async checkAnswered(
    destination: string[],
    replies: WorkerReply[],
    answerless: boolean,
  ): Promise<WorkerReply[]> {
    const answered = new Set(replies.map((r) => r.hostname));
    const silent = [...new Set(destination)].filter((h) => !answered.has(h));
    if (silent.length === 0) return replies;
    const known = new Map(
      (await this.db.prisma.worker.findMany({ where: { hostname: { in: silent } } })).map((w) => [
        w.hostname,
        w,
      ]),
    );
    const now = Date.now();
    const missing = silent.filter((h) => {
      const worker = known.get(h);
      return !(answerless && worker && isOnline(worker, now));
    });
    if (missing.length === 0) return replies;
    if (replies.length === 0) {
      const unknown = missing.find((h) => !known.has(h));
      if (unknown !== undefined) throw new NotFoundError("worker", unknown);
      throw new UnavailableError(this.silence(known.get(missing[0]!)!, now));
    }
    const listed = missing.map((hostname) => {
      const worker = known.get(hostname);
      return {
        hostname,
        ok: false,
        message: worker ? this.silence(worker, now) : `worker ${hostname} not found`,
        data: null,
      };
    });
    return [...replies, ...listed].sort((a, b) => a.hostname.localeCompare(b.hostname));
  }

  private silence(worker: Worker, now: number): string {
    if (isOnline(worker, now))
      return `worker ${worker.hostname} did not answer within ${this.timeout} s`;
    const last = worker.lastHeartbeat ? new Date(worker.lastHeartbeat).toISOString() : "never";
    return `worker ${worker.hostname} is offline (last heartbeat: ${last}) and did not answer`;
  }

  private static hostname(hostname: string): string {
    const trimmed = hostname.trim();
    if (!trimmed)
      throw new InvalidInputError("a worker's node name is required", [
        { path: ["hostname"], message: "a node name such as worker1@host" },
      ]);
    return trimmed;
  }

  /** Tasks running on a worker now (`inspect active`). */
  async active(hostname: string): Promise<unknown[]> {
    const replies = await this.app.control.inspect("active", this.options([hostname]));
    const list = replies.find((r) => hostname in r)?.[hostname];
    if (!Array.isArray(list)) return [];
    return list.map((entry) =>
      entry && typeof entry === "object"
        ? this.redaction.fields(
            [(entry as { name?: string }).name],
            entry as Record<string, unknown>,
          )
        : entry,
    );
  }

  ping(viewer: Viewer | null, destination?: string[] | null) {
    return this.command(
      viewer,
      "pingWorkers",
      { destination },
      () => this.app.control.ping(this.options(destination)),
      { destination },
    );
  }

  /**
   * Celery workers do not answer `shutdown` (they are gone); ours do. Either way the worker's
   * `worker-offline` event follows. An online worker that does not answer is taken to be one of
   * Celery's; an offline or unknown one is an error.
   */
  shutdown(viewer: Viewer | null, hostname: string) {
    return this.command(
      viewer,
      "shutdownWorker",
      { hostname },
      async () => this.app.control.shutdown(this.options([WorkerService.hostname(hostname)])),
      { destination: [hostname.trim()], answerless: true },
    );
  }

  growPool(viewer: Viewer | null, hostname: string, n: number) {
    return this.command(
      viewer,
      "growPool",
      { hostname, n },
      async () => {
        const node = WorkerService.hostname(hostname);
        positive(n);
        return this.app.control.poolGrow(n, this.options([node]));
      },
      { destination: [hostname.trim()], refresh: true },
    );
  }

  shrinkPool(viewer: Viewer | null, hostname: string, n: number) {
    return this.command(
      viewer,
      "shrinkPool",
      { hostname, n },
      async () => {
        const node = WorkerService.hostname(hostname);
        positive(n);
        return this.app.control.poolShrink(n, this.options([node]));
      },
      { destination: [hostname.trim()], refresh: true },
    );
  }

  addConsumer(viewer: Viewer | null, queue: string, destination?: string[] | null) {
    return this.command(
      viewer,
      "addConsumer",
      { queue, destination },
      async () => {
        if (!queue.trim()) throw new InvalidInputError("a queue name is required");
        return this.app.control.addConsumer(queue.trim(), this.options(destination));
      },
      { destination, refresh: true },
    );
  }

  cancelConsumer(viewer: Viewer | null, queue: string, destination?: string[] | null) {
    return this.command(
      viewer,
      "cancelConsumer",
      { queue, destination },
      async () => {
        if (!queue.trim()) throw new InvalidInputError("a queue name is required");
        return this.app.control.cancelConsumer(queue.trim(), this.options(destination));
      },
      { destination, refresh: true },
    );
  }

  /** A worker's own limit (Celery's), or with `global` the fleet-wide one our workers share. */
  setRateLimit(
    viewer: Viewer | null,
    taskName: string,
    rateLimit: string | null,
    destination?: string[] | null,
    global = false,
  ) {
    return this.command(
      viewer,
      "setRateLimit",
      { taskName, rateLimit, destination, ...(global ? { global } : {}) },
      async () => {
        if (rateLimit !== null && !RATE.test(rateLimit))
          throw new InvalidInputError(`invalid rate limit: ${rateLimit}`, [
            {
              path: ["rateLimit"],
              message: 'expected "10/s", "100/m", "1000/h" or a number per second',
            },
          ]);
        return this.app.control.rateLimit(taskName, rateLimit, {
          ...this.options(destination),
          global,
        });
      },
      { destination },
    );
  }

  setTimeLimit(
    viewer: Viewer | null,
    taskName: string,
    limits: { soft?: number | null; hard?: number | null },
    destination?: string[] | null,
  ) {
    return this.command(
      viewer,
      "setTimeLimit",
      { taskName, ...limits, destination },
      async () => {
        for (const [key, value] of Object.entries(limits))
          if (value != null && !(value > 0))
            throw new InvalidInputError(`${key} must be positive`, [
              { path: [key], message: "must be > 0" },
            ]);
        return this.app.control.timeLimit(taskName, limits, this.options(destination));
      },
      { destination },
    );
  }
}

function positive(n: number): void {
  if (!Number.isInteger(n) || n < 1)
    throw new InvalidInputError("n must be a positive integer", [
      { path: ["n"], message: "at least 1" },
    ]);
}
