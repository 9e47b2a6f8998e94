/**
 * The server's configuration: every option with its default, validated once. `main.ts` fills it
 * from the environment and flags; tests build it directly.
 */
import { z } from "zod";

const role = z.enum(["viewer", "operator", "admin"]);

export const serverConfigSchema = z.object({
  /** `postgresql://…`, or `pglite://<dir>` / `pglite://memory` for the embedded database. */
  databaseUrl: z.string().min(1),
  /** Broker the fleet uses (`redis://…`, `amqp://…`, `memory://`). Events are read from it. */
  brokerUrl: z.string().min(1),
  /** Result backend (`redis://…`), used to reconcile tasks whose final event was missed; null: none. */
  resultBackendUrl: z.string().nullable().default(null),
  /** HTTP port; 0 picks a free one. Default: 4000. */
  port: z.number().int().min(0).max(65535).default(4000),
  /** Interface to listen on. Default: 127.0.0.1. */
  host: z.string().default("127.0.0.1"),
  /**
   * Redis URL for the pubsub that feeds subscriptions, so several server instances see each
   * other's events. Default: null (in-process, one instance).
   */
  pubsubUrl: z.string().nullable().default(null),
  /** Apply migrations at start. Default: true. */
  migrate: z.boolean().default(true),
  /** Consume the fleet's events into the database. Default: true. */
  ingest: z.boolean().default(true),
  /** Run the beat (periodic tasks) in this process. Default: true. */
  beat: z.boolean().default(true),
  /** Days of task history kept; older tasks, events and logs are deleted hourly. 0 keeps all. Default: 30. */
  retentionDays: z.number().min(0).default(30),
  /**
   * Name of the durable event queue on brokers that keep broadcasts for absent subscribers
   * (RabbitMQ). Instances sharing it share the work. Default: `celeriac.events`.
   */
  eventQueue: z.string().default("celeriac.events"),
  /**
   * Longest the durable event queue may grow while the server is down (messages); older ones are
   * dropped beyond it. RabbitMQ refuses to redeclare a queue with other arguments: to change it
   * on an existing queue, delete the queue first (or name another with `eventQueue`).
   * Default: 1,000,000.
   */
  eventQueueMaxLength: z.number().int().positive().default(1_000_000),
  /** Ingestion flushes a batch at this many task changes, or after `ingestFlushMs`. Default: 2,000. */
  ingestBatchSize: z.number().int().positive().default(2000),
  /** Default: 50 ms. */
  ingestFlushMs: z.number().int().positive().default(50),
  /**
   * Events held in memory while the database is away, on brokers that do not keep events for an
   * absent reader (Redis); the oldest are dropped beyond it. Default: 200,000.
   */
  ingestMaxHeld: z.number().int().positive().default(200_000),
  /** Task-name globs whose args, kwargs and results are hidden in the API and the audit trail. */
  redactTasks: z.array(z.string()).default([]),
  /**
   * Largest query complexity and depth accepted. A field costs 1, times the size of the lists
   * it sits in (a page of 100 tasks with 20 fields: 2,000). Defaults: 20,000 and 12.
   */
  maxComplexity: z.number().int().positive().default(20_000),
  maxDepth: z.number().int().positive().default(12),
  /** Seconds control commands wait for workers' replies. Default: 1. */
  controlTimeout: z.number().positive().default(1),
  /** Serve the dashboard at `/`. Default: true. */
  dashboard: z.boolean().default(true),
  /** Create this admin token at start when no token exists (dev mode). Default: null. */
  bootstrapToken: z.string().nullable().default(null),
  /** pino level. Default: info. */
  logLevel: z.enum(["trace", "debug", "info", "warn", "error", "fatal", "silent"]).default("info"),
});

export type ServerConfigInput = z.input<typeof serverConfigSchema>;
export type ServerConfig = z.output<typeof serverConfigSchema>;
export const Role = role;
export type Role = z.infer<typeof role>;

export function resolveConfig(input: ServerConfigInput): ServerConfig {
  const parsed = serverConfigSchema.safeParse(input);
  if (!parsed.success) {
    const issues = parsed.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`).join("; ");
    throw new Error(`invalid server configuration: ${issues}`);
  }
  return parsed.data;
}
