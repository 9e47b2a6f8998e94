/**
 * Ships a worker's log records to the broker as `celeriac-log` events: a pino destination that
 * turns each record into an event, buffers, and publishes batches (one JSON array a message) on
 * a short timer, one publish at a time. Logging never waits for the broker and never fails: when
 * the broker is slow or down, records past the buffer's bounds (a number of records, and their
 * size) are dropped and counted, and the next batch says how many.
 */
import type { DestinationStream, Logger } from "pino";
import { type Broker, EVENT_EXCHANGE } from "../brokers/broker.js";
import type { LamportClock } from "../clock.js";
import { type CeleryEvent, encodeEvents, utcoffset } from "../events/event.js";
import { LOG_EVENT_TYPE, LOG_ROUTING_KEY, logEventFields, type PinoRecord } from "./event.js";

export interface ShipperOptions {
  hostname: string;
  clock: LamportClock;
  /** Where the shipper reports its own trouble: a logger that does not ship, or it would feed itself. */
  logger: Logger;
  /** Milliseconds a record may wait for its batch. Default: 100. */
  flushMs?: number;
  /** Records in one message at most. Default: 200. */
  batchSize?: number;
  /** Records held while the broker is slow or away; newer ones are dropped. Default: 10,000. */
  maxBuffered?: number;
  /**
   * Bytes of records (as pino wrote them) held while the broker is slow or away; newer ones are
   * dropped. Default: 16 MiB.
   */
  maxBufferedBytes?: number;
}

interface Buffered {
  event: CeleryEvent;
  /** The size of the record as written (UTF-16 code units, close enough to bytes). */
  size: number;
}

/** How often the shipper may complain about its broker. */
const WARN_EVERY_MS = 30_000;

export class LogShipper implements DestinationStream {
  private buffer: Buffered[] = [];
  private bytes = 0;
  private broker: Broker | undefined;
  private declared: Promise<void> | undefined;
  private timer: NodeJS.Timeout | undefined;
  private inFlight: Promise<void> | undefined;
  private dropped = 0;
  private closed = false;
  private lastWarning = 0;
  private readonly flushMs: number;
  private readonly batchSize: number;
  private readonly maxBuffered: number;
  private readonly maxBufferedBytes: number;

  constructor(private readonly options: ShipperOptions) {
    this.flushMs = options.flushMs ?? 100;
    this.batchSize = options.batchSize ?? 200;
    this.maxBuffered = options.maxBuffered ?? 10_000;
    this.maxBufferedBytes = options.maxBufferedBytes ?? 16 * 1024 * 1024;
  }

  /** Records held now (for tests and stats). */
  get buffered(): number {
    return this.buffer.length;
  }

  /** The size of the records held now (for tests and stats). */
  get bufferedBytes(): number {
    return this.bytes;
  }

  /** Begin publishing to a connected broker; records written before are held until then. */
  start(broker: Broker): void {
    this.broker = broker;
    if (this.buffer.length) this.flush();
  }

  /** pino calls this with each serialized record (one JSON line), synchronously. */
  write(line: string): void {
    if (this.closed) return;
    let record: PinoRecord;
    try {
      record = JSON.parse(line) as PinoRecord;
    } catch {
      return;
    }
    if (
      this.buffer.length >= this.maxBuffered ||
      this.bytes + line.length > this.maxBufferedBytes
    ) {
      this.dropped++;
      return;
    }
    this.bytes += line.length;
    this.buffer.push({ event: this.event(logEventFields(record), record.time), size: line.length });
    if (this.buffer.length >= this.batchSize) this.flush();
    else this.schedule();
  }

  private event(fields: Record<string, unknown>, time: number | undefined): CeleryEvent {
    return {
      hostname: this.options.hostname,
      utcoffset: utcoffset(),
      pid: process.pid,
      clock: this.options.clock.forward(),
      ...fields,
      // When the record was written: batches wait a little before they are sent.
      timestamp: (time ?? Date.now()) / 1000,
      type: LOG_EVENT_TYPE,
    };
  }

  private schedule(): void {
    if (this.timer || !this.broker) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.flush();
    }, this.flushMs);
    this.timer.unref();
  }

  /** Send what is buffered, unless a publish is under way (it sends the rest when it ends). */
  flush(): void {
    if (this.timer) {
      clearTimeout(this.timer);
      this.timer = undefined;
    }
    const broker = this.broker;
    if (!broker || this.inFlight || (this.buffer.length === 0 && this.dropped === 0)) return;
    const taken = this.buffer.splice(0, this.batchSize);
    for (const b of taken) this.bytes -= b.size;
    const batch = taken.map((b) => b.event);
    if (this.dropped > 0) {
      batch.push(
        this.event(
          logEventFields({
            level: 40,
            msg: `${this.dropped} log records were dropped: the broker did not take them fast enough`,
            dropped: this.dropped,
          }),
          Date.now(),
        ),
      );
      this.dropped = 0;
    }
    this.inFlight = this.publish(broker, batch)
      .catch((error: unknown) => this.warn(error, batch.length))
      .finally(() => {
        this.inFlight = undefined;
        if (this.buffer.length >= this.batchSize || (this.closed && this.buffer.length))
          this.flush();
        else if (this.buffer.length) this.schedule();
      });
  }

  private async publish(broker: Broker, batch: CeleryEvent[]): Promise<void> {
    this.declared ??= broker.declareExchange(EVENT_EXCHANGE).catch((error: unknown) => {
      this.declared = undefined;
      throw error;
    });
    await this.declared;
    await broker.publish(encodeEvents(batch, this.options.hostname), {
      exchange: EVENT_EXCHANGE.name,
      routingKey: LOG_ROUTING_KEY,
    });
  }

  private warn(error: unknown, lost: number): void {
    const now = Date.now();
    if (now - this.lastWarning < WARN_EVERY_MS) return;
    this.lastWarning = now;
    this.options.logger.warn({ err: error, lost }, "could not ship log records to the broker");
  }

  /** Send what is left, waiting at most `timeoutMs`; later records are not shipped. */
  async close(timeoutMs = 2000): Promise<void> {
    this.closed = true;
    const deadline = Date.now() + timeoutMs;
    let timer: NodeJS.Timeout | undefined;
    const expired = new Promise<void>((resolve) => {
      timer = setTimeout(resolve, timeoutMs);
      timer.unref();
    });
    try {
      while ((this.buffer.length || this.inFlight) && this.broker && Date.now() < deadline) {
        this.flush();
        await Promise.race([this.inFlight, expired]);
      }
    } finally {
      clearTimeout(timer);
      if (this.timer) clearTimeout(this.timer);
      this.buffer = [];
      this.bytes = 0;
    }
  }
}
