/**
 * buildApp(config): the control plane as a value: GraphQL over HTTP (Yoga) and WebSocket
 * (graphql-ws) at /graphql, health, readiness and metrics, the dashboard at /, ingestion, the
 * registry refresh, retention and the beat. `start()` and `stop()` are idempotent; tests call
 * `yoga.fetch` directly or start on port 0.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { type App, createApp } from "@celeriac/sdk";
import { type ExecutionResult, GraphQLError } from "graphql";
import { useServer } from "graphql-ws/use/ws";
import { createYoga, type YogaServerInstance } from "graphql-yoga";
import { type Logger, pino } from "pino";
import { type WebSocket, WebSocketServer } from "ws";
import type { Viewer } from "./auth/roles.js";
import { bearerToken } from "./auth/token-service.js";
import { Beat } from "./beat/beat.js";
import { appSender } from "./beat/message.js";
import { resolveConfig, type ServerConfig, type ServerConfigInput } from "./config.js";
import type { Context } from "./context.js";
import { type Database, openDatabase } from "./db/database.js";
import { migrate } from "./db/migrate.js";
import { dashboardHandler } from "./http/dashboard.js";
import { createMetrics, type Metrics } from "./http/metrics.js";
import {
  expandPlaceholder,
  SharedSubscriptions,
  sharedPlaceholder,
} from "./http/shared-subscriptions.js";
import { Ingestor } from "./ingest/ingestor.js";
import { Reconciler } from "./ingest/reconciler.js";
import { PubSub } from "./pubsub/pubsub.js";
import { schema } from "./schema/index.js";
import { createServices, type Services } from "./services/index.js";
import { Retention } from "./services/retention.js";

type Enveloped = {
  execute: typeof import("graphql").execute;
  subscribe: typeof import("graphql").subscribe;
  /** Identifies executions that subscribers may share. */
  key: string;
};

type ServerContext = {
  req?: IncomingMessage;
  res?: ServerResponse;
  connectionParams?: Record<string, unknown>;
};

export interface CeleriacServer {
  readonly config: ServerConfig;
  readonly yoga: YogaServerInstance<ServerContext, Context>;
  readonly db: Database;
  readonly app: App;
  readonly services: Services;
  readonly ingestor: Ingestor | undefined;
  /** The beat, when this instance runs one (config.beat); it leads only if it holds the lock. */
  readonly beat: Beat | undefined;
  readonly logger: Logger;
  /** `http://host:port` once started. */
  readonly url: string;
  /** GraphQL subscriptions set up and running over WebSocket now. */
  readonly subscriptions: number;
  start(): Promise<void>;
  stop(): Promise<void>;
}

function unauthenticated(): GraphQLError {
  return new GraphQLError("a valid API token is required (Authorization: Bearer <token>)", {
    extensions: { code: "UNAUTHENTICATED", http: { status: 401 } },
  });
}

