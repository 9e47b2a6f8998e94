/**
 * The beat as a process of its own (`celeriac-server beat`): a database, a producer on the
 * fleet's broker and the beat, without the API. Its runs reach GraphQL subscriptions of the
 * servers when they share PUBSUB_URL; the runs table records them either way.
 */
import { createApp } from "@celeriac/sdk";
import type { Logger } from "pino";
import type { ServerConfig } from "../config.js";
import { openDatabase } from "../db/database.js";
import { migrate } from "../db/migrate.js";
import { PubSub } from "../pubsub/pubsub.js";
import { Beat } from "./beat.js";
import { appSender } from "./message.js";

export interface StandaloneBeat {
  readonly beat: Beat;
  stop(): Promise<void>;
}

export async function startStandaloneBeat(
  config: ServerConfig,
  logger: Logger,
): Promise<StandaloneBeat> {
  const db = await openDatabase(config.databaseUrl);
  if (config.migrate) await migrate(db);
  const app = createApp({
    broker: config.brokerUrl,
    resultBackend: config.resultBackendUrl,
    taskSendSentEvent: true,
  });
  await app.connect();
  const pubsub = config.pubsubUrl ? new PubSub(config.pubsubUrl, logger) : null;
  const beat = new Beat(
    { db, send: appSender(app), pubsub, logger },
    { runRetentionDays: config.retentionDays },
  );
  await beat.start();
  logger.info({ database: db.displayUrl, broker: app.connected.broker.displayUrl }, "beat started");
  return {
    beat,
    async stop() {
      await beat.stop();
      await app.close();
      await pubsub?.close();
      await db.close();
    },
  };
}
