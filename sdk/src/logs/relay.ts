/**
 * Log records of pool children (threads, processes) go through the worker's logger, so they reach
 * the same output, destinations and shipping as the rest: the child serializes each record and
 * sends it up; the worker logs it again, keeping the child's fields.
 */
import { type DestinationStream, type Logger, levels } from "pino";
import { logAt } from "./logger.js";

/** A destination that hands each serialized record to `send` (the channel to the worker). */
export function forwardingStream(send: (line: string) => void): DestinationStream {
  return {
    write(line: string) {
      try {
        send(line);
      } catch {
        // The worker is gone (the child is about to exit): a lost record must not fail the task.
      }
    },
  };
}

type LevelMethod = "trace" | "debug" | "info" | "warn" | "error" | "fatal";

/** Log a record serialized by a child through the worker's logger, at the time it was written. */
export function relayRecord(logger: Logger, line: string): void {
  let record: Record<string, unknown>;
  try {
    record = JSON.parse(line) as Record<string, unknown>;
  } catch {
    return;
  }
  const { level, time, msg, ...fields } = record;
  const label = (typeof level === "number" ? levels.labels[level] : undefined) as
    | LevelMethod
    | undefined;
  const method = label && typeof logger[label] === "function" ? label : "info";
  logAt(typeof time === "number" && Number.isFinite(time) ? time : undefined, () =>
    logger[method](fields, typeof msg === "string" ? msg : undefined),
  );
}