export async function buildApp(input: ServerConfigInput, logger?: Logger): Promise<CeleriacServer> {
  const config = resolveConfig(input);
  const log = logger ?? pino({ level: config.logLevel, name: "celeriac-server" });
  const db = await openDatabase(config.databaseUrl);
  if (config.migrate) {
    const { applied } = await migrate(db);
    if (applied.length) log.info({ applied }, "migrations applied");
  }
  const app = createApp({
    broker: config.brokerUrl,
    resultBackend: config.resultBackendUrl,
    taskSendSentEvent: true,
  });
  const pubsub = new PubSub(config.pubsubUrl, log.child({ component: "pubsub" }));
  const services = createServices(config, db, app, pubsub, log);
  let ingestor: Ingestor | undefined;
  const metrics: Metrics = createMetrics(services, () => ingestor);
  const dashboard = config.dashboard ? dashboardHandler() : null;
  const limits = { complexity: config.maxComplexity, depth: config.maxDepth };

  const authenticate = async (ctx: ServerContext & { request?: Request }): Promise<Viewer> => {
    const header = ctx.request?.headers.get("authorization");
    const param = ctx.connectionParams?.authorization ?? ctx.connectionParams?.Authorization;
    const token = bearerToken(header) ?? bearerToken(typeof param === "string" ? param : null);
    const viewer = await services.tokens.verify(token);
    if (!viewer) throw unauthenticated();
    return viewer;
  };

  const started = new WeakMap<Request, number>();
  const yoga = createYoga<ServerContext, Context>({
    schema,
    graphqlEndpoint: "/graphql",
    landingPage: false,
    logging: log.child({ component: "graphql" }),
    context: async (ctx) => ({
      viewer: await authenticate(ctx),
      db,
      services,
      limits,
    }),
    plugins: [
      {
        onRequest({ request }) {
          started.set(request, performance.now());
        },
        onResponse({ request }) {
          const t0 = started.get(request);
          if (t0 !== undefined)
            metrics.requestDuration.observe({ operation: "http" }, (performance.now() - t0) / 1000);
        },
      },
    ],
  });

  let http: Server | undefined;
  let wss: WebSocketServer | undefined;
  let url = "";
  let reconciler: Reconciler | undefined;
  let stopWatchingTokens: (() => Promise<void>) | undefined;
  /** Running subscriptions: operation ids per connection (ids are unique per connection only). */
  const subscribed = new Map<object, Set<string>>();
  const retention = new Retention(db, config.retentionDays, log);
  const beat = config.beat
    ? new Beat(
        { db, send: appSender(app), pubsub, logger: log.child({ component: "beat" }) },
        { runRetentionDays: config.retentionDays },
      )
    : undefined;
  let state: "new" | "started" | "stopped" = "new";

  const ready = async (): Promise<Record<string, boolean>> => {
    const checks = { database: false, broker: false };
    await db.query("SELECT 1").then(
      () => (checks.database = true),
      () => {},
    );
    await app
      .connect()
      .then(({ broker }) => broker.inspectQueue(app.options.defaultQueue))
      .then(
        () => (checks.broker = true),
        () => {},
      );
    return checks;
  };

  const handle = async (req: IncomingMessage, res: ServerResponse) => {
    const path = (req.url ?? "/").split("?")[0];
    if (path === "/healthz") {
      res.writeHead(200, { "content-type": "text/plain" }).end("ok\n");
      return;
    }
    if (path === "/readyz") {
      const checks = await ready();
      const ok = checks.database && checks.broker;
      res.writeHead(ok ? 200 : 503, { "content-type": "application/json" });
      res.end(JSON.stringify({ ok, ...checks }));
      return;
    }
    if (path === "/metrics") {
      res.writeHead(200, { "content-type": metrics.registry.contentType });
      res.end(await metrics.registry.metrics());
      return;
    }
    if (dashboard && path !== "/graphql" && (await dashboard(req, res))) return;
    yoga(req, res);
  };

  const server: CeleriacServer = {
    config,
    yoga,
    db,
    app,
    services,
    beat,
    logger: log,
    get ingestor() {
      return ingestor;
    },
    get url() {
      return url;
    },
    get subscriptions() {
      let n = 0;
      for (const ops of subscribed.values()) n += ops.size;
      return n;
    },
    async start() {
      if (state !== "new") return;
      state = "started";
      if (config.bootstrapToken && (await services.tokens.count()) === 0)
        await services.tokens.create("bootstrap admin", "admin", config.bootstrapToken);
      await app.connect();
      if (config.ingest) {
        ingestor = new Ingestor(
          db,
          app.connected.broker,
          pubsub,
          log.child({ component: "ingest" }),
          {
            queue: config.eventQueue,
            maxLength: config.eventQueueMaxLength,
            batchSize: config.ingestBatchSize,
            flushMs: config.ingestFlushMs,
            maxHeld: config.ingestMaxHeld,
          },
        );
        ingestor.onWritten((written) => {
          for (const t of written.tasks) services.queues.saw(t.queue);
          const alive = written.workers.filter((w) => w.eventType !== "worker-offline");
          if (alive.some((w) => w.eventType === "worker-online")) services.registry.workerOnline();
          else services.registry.workersSeen(alive.map((w) => w.hostname));
        });
        await ingestor.start();
        if (app.connected.backend) {
          reconciler = new Reconciler(
            db,
            app.connected.backend,
            ingestor,
            log.child({ component: "reconcile" }),
          );
          reconciler.start();
        }
      }
      services.registry.start();
      retention.start();
      await beat?.start();
      http = createServer((req, res) => {
        handle(req, res).catch((error) => {
          log.error({ err: error }, "request failed");
          if (!res.headersSent) res.writeHead(500).end();
        });
      });
      wss = new WebSocketServer({ server: http, path: "/graphql" });
      // A revoked token's open sessions end now, not when their sockets happen to close.
      const sockets = new Map<string, Set<WebSocket>>();
      stopWatchingTokens = await services.tokens.onRevoke((tokenId) => {
        for (const socket of sockets.get(tokenId) ?? []) socket.close(4403, "Forbidden");
        sockets.delete(tokenId);
      });
      const shared = new SharedSubscriptions();
      // Before graphql-ws sees the socket: shared results are sent as JSON serialized once.
      wss.on("connection", (socket) => {
        const send = socket.send.bind(socket) as (
          data: unknown,
          cb?: (err?: Error) => void,
        ) => void;
        socket.send = ((data: unknown, cb?: (err?: Error) => void) =>
          send(
            typeof data === "string" ? expandPlaceholder(data) : data,
            cb,
          )) as typeof socket.send;
      });
      useServer<Record<string, unknown>>(
        {
          execute: (args) => (args.rootValue as Enveloped).execute(args),
          onNext: (_ctx, _id, _payload, _args, result) =>
            sharedPlaceholder(result as ExecutionResult) as never,
          // Identical subscriptions (same operation, variables and role) share one execution.
          subscribe: (args) => {
            const root = args.rootValue as Enveloped;
            return shared.subscribe(root.key, () => root.subscribe(args) as never) as never;
          },
          onConnect: async (ctx) => {
            try {
              const viewer = await authenticate({ connectionParams: ctx.connectionParams ?? {} });
              const extra = ctx.extra as { viewer?: Viewer; socket: WebSocket };
              extra.viewer = viewer;
              const tokenId = viewer.tokenId ?? "";
              const open = sockets.get(tokenId) ?? new Set();
              open.add(extra.socket);
              sockets.set(tokenId, open);
              extra.socket.once("close", () => open.delete(extra.socket));
              return true;
            } catch {
              return false;
            }
          },
          // Counted once the stream is set up: what tests (and metrics) can wait on.
          onOperation: (ctx, id) => {
            const ops = subscribed.get(ctx) ?? new Set<string>();
            ops.add(id);
            subscribed.set(ctx, ops);
          },
          onComplete: (ctx, id) => {
            subscribed.get(ctx)?.delete(id);
          },
          onClose: (ctx) => {
            subscribed.delete(ctx);
          },
          onSubscribe: async (ctx, _id, payload) => {
            const {
              schema: s,
              execute,
              subscribe,
              contextFactory,
              parse,
              validate,
            } = yoga.getEnveloped({
              ...ctx,
              connectionParams: ctx.connectionParams ?? {},
              params: payload,
            });
            const args = {
              schema: s,
              operationName: payload.operationName,
              document: parse(payload.query),
              variableValues: payload.variables,
              contextValue: await contextFactory(),
              rootValue: {
                execute,
                subscribe,
                key: JSON.stringify([
                  payload.query,
                  payload.variables ?? {},
                  payload.operationName ?? null,
                  (ctx.extra as { viewer?: Viewer }).viewer?.role,
                ]),
              },
            };
            const errors = validate(args.schema, args.document);
            if (errors.length) return errors;
            return args;
          },
        },
        wss,
      );
      await new Promise<void>((resolve, reject) => {
        http!.once("error", reject);
        http!.listen(config.port, config.host, () => resolve());
      });
      const address = http.address() as AddressInfo;
      url = `http://${config.host.includes(":") ? `[${config.host}]` : config.host}:${address.port}`;
      log.info(
        { url: `${url}/graphql`, database: db.displayUrl, broker: app.connected.broker.displayUrl },
        "control plane ready",
      );
    },
    async stop() {
      if (state === "stopped") return;
      const wasStarted = state === "started";
      state = "stopped";
      if (wasStarted) {
        for (const client of wss?.clients ?? []) client.close(1001, "server shutting down");
        await new Promise<void>((resolve) => (wss ? wss.close(() => resolve()) : resolve()));
        await new Promise<void>((resolve) => {
          if (!http) return resolve();
          http.close(() => resolve());
          http.closeAllConnections();
        });
        await stopWatchingTokens?.();
        reconciler?.stop();
        retention.stop();
        services.registry.stop();
        await beat?.stop();
        await ingestor?.stop();
      }
      await app.close();
      await pubsub.close();
      await db.close();
    },
  };
  return server;
}
