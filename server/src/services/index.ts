/** Every service the schema calls, built once per server from its configuration. */
import type { App } from "@celeriac/sdk";
import type { Logger } from "pino";
import { TokenService } from "../auth/token-service.js";
import { appSender } from "../beat/message.js";
import type { ServerConfig } from "../config.js";
import type { Database } from "../db/database.js";
import type { PubSub } from "../pubsub/pubsub.js";
import { AuditLog } from "./audit.js";
import { LockService } from "./lock-service.js";
import { QueueService } from "./queue-service.js";
import { Redaction } from "./redaction.js";
import { RegistryService } from "./registry-service.js";
import { ScheduleService } from "./schedule-service.js";
import { StatsService } from "./stats-service.js";
import { TaskService } from "./task-service.js";
import { WorkerService } from "./worker-service.js";

export interface Services {
  tasks: TaskService;
  workers: WorkerService;
  queues: QueueService;
  locks: LockService;
  stats: StatsService;
  registry: RegistryService;
  schedules: ScheduleService;
  tokens: TokenService;
  audit: AuditLog;
  redaction: Redaction;
  pubsub: PubSub;
}

export function createServices(
  config: ServerConfig,
  db: Database,
  app: App,
  pubsub: PubSub,
  logger: Logger,
): Services {
  const audit = new AuditLog(db, logger);
  const redaction = new Redaction(config.redactTasks);
  const registry = new RegistryService(db, app, pubsub, logger, config.controlTimeout);
  return {
    tasks: new TaskService(db, app, audit, registry, redaction, config.controlTimeout),
    workers: new WorkerService(db, app, audit, redaction, config.controlTimeout, registry),
    queues: new QueueService(db, app, audit),
    locks: new LockService(app, audit, redaction),
    stats: new StatsService(db),
    registry,
    schedules: new ScheduleService(db, audit, redaction, appSender(app), pubsub),
    tokens: new TokenService(db),
    audit,
    redaction,
    pubsub,
  };
}
