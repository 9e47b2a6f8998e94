/** RabbitMQ broker options, with defaults, validated once. */
import type { Logger } from "pino";
import { pino } from "pino";
import { z } from "zod";
import { CeleriacError } from "../../errors.js";

export interface AmqpBrokerOptions {
  /**
   * Seconds without traffic before the connection is deemed dead (AMQP heartbeat). Default: 60:
   * Celery uses 120, but a dead worker connection should release its unacked messages sooner.
   */
  heartbeat: number;
  /** Client-provided connection name, shown by `rabbitmqctl list_connections`. Default: "celeriac". */
  connectionName: string;
  /** Wait for RabbitMQ's publisher confirm before a publish resolves. Default: true. */
  confirmPublish: boolean;
  /** Milliseconds a publish waits for a connection before it fails. Default: 30000. */
  publishTimeout: number;
  /** Where broker problems are logged. Default: silent. */
  logger: Logger;
}

const schema = z.object({
  heartbeat: z.number().min(0),
  connectionName: z.string().min(1),
  confirmPublish: z.boolean(),
  publishTimeout: z.number().positive(),
});

export function resolveAmqpBrokerOptions(options: Partial<AmqpBrokerOptions>): AmqpBrokerOptions {
  const resolved: AmqpBrokerOptions = {
    heartbeat: 60,
    connectionName: "celeriac",
    confirmPublish: true,
    publishTimeout: 30_000,
    logger: pino({ level: "silent" }),
    ...options,
  };
  const { logger: _l, ...checked } = resolved;
  const parsed = schema.safeParse(checked);
  if (!parsed.success)
    throw new CeleriacError("INVALID_OPTION", `amqp broker: ${z.prettifyError(parsed.error)}`);
  return resolved;
}
