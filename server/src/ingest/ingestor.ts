/**
 * Ingestion: the fleet's events -> folded batches -> one transaction each -> the pubsub.
 *
 * A batch is flushed when it holds `batchSize` changes or `flushMs` after its first event. While
 * a flush runs the next batch fills, up to four times `batchSize`, then the one after it: a busy
 * fleet gets batches of a size that writes well, not one that grows without end (its arrays and
 * rows cost more in memory, garbage collection and page faults than they save in round trips).
 * If the database is down the batches are kept and retried with backoff (on RabbitMQ the
 * deliveries stay unacked meanwhile, so nothing is lost even if the server dies). Only what this
 * instance actually changed is published, so several instances receiving the same events do not
 * publish them twice.
 */
import type { Broker, CeleryEvent } from "@celeriac/sdk";
import type { Logger } from "pino";
import type { Database } from "../db/database.js";
import type { PubSub } from "../pubsub/pubsub.js";
import { Batch } from "./batch.js";
import { type EventDelivery, openEventSource } from "./event-source.js";
import { type Written, writeBatch } from "./writer.js";

export interface IngestorOptions {
  queue: string;
  maxLength: number;
  batchSize: number;
  flushMs: number;
  /** Most events held while the database is away, on brokers that do not keep them. */
  maxHeld: number;
}

export interface IngestStats {
  /** Events received. */
  received: number;
  /** Task changes written (after folding). */
  written: number;
  flushes: number;
  /** Seconds between an event's timestamp and its commit, last batch. */
  lagSeconds: number;
  /** Events dropped: refused by the database, or beyond `maxHeld` while it was away. */
  dropped: number;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A batch with the deliveries it folds, to settle once it is written. */
interface Held {
  batch: Batch;
  deliveries: EventDelivery[];
  /** Timestamp of its oldest event (Unix seconds). */
  oldest: number;
}

export class Ingestor {
  readonly stats: IngestStats = { received: 0, written: 0, flushes: 0, lagSeconds: 0, dropped: 0 };
  private dropWarned = 0;
  private batch = new Batch();
  private pending: EventDelivery[] = [];
  private oldest = Number.POSITIVE_INFINITY;
  /** Batches filled up while a flush ran, oldest first. */
  private full: Held[] = [];
  private timer: NodeJS.Timeout | undefined;
  private flushing: Promise<void> | undefined;
  private stopSource: (() => Promise<void>) | undefined;
  private stopped = false;
  private readonly listeners = new Set<(written: Written) => void>();

  constructor(
    private readonly db: Database,
    private readonly broker: Broker,
    private readonly pubsub: PubSub,
    private readonly logger: Logger,
    private readonly options: IngestorOptions,
  ) {}

  async start(): Promise<void> {
    if (this.stopSource) return;
    this.stopped = false;
    this.stopSource = await openEventSource(
      this.broker,
      {
        queue: this.options.queue,
        maxLength: this.options.maxLength,
        prefetch: this.options.batchSize * 2,
      },
      (delivery) => {
        // Whatever an event holds, it must not escape into the broker's connection handler.
        try {
          this.receive(delivery);
        } catch (error) {
          this.logger.error(
            { err: error, events: delivery.events.slice(0, 3) },
            "unreadable events dropped",
          );
          this.stats.dropped += delivery.events.length;
          delivery.settle(true);
        }
      },
    );
  }

  /** Events handed in directly (tests, or a process that already holds them). */
  ingest(events: CeleryEvent[]): void {
    this.receive({ events, settle: () => {} });
  }

