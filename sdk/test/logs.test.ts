/**
 * Log shipping on the in-memory broker: what reaches a LogReceiver, its filters, redaction, and a
 * shipper that holds a bounded number of records while it has no broker to send them to.
 */
import { randomUUID } from "node:crypto";
import { pino } from "pino";
import { afterEach, describe, expect, it } from "vitest";
import { LamportClock } from "../src/clock.js";
import {
  createApp,
  createWorker,
  LogReceiver,
  type LogRecord,
  MemoryBroker,
} from "../src/index.js";
import { createWorkerLogging } from "../src/logs/logger.js";
import { relayRecord } from "../src/logs/relay.js";
import { LogShipper } from "../src/logs/shipper.js";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until(check: () => boolean, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error("condition not met in time");
    await sleep(10);
  }
}

describe("log shipping", () => {
  const cleanups: Array<() => Promise<void>> = [];
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c();
  });

  async function receiver(
    broker: MemoryBroker,
    options: ConstructorParameters<typeof LogReceiver>[1],
  ) {
    const records: LogRecord[] = [];
    const r = new LogReceiver(broker, options);
    r.on("log", (rec) => records.push(rec));
    await r.start();
    cleanups.push(() => r.stop());
    return records;
  }

  it("filters by task and level, and redacts the paths the app names", async () => {
    const url = `memory://logs-${randomUUID()}`;
    const app = createApp({ broker: url, resultBackend: url, logRedact: ["data.card"] });
    const pay = app.task("t.pay", (ctx, card: string) => {
      ctx.logger.info({ data: { card } }, "charging");
      ctx.logger.error({ code: 402 }, "declined");
    });
    const worker = await createWorker(app, { logLevel: "silent", shipLogs: "debug" });
    await worker.start();
    cleanups.push(() => app.close());
    cleanups.push(() => worker.stop());
    const broker = app.connected.broker as MemoryBroker;
    const first = await pay.delay("4242");
    const all = await receiver(broker, {});
    const errors = await receiver(broker, { level: "error" });
    const second = await pay.delay("1111");
    const onlySecond = await receiver(broker, { taskId: second.id });
    await Promise.all([first.get({ timeout: 5 }), second.get({ timeout: 5 })]);
    const third = await pay.delay("0000");
    await third.get({ timeout: 5 });
    await until(() => errors.length >= 2 && onlySecond.some((r) => r.msg === "declined"));
    expect(errors.every((r) => r.level === "error" || r.level === "fatal")).toBe(true);
    expect(onlySecond.every((r) => r.taskId === second.id)).toBe(true);
    expect(all.find((r) => r.msg === "charging")?.data).toEqual({ data: { card: "[Redacted]" } });
  });

  it("never waits for the broker: holds a bounded number of records, then says how many it dropped", async () => {
    const broker = new MemoryBroker(`memory://shipper-${randomUUID()}`);
    const shipper = new LogShipper({
      hostname: "w@test",
      clock: new LamportClock(),
      logger: pino({ level: "silent" }),
      maxBuffered: 100,
    });
    const logger = pino({ level: "info" }, shipper);
    const started = performance.now();
    for (let i = 0; i < 5000; i++) logger.info({ i }, "before the broker is there");
    expect(performance.now() - started).toBeLessThan(1000);
    expect(shipper.buffered).toBe(100);

    const records = await receiver(broker, {});
    await broker.connect();
    shipper.start(broker);
    await until(() => records.some((r) => r.level === "warn"));
    expect(records.filter((r) => r.level === "info")).toHaveLength(100);
    expect(records.find((r) => r.level === "warn")).toMatchObject({
      msg: "4900 log records were dropped: the broker did not take them fast enough",
      data: { dropped: 4900 },
    });
    await shipper.close();
    logger.info("after close");
    await sleep(50);
    expect(records.some((r) => r.msg === "after close")).toBe(false);
    await broker.close();
  });

  it("bounds the records it holds by their size too", async () => {
    const shipper = new LogShipper({
      hostname: "w@test",
      clock: new LamportClock(),
      logger: pino({ level: "silent" }),
      maxBufferedBytes: 64 * 1024,
    });
    const logger = pino({ level: "info" }, shipper);
    const big = "x".repeat(1024);
    for (let i = 0; i < 1000; i++) logger.info({ big }, "large record");
    // About a KiB each: 64 KiB hold some 60 of them, not the 1000 the count bound would let in.
    expect(shipper.buffered).toBeGreaterThan(30);
    expect(shipper.buffered).toBeLessThan(64);
    expect(shipper.bufferedBytes).toBeLessThanOrEqual(64 * 1024);
    await shipper.close();
  });

  it("keeps the time a pool child wrote a record at, when relaying it", async () => {
    const lines: Array<Record<string, unknown>> = [];
    const { logger, shipper } = createWorkerLogging({
      hostname: "w@test",
      level: "silent",
      destinations: [
        { stream: { write: (l: string) => void lines.push(JSON.parse(l)) }, level: "info" },
      ],
      redact: [],
      ship: "info",
      clock: new LamportClock(),
    });
    const written = Date.now() - 60_000;
    relayRecord(logger, JSON.stringify({ level: 30, time: written, pid: 7, msg: "in the child" }));
    logger.info("in the worker");
    expect(lines[0]).toMatchObject({ msg: "in the child", time: written, pid: 7 });
    expect(lines[1]!.time).toBeGreaterThan(written);
    const broker = new MemoryBroker(`memory://relay-${randomUUID()}`);
    const records = await receiver(broker, {});
    await broker.connect();
    shipper!.start(broker);
    await until(() => records.length === 2);
    expect(records[0]).toMatchObject({ msg: "in the child" });
    expect(records[0]!.time.getTime()).toBe(written);
    await shipper!.close();
    await broker.close();
  });

  it("checks logDestinations when the app is built", () => {
    expect(() => createApp({ logDestinations: [{} as never] })).toThrow(/logDestinations/);
    expect(() =>
      createApp({ logDestinations: [{ stream: { write() {} }, level: "loud" as "info" }] }),
    ).toThrow(/loud/);
    expect(() =>
      createApp({ logDestinations: [{ stream: { write() {} }, level: "warn" }] }),
    ).not.toThrow();
  });

  it("refuses to ship through a logger the worker does not own", async () => {
    const app = createApp();
    await expect(
      createWorker(app, { logger: pino({ level: "silent" }), shipLogs: true }),
    ).rejects.toMatchObject({ code: "INVALID_OPTION" });
    await expect(createWorker(app, { shipLogs: "loud" as "info" })).rejects.toMatchObject({
      code: "INVALID_OPTION",
    });
  });
});
