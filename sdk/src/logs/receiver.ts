/**
 * Reads shipped log records back from the broker, from every worker at once: all of them, or one
 * task's, or those at a level and above.
 */
import { EventEmitter } from "node:events";
import type { Broker, QueueDeclaration } from "../brokers/broker.js";
import { EventReceiver } from "../events/receiver.js";
import {
  LOG_EVENT_TYPE,
  LOG_LEVELS,
  LOG_ROUTING_KEY,
  type LogLevel,
  type LogRecord,
  readLogEvent,
} from "./event.js";

export interface LogReceiverOptions {
  /** Only the records of this task id. Default: all. */
  taskId?: string;
  /** Only records at this level and above. Default: all. */
  level?: LogLevel;
  /** A durable named queue (AMQP), so records shipped while the receiver is down are kept. */
  queue?: QueueDeclaration;
}

export interface LogReceiverEventMap {
  log: [LogRecord];
}

/**
 * @example
 * const logs = new LogReceiver((await app.connect()).broker, { taskId: result.id });
 * logs.on("log", (r) => console.log(r.time, r.worker, r.level, r.msg, r.data));
 * await logs.start();
 */
export class LogReceiver extends EventEmitter<LogReceiverEventMap> {
  private readonly events: EventReceiver;
  private readonly minLevel: number;

  constructor(broker: Broker, options: LogReceiverOptions = {}) {
    super();
    this.minLevel = options.level ? LOG_LEVELS.indexOf(options.level) : 0;
    this.events = new EventReceiver(broker, {
      bindingKey: LOG_ROUTING_KEY,
      types: [LOG_EVENT_TYPE],
      ...(options.queue ? { queue: options.queue } : {}),
    });
    this.events.on("event", (event) => {
      const record = readLogEvent(event);
      if (!record) return;
      if (options.taskId !== undefined && record.taskId !== options.taskId) return;
      // Levels this SDK does not know (custom ones) pass: better shown than lost.
      const rank = LOG_LEVELS.indexOf(record.level as LogLevel);
      if (rank !== -1 && rank < this.minLevel) return;
      this.emit("log", record);
    });
  }

  /** Subscribe; idempotent. */
  start(): Promise<void> {
    return this.events.start();
  }

  stop(): Promise<void> {
    return this.events.stop();
  }
}