  /** Called with every committed batch (the stats service keeps live figures from it). */
  onWritten(listener: (written: Written) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  private receive(delivery: EventDelivery): void {
    this.stats.received += delivery.events.length;
    // Fire-and-forget brokers cannot be told to wait: while the database is away, keep at most
    // `maxHeld` events and drop the oldest deliveries beyond it (brokers that keep events, such
    // as RabbitMQ, stop delivering instead once the prefetch window is full).
    let held = this.batch.size;
    for (const h of this.full) held += h.batch.size;
    if (held >= this.options.maxHeld) {
      // Drop a tenth at once: rebuilding the batches costs as much as the events they hold.
      const deliveries = [...this.full.flatMap((h) => h.deliveries), ...this.pending];
      let dropped = 0;
      while (dropped < deliveries.length && held > this.options.maxHeld * 0.9) {
        const d = deliveries[dropped++]!;
        held -= d.events.length;
        this.stats.dropped += d.events.length;
        d.settle(true);
      }
      this.rebuild(deliveries.slice(dropped));
    }
    this.hold(delivery);
    if (this.batch.size >= this.options.batchSize || this.full.length > 0) this.kick();
    else this.timer ??= setTimeout(() => this.kick(), this.options.flushMs);
  }

  /** Adds a delivery's events to the batch being filled, setting it aside once full. */
  private hold(delivery: EventDelivery): void {
    for (const event of delivery.events) {
      this.batch.add(event);
      if (typeof event.timestamp === "number") this.oldest = Math.min(this.oldest, event.timestamp);
    }
    this.pending.push(delivery);
    if (this.batch.size >= this.options.batchSize * 4) this.full.push(this.take());
  }

  /** The batch being filled, and a new one in its place. */
  private take(): Held {
    const held = { batch: this.batch, deliveries: this.pending, oldest: this.oldest };
    this.batch = new Batch();
    this.pending = [];
    this.oldest = Number.POSITIVE_INFINITY;
    return held;
  }

  private kick(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    if (this.flushing) return; // the running flush picks up the next batch when it ends
    this.flushing = this.flushLoop().finally(() => {
      this.flushing = undefined;
      if ((this.batch.size > 0 || this.full.length > 0) && !this.stopped) this.kick();
    });
  }

  private async flushLoop(): Promise<void> {
    while (this.full.length > 0 || this.batch.size > 0) {
      const { batch, deliveries, oldest } = this.full.shift() ?? this.take();
      const outcome = await this.writeWithRetry(batch);
      if (outcome === "stopped") {
        for (const d of deliveries) d.settle(false);
        return;
      }
      if (outcome === "refused") {
        await this.writeOneByOne(deliveries);
        continue;
      }
      for (const d of deliveries) d.settle(true);
      this.stats.flushes++;
      this.stats.written += batch.tasks.size;
      if (Number.isFinite(oldest)) this.stats.lagSeconds = Date.now() / 1000 - oldest;
      this.committed(outcome);
    }
  }

  private committed(written: Written): void {
    this.publish(written);
    for (const listener of this.listeners) listener(written);
  }

  /**
   * The database refused the batch for what it holds (not for being away): write each delivery
   * on its own, so one bad event costs only its own message, which is logged and dropped.
   */
  private async writeOneByOne(deliveries: EventDelivery[]): Promise<void> {
    for (const delivery of deliveries) {
      const batch = new Batch();
      for (const event of delivery.events) batch.add(event);
      const outcome = await this.writeWithRetry(batch);
      if (outcome === "stopped") return delivery.settle(false);
      if (outcome === "refused") {
        this.stats.dropped += delivery.events.length;
        this.logger.error(
          { events: delivery.events.slice(0, 3) },
          "events the database refuses were dropped",
        );
      } else this.committed(outcome);
      delivery.settle(true);
    }
  }

  /**
   * Retry while the database is away; gives up when the ingestor stops, or at once when the
   * database refuses the data itself (SQLSTATE classes 22 and 23: bad values, violations).
   */
  private async writeWithRetry(batch: Batch): Promise<Written | "refused" | "stopped"> {
    let delay = 200;
    for (;;) {
      try {
        return await this.db.transaction((sql) => writeBatch(sql, batch));
      } catch (error) {
        if (/^2[23]/.test(String((error as { code?: unknown }).code ?? ""))) return "refused";
        if (this.stopped) return "stopped";
        this.logger.warn({ err: error, retryInMs: delay }, "could not write events; retrying");
        await sleep(delay);
        delay = Math.min(delay * 2, 5000);
      }
    }
  }

  private publish(written: Written): void {
    const tasks = new Map(written.tasks.map((t) => [t.id, t]));
    for (const event of written.timeline) {
      const task = tasks.get(event.taskId);
      if (task) this.pubsub.publish("task:event", { event, task });
    }
    // Only tasks with a new event: a row another instance already wrote is its to announce.
    const announced = new Set(written.timeline.map((e) => e.taskId));
    for (const task of written.tasks)
      if (announced.has(task.id)) this.pubsub.publish("task:updated", task);
    for (const { eventType, ...worker } of written.workers)
      this.pubsub.publish("worker:event", { type: eventType, worker });
    for (const log of written.logs) this.pubsub.publish("task:log", log);
  }

  /** The batches again from the deliveries still held (after dropping the oldest). */
  private rebuild(deliveries: EventDelivery[]): void {
    if (this.dropWarned++ === 0)
      this.logger.error(
        { maxHeld: this.options.maxHeld },
        "the database is away too long: dropping the oldest events",
      );
    this.full = [];
    this.take();
    for (const d of deliveries) this.hold(d);
  }

  /** Wait until everything received so far is written. */
  async drain(): Promise<void> {
    while (this.batch.size > 0 || this.full.length > 0 || this.flushing) {
      if (!this.flushing) this.kick();
      await this.flushing;
    }
  }

  async stop(): Promise<void> {
    await this.stopSource?.();
    this.stopSource = undefined;
    // Write what was received; a database that stays down must not hold shutdown forever.
    await Promise.race([this.drain(), sleep(5000)]);
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
  }
}
