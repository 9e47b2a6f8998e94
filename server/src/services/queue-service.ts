/**
 * Queues: depth read from the broker, consumers from the broker where it knows (RabbitMQ) or
 * from the workers that said they consume the queue (Redis). Known queues are the default one,
 * those workers consume, and those tasks were seen on.
 */
import type { App } from "@celeriac/sdk";
import type { Viewer } from "../auth/roles.js";
import type { Database } from "../db/database.js";
import { NotFoundError } from "../errors.js";
import type { Worker } from "../generated/prisma/client.js";
import type { AuditLog } from "./audit.js";
import { isOnline } from "./worker-service.js";

export interface QueueView {
  name: string;
  /** Messages waiting; null when the broker does not know the queue. */
  messages: number | null;
  consumers: number | null;
  /** Online workers consuming it. */
  workers: string[];
}

export class QueueService {
  private readonly seen = new Set<string>();

  constructor(
    private readonly db: Database,
    private readonly app: App,
    private readonly audit: AuditLog,
  ) {}

  /** Ingestion tells which queues tasks travel on. */
  saw(queue: string | null | undefined): void {
    if (queue) this.seen.add(queue);
  }

  private async known(): Promise<{ names: Set<string>; workers: Worker[] }> {
    const workers = (await this.db.prisma.worker.findMany()).filter((w) => isOnline(w));
    const names = new Set([this.app.options.defaultQueue, ...this.seen]);
    for (const w of workers) for (const q of w.queues) names.add(q);
    return { names, workers };
  }

  async list(): Promise<QueueView[]> {
    const { names, workers } = await this.known();
    const broker = (await this.app.connect()).broker;
    return Promise.all(
      [...names].sort().map(async (name) => {
        const info = await broker.inspectQueue(name).catch(() => null);
        const consumers = workers.filter((w) => w.queues.includes(name)).map((w) => w.hostname);
        return {
          name,
          messages: info?.messages ?? null,
          consumers: info?.consumers ?? consumers.length,
          workers: consumers,
        };
      }),
    );
  }

  /** Remove every waiting message of a queue; returns how many. */
  purge(viewer: Viewer | null, name: string): Promise<number> {
    return this.audit.record(viewer, "purgeQueue", { name }, async () => {
      const broker = (await this.app.connect()).broker;
      const info = await broker.inspectQueue(name);
      // Redis has no queues, only lists, and an empty list is no list: a queue there is known
      // by its messages, or by a worker consuming it or a task seen on it. Without any of
      // these, the name is most likely a typo, and "0 purged" would hide it.
      const unknownOnRedis =
        info?.consumers === null && info.messages === 0 && !(await this.known()).names.has(name);
      if (!info || unknownOnRedis) throw new NotFoundError("queue", name);
      return broker.purge(name);
    });
  }
}
