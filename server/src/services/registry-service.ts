/**
 * What the fleet can run: each worker's registered tasks (with argument schemas from ours), its
 * queues and its pool size, asked over remote control (`registered`, `active_queues`, `stats`)
 * every so often, whenever a worker comes online, and when a live worker has not answered yet (a
 * busy worker may miss the first question's timeout). Python workers answer with names only.
 * A refresh that changes what the fleet can run is published (`registry:changed`).
 */
import type { App } from "@celeriac/sdk";
import type { Logger } from "pino";
import type { Database } from "../db/database.js";
import { Prisma } from "../generated/prisma/client.js";
import type { PubSub } from "../pubsub/pubsub.js";

export interface RegisteredTaskView {
  name: string;
  workers: string[];
  argsSchema: unknown;
  rateLimit: string | null;
}

/** Celery's `registered` items: `"tasks.add"` or `"tasks.add [rate_limit=10/s]"`, or ours with a schema. */
function parseRegistered(
  item: unknown,
): { name: string; schema: unknown; rateLimit: string | null } | null {
  if (typeof item === "string") {
    const [name = "", info = ""] = item.split(/ \[(.*)\]$/);
    const rate = /rate_limit=(\S+)/.exec(info)?.[1] ?? null;
    return name ? { name, schema: null, rateLimit: rate } : null;
  }
  if (item && typeof item === "object" && typeof (item as { name?: unknown }).name === "string") {
    const o = item as { name: string; schema?: unknown; rate_limit?: unknown };
    return {
      name: o.name,
      schema: o.schema ?? null,
      rateLimit: typeof o.rate_limit === "string" ? o.rate_limit : null,
    };
  }
  return null;
}

const FORGET_AFTER_MS = 86_400_000;
/** How often a live worker that has not answered is asked again. */
const REASK_SILENT_MS = 10_000;

export class RegistryService {
  private timer: NodeJS.Timeout | undefined;
  private refreshing: Promise<void> | undefined;
  private next: Promise<void> | undefined;
  private soon: NodeJS.Timeout | undefined;
  /** Each worker's last answer (as JSON): a different one changes the registry. */
  private readonly answered = new Map<string, string>();
  /** When each live worker that has not answered was last asked. */
  private readonly asked = new Map<string, number>();

  constructor(
    private readonly db: Database,
    private readonly app: App,
    private readonly pubsub: PubSub,
    private readonly logger: Logger,
    private readonly timeout: number,
  ) {}

  start(intervalMs = 30_000): void {
    if (this.timer) return;
    this.timer = setInterval(() => void this.refresh(), intervalMs);
    this.timer.unref();
    void this.refresh();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    if (this.soon) clearTimeout(this.soon);
    this.timer = undefined;
    this.soon = undefined;
  }

  /** A worker came online: ask it soon (several at once are asked together). */
  workerOnline(): void {
    this.askSoon();
  }

  /** Workers were seen alive (heartbeats): ask again soon if one of them has not answered yet. */
  workersSeen(hostnames: Iterable<string>): void {
    const now = Date.now();
    let silent = false;
    for (const hostname of hostnames) {
      if (this.answered.has(hostname)) continue;
      if (now - (this.asked.get(hostname) ?? 0) < REASK_SILENT_MS) continue;
      this.asked.set(hostname, now);
      silent = true;
    }
    if (silent) this.askSoon();
  }

  private askSoon(): void {
    if (!this.timer || this.soon) return;
    this.soon = setTimeout(() => {
      this.soon = undefined;
      void this.refresh();
    }, 500);
  }

  /**
   * Ask every worker. A call made while a refresh runs gets the next one, which starts when the
   * running one ends (a worker that just started may have missed the running one's question).
   */
  refresh(): Promise<void> {
    if (this.refreshing) {
      this.next ??= this.refreshing.then(() => {
        this.next = undefined;
        return this.refresh();
      });
      return this.next;
    }
    this.refreshing = this.ask()
      .catch((error) => this.logger.warn({ err: error }, "could not refresh the task registry"))
      .finally(() => {
        this.refreshing = undefined;
      });
    return this.refreshing;
  }

  private async ask(): Promise<void> {
    const options = { timeout: this.timeout };
    const [registered, queues, stats] = await Promise.all([
      this.app.control.inspect("registered", options, { taskinfoitems: ["schema", "rate_limit"] }),
      this.app.control.inspect("active_queues", options),
      this.app.control.inspect("stats", options),
    ]);
    const now = new Date();
    // Workers gone for a day are forgotten; one that answers again is back at once.
    const forgotten = await this.db.prisma.registeredTask.deleteMany({
      where: { updatedAt: { lt: new Date(now.getTime() - FORGET_AFTER_MS) } },
    });
    const changed: string[] = [];
    for (const reply of registered) {
      for (const [worker, items] of Object.entries(reply)) {
        if (!Array.isArray(items)) continue;
        const tasks = items.map(parseRegistered).filter((t) => t !== null);
        const answer = JSON.stringify(tasks);
        if (this.answered.get(worker) !== answer) changed.push(worker);
        this.answered.set(worker, answer);
        this.asked.delete(worker);
        await this.db.prisma.$transaction([
          this.db.prisma.registeredTask.deleteMany({ where: { worker } }),
          this.db.prisma.registeredTask.createMany({
            data: tasks.map((t) => ({
              name: t.name,
              worker,
              argsSchema: (t.schema ?? undefined) as Prisma.InputJsonValue | undefined,
              rateLimit: t.rateLimit,
              updatedAt: now,
            })),
            skipDuplicates: true,
          }),
        ]);
      }
    }
    if (changed.length || forgotten.count)
      this.pubsub.publish("registry:changed", { workers: changed });
    const facts = new Map<string, { queues?: string[]; concurrency?: number }>();
    for (const reply of queues)
      for (const [worker, list] of Object.entries(reply))
        if (Array.isArray(list))
          facts.set(worker, {
            queues: list.map((q) => String((q as { name?: unknown }).name ?? "")).filter(Boolean),
          });
    for (const reply of stats)
      for (const [worker, s] of Object.entries(reply)) {
        const pool = (s as { pool?: { "max-concurrency"?: unknown } } | null)?.pool;
        const concurrency = pool?.["max-concurrency"];
        if (typeof concurrency === "number")
          facts.set(worker, { ...facts.get(worker), concurrency });
      }
    for (const [hostname, f] of facts)
      await this.db.prisma.worker.upsert({
        where: { hostname },
        create: { hostname, ...f, lastHeartbeat: now },
        update: f,
      });
  }

  async list(): Promise<RegisteredTaskView[]> {
    const rows = await this.db.prisma.registeredTask.findMany({ orderBy: [{ name: "asc" }] });
    const byName = new Map<string, RegisteredTaskView>();
    for (const row of rows) {
      const view = byName.get(row.name) ?? {
        name: row.name,
        workers: [],
        argsSchema: null,
        rateLimit: null,
      };
      view.workers.push(row.worker);
      view.argsSchema ??= row.argsSchema;
      view.rateLimit ??= row.rateLimit;
      byName.set(row.name, view);
    }
    return [...byName.values()];
  }

  /** The argument schema a worker declared for the task, if any did. */
  async argsSchema(name: string): Promise<unknown> {
    const row = await this.db.prisma.registeredTask.findFirst({
      where: { name, argsSchema: { not: Prisma.DbNull } },
      // The newest answer wins: an old worker's schema must not judge today's arguments.
      orderBy: { updatedAt: "desc" },
    });
    return row?.argsSchema ?? null;
  }
}
