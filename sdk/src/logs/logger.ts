/**
 * A worker's logger: one pino logger writing to standard output, to the app's own destinations
 * (files, syslog, …) and, when shipping is on, to the broker, each at its own level, with secrets
 * redacted before any of them sees a record.
 */
import {
  type DestinationStream,
  type Logger,
  type LoggerOptions,
  levels,
  multistream,
  pino,
  type StreamEntry,
} from "pino";
import type { LamportClock } from "../clock.js";
import { CeleriacError } from "../errors.js";
import type { LogLevel } from "./event.js";
import { LogShipper } from "./shipper.js";

const SECRETS = [
  "password",
  "secret",
  "token",
  "accessToken",
  "refreshToken",
  "apiKey",
  "api_key",
  "authorization",
  "cookie",
];

/** Secret-looking fields at the top of a record and one level down (`{ headers: { authorization } }`). */
export const DEFAULT_REDACT: string[] = [...SECRETS, ...SECRETS.map((s) => `*.${s}`)];

export interface WorkerLoggingSetup {
  hostname: string;
  /** Level of standard output, and of destinations without one. */
  level: string;
  destinations: Array<DestinationStream | StreamEntry>;
  redact: NonNullable<LoggerOptions["redact"]>;
  /** Ship records at this level and above to the broker; null: do not ship. */
  ship: LogLevel | null;
  clock: LamportClock;
}

export interface WorkerLogging {
  logger: Logger;
  /** Set when shipping: start it once the broker is connected, close it last. */
  shipper: LogShipper | null;
}

function levelValue(level: string | number | undefined, fallback: string): number {
  if (typeof level === "number") return level;
  const label = level ?? fallback;
  if (label === "silent") return Number.POSITIVE_INFINITY;
  const value = levels.values[label];
  if (value === undefined)
    throw new CeleriacError("INVALID_OPTION", `unknown log level ${JSON.stringify(label)}`);
  return value;
}

/** A destination and the least severe level it takes, as a number (pino's multistream accepts both). */
interface Dest {
  stream: DestinationStream;
  level: number;
}

function dest(d: DestinationStream | StreamEntry, fallback: string): Dest | null {
  const isEntry = typeof (d as StreamEntry | null)?.stream?.write === "function";
  if (!isEntry && typeof (d as DestinationStream | null)?.write !== "function")
    throw new CeleriacError(
      "INVALID_OPTION",
      "logDestinations: each must be a writable stream or { stream, level }",
    );
  const stream = isEntry ? (d as StreamEntry).stream : (d as DestinationStream);
  const level = levelValue(isEntry ? (d as StreamEntry).level : undefined, fallback);
  // A silent destination takes nothing: leaving it out keeps the logger's level honest.
  return Number.isFinite(level) ? { stream, level } : null;
}

/** The time of a record relayed from a pool child, while it is being logged again (see `logAt`). */
let relayedTime: number | undefined;

/** pino's epoch time, or the relayed record's own. */
const timestamp = () => `,"time":${relayedTime ?? Date.now()}`;

/**
 * Log with `log()` as if at `time` (Unix ms): a record written in a pool child keeps the time it
 * was written at when the worker's logger writes it again. Only the worker's own logger (built
 * here) honours it; a logger given in the worker's options stamps its own time.
 */
export function logAt<T>(time: number | undefined, log: () => T): T {
  relayedTime = time;
  try {
    return log();
  } finally {
    relayedTime = undefined;
  }
}

function logger(hostname: string, redact: WorkerLoggingSetup["redact"], dests: Dest[]): Logger {
  const min = Math.min(...dests.map((d) => d.level));
  return pino(
    {
      level: Number.isFinite(min) ? (levels.labels[min] ?? "info") : "silent",
      base: { worker: hostname },
      redact,
      timestamp,
    },
    multistream(dests as unknown as StreamEntry[]),
  );
}

/** The least severe of two levels: what a pool child must send up so the worker loses nothing. */
export function lowerLevel(a: string, b: string | null | undefined): string {
  if (!b) return a;
  return levelValue(b, "info") < levelValue(a, "info") ? b : a;
}

/**
 * Check the app's `logDestinations` (each a writable stream, or `{ stream, level }` with a known
 * level), where the app is built rather than when a worker starts.
 */
export function validateLogDestinations(destinations: unknown): void {
  if (!Array.isArray(destinations))
    throw new CeleriacError("INVALID_OPTION", "logDestinations must be an array");
  for (const d of destinations) dest(d as DestinationStream | StreamEntry, "info");
}

export function createWorkerLogging(setup: WorkerLoggingSetup): WorkerLogging {
  const dests: Dest[] = [];
  const stdout = setup.level === "silent" ? [] : [pino.destination(1)];
  for (const d of [...stdout, ...setup.destinations]) {
    const e = dest(d, setup.level);
    if (e) dests.push(e);
  }
  if (!setup.ship) return { logger: logger(setup.hostname, setup.redact, dests), shipper: null };
  // The shipper reports its own trouble through a logger that does not ship, so it cannot feed itself.
  const shipper = new LogShipper({
    hostname: setup.hostname,
    clock: setup.clock,
    logger: logger(setup.hostname, setup.redact, dests),
  });
  const all = [...dests, { stream: shipper, level: levelValue(setup.ship, "info") }];
  return { logger: logger(setup.hostname, setup.redact, all), shipper };
}
