/**
 * Dev mode (`celeriac-server dev`, the README's `npm start`): the whole system in one process,
 * with nothing installed or running beforehand:
 *
 * - the control plane on an embedded Postgres (PGlite, kept in `.celeriac/` at the repository's
 *   root), migrations applied, serving GraphQL and the dashboard (built first when missing or
 *   older than its sources);
 * - the in-memory broker and result backend;
 * - the beat, and a periodic task of its own (created once through the schedule service);
 * - a worker running the example tasks, with task events on and its logs shipped;
 * - a small demo load: a few tasks a second, a failing one now and then, a workflow now and then.
 *
 * It prints the dashboard's URL and an admin token, the same across restarts (kept in
 * `.celeriac/admin-token`). With DATABASE_URL and BROKER_URL (and RESULT_BACKEND) set, it uses
 * them instead, so other workers, ours or Python's, can join.
 */
import { randomBytes } from "node:crypto";
import { existsSync } from "node:fs";
import { chmod, mkdir, readFile, writeFile } from "node:fs/promises";
import path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { type App, createWorker, type Worker } from "@celeriac/sdk";
import { type Logger, pino } from "pino";
import { buildApp, type CeleriacServer } from "../app.js";
import type { ServerConfigInput } from "../config.js";
import { ensureDashboardBuilt } from "./dashboard-build.js";

/** The repository's root (this file is server/src/dev/dev.ts). */
export const REPO_ROOT = fileURLToPath(new URL("../../../", import.meta.url));

/** The example modules the worker runs, in order; those missing are skipped. */
const EXAMPLE_MODULES = ["examples/tasks.ts", "examples/catalog.ts", "examples/reports.ts"];

export const DEMO_SCHEDULE = "demo: echo every 30 s";

export interface DevOptions {
  /** Where the embedded database and the admin token are kept. Default: `<repo>/.celeriac`. */
  dataDir?: string;
  /** Default: env DATABASE_URL, else `pglite://<dataDir>/db`. */
  databaseUrl?: string;
  /** Default: env BROKER_URL, else `memory://celeriac-dev`. */
  brokerUrl?: string;
  /** Default: env RESULT_BACKEND, else the in-memory backend with the in-memory broker, else none. */
  resultBackendUrl?: string | null;
  /** Default: env PORT, else 4000; 0 picks a free port. */
  port?: number;
  /** Default: env HOST, else 127.0.0.1. */
  host?: string;
  /** Send the demo load. Default: true. */
  demo?: boolean;
  /** Build the dashboard when it is stale. Default: true. */
  buildDashboard?: boolean;
  /** Replace the worker when it is shut down (from the dashboard), so the demo goes on. Default: true. */
  respawnWorker?: boolean;
  /** The server's log level. Default: env LOG_LEVEL, else warn (dev mode prints its own lines). */
  logLevel?: ServerConfigInput["logLevel"];
  /** Where dev mode's own lines go. Default: standard output. */
  print?: (line: string) => void;
}

export interface DevHandle {
  server: CeleriacServer;
  /** The examples' app, which the worker runs and the demo sends with. */
  app: App;
  readonly worker: Worker;
  /** `http://host:port` */
  url: string;
  token: string;
  stop(): Promise<void>;
}

async function adminToken(server: CeleriacServer, file: string, print: (l: string) => void) {
  const saved = existsSync(file) ? (await readFile(file, "utf8")).trim() : "";
  if (saved) {
    const viewer = await server.services.tokens.verify(saved);
    if (viewer?.role === "admin") return saved;
    if (!viewer) {
      // A new database (or another one): the saved token is not in it yet.
      const created = await server.services.tokens
        .create("dev mode admin", "admin", saved)
        .then(() => true)
        .catch(() => false);
      if (created) return saved;
    }
    print("The saved admin token was revoked or is not an admin's: a new one is made.");
  }
  const token = `cel_${randomBytes(32).toString("base64url")}`;
  await server.services.tokens.create("dev mode admin", "admin", token);
  await mkdir(path.dirname(file), { recursive: true });
  await writeFile(file, `${token}\n`, { mode: 0o600 });
  await chmod(file, 0o600);
  return token;
}

/** The examples' app, with every example module's tasks registered on it. */
async function loadExamples(): Promise<App> {
  let app: App | undefined;
  for (const rel of EXAMPLE_MODULES) {
    const file = path.join(REPO_ROOT, rel);
    if (!existsSync(file)) continue;
    const mod = (await import(pathToFileURL(file).href)) as { app?: App };
    app ??= mod.app;
  }
  if (!app) throw new Error(`no example app found (${EXAMPLE_MODULES.join(", ")})`);
  return app;
}

/** The periodic task the demo shows, created once (it may be edited or disabled afterwards). */
async function ensureDemoSchedule(server: CeleriacServer, logger: Logger): Promise<void> {
  const schedules = (server.services as Partial<typeof server.services>).schedules;
  if (!schedules) return;
  const existing = await server.db.prisma.periodicTask.findUnique({
    where: { name: DEMO_SCHEDULE },
  });
  if (existing) return;
  await schedules
    .create(null, {
      name: DEMO_SCHEDULE,
      task: "tasks.echo",
      args: ["sent by the beat"],
      kwargs: { demo: true },
      schedule: { interval: { every: 30, period: "seconds" } },
      description:
        "Created by dev mode to show the beat at work; edit, disable or delete it freely.",
    })
    .catch((error: unknown) =>
      logger.warn({ err: error }, "the demo schedule could not be created"),
    );
}

const pick = <T>(items: readonly T[]): T => items[Math.floor(Math.random() * items.length)]!;
const int = (min: number, max: number) => min + Math.floor(Math.random() * (max - min + 1));

const FAILURES = [
  "card declined",
  "upstream timed out after 30 s",
  "no such album: a42",
  "disk quota exceeded",
];

/** A few tasks a second, a failure now and then, a catalogue export every two minutes. */
function startDemo(app: App, logger: Logger): () => void {
  let n = 0;
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;
  const send = async () => {
    n++;
    if (n % 17 === 0) return app.sendTask("tasks.fail", [`demo failure #${n}: ${pick(FAILURES)}`]);
    if (n % 240 === 5) {
      const { exportCatalog } = (await import(
        pathToFileURL(path.join(REPO_ROOT, "examples/catalog.ts")).href
      )) as {
        exportCatalog?: (ids: string[], o: { sliceSize: number }) => { delay(): Promise<unknown> };
      };
      if (exportCatalog) {
        const ids = Array.from({ length: 3000 }, (_, i) => `t${String(i).padStart(5, "0")}`);
        return exportCatalog(ids, { sliceSize: 1000 }).delay();
      }
    }
    const r = Math.random();
    if (r < 0.35) return app.sendTask("tasks.add", [int(1, 100), int(1, 100)]);
    if (r < 0.5) return app.sendTask("tasks.mul", [int(1, 12), int(1, 12)]);
    if (r < 0.68) return app.sendTask("tasks.sleep", [Math.round(Math.random() * 30) / 10]);
    if (r < 0.76) return app.sendTask("tasks.echo", ["hello", n], { source: "demo" });
    if (r < 0.85) return app.sendTask("stats.album", [`album-${int(1, 4)}`]);
    if (r < 0.9) return app.sendTask("tasks.flaky", [int(1, 2)]);
    if (app.registry.get("reports.render"))
      return app.sendTask("reports.render", [
        pick(["Weekly sales", "Churn by cohort", "Inventory"]),
        pick(["pdf", "html", "csv"]),
        int(1, 12),
        Math.random() < 0.3,
      ]);
    return app.sendTask("tasks.add", [n, n]);
  };
  const tick = () => {
    if (stopped) return;
    send().catch((error: unknown) => logger.warn({ err: error }, "a demo task could not be sent"));
    timer = setTimeout(tick, 150 + Math.random() * 500);
  };
  timer = setTimeout(tick, 500);
  return () => {
    stopped = true;
    if (timer) clearTimeout(timer);
  };
}

export async function startDev(options: DevOptions = {}): Promise<DevHandle> {
  const env = process.env;
  const print = options.print ?? ((line: string) => process.stdout.write(`${line}\n`));
  const dataDir = path.resolve(options.dataDir ?? path.join(REPO_ROOT, ".celeriac"));
  await mkdir(dataDir, { recursive: true });
  const databaseUrl =
    options.databaseUrl ?? env.DATABASE_URL ?? `pglite://${path.join(dataDir, "db")}`;
  const brokerUrl = options.brokerUrl ?? env.BROKER_URL ?? "memory://celeriac-dev";
  const inMemory = brokerUrl.startsWith("memory:");
  const resultBackendUrl =
    options.resultBackendUrl !== undefined
      ? options.resultBackendUrl
      : (env.RESULT_BACKEND ?? (inMemory ? brokerUrl : null));
  const logLevel = options.logLevel ?? (env.LOG_LEVEL as DevOptions["logLevel"]) ?? "warn";
  const logger = pino({ level: logLevel, name: "celeriac-dev" });

  // The dashboard builds in another process while the database opens and migrates here.
  const building =
    options.buildDashboard === false
      ? Promise.resolve({ built: false, ms: 0 })
      : ensureDashboardBuilt({
          onStart: () => print("Building the dashboard (first start, or its sources changed)…"),
        });
  building.catch(() => {});

  const server = await buildApp(
    {
      databaseUrl,
      brokerUrl,
      resultBackendUrl,
      port: options.port ?? (env.PORT ? Number(env.PORT) : 4000),
      host: options.host ?? env.HOST ?? "127.0.0.1",
      beat: true,
      dashboard: true,
      logLevel,
    },
    logger.child({ component: "server" }),
  );

  const app = await loadExamples();
  const locksElsewhere =
    /^rediss?:/.test(brokerUrl) || /^rediss?:/.test(resultBackendUrl ?? "") || inMemory;
  app.configure({
    broker: brokerUrl,
    resultBackend: resultBackendUrl,
    taskSendSentEvent: true,
    // Unique tasks need a lock store; on RabbitMQ without Redis, this process's own will do.
    ...(locksElsewhere ? {} : { locks: "memory://" }),
  });

  let stopping = false;
  let stopDemo: () => void = () => {};
  let respawn: NodeJS.Timeout | undefined;
  const newWorker = async (): Promise<Worker> => {
    const w = await createWorker(app, {
      hostname: "dev@%h",
      concurrency: 4,
      taskEvents: true,
      shipLogs: "info",
      // Its records are shipped (and shown on each task's page); the terminal gets only the
      // worst, or what LOG_LEVEL asks for: failing demo tasks would fill it.
      logLevel: (env.LOG_LEVEL as DevOptions["logLevel"]) ?? "fatal",
    });
    w.once("stopped", () => {
      if (stopping || options.respawnWorker === false) return;
      print(`The worker ${w.hostname} was shut down; dev mode starts a new one in 10 s.`);
      respawn = setTimeout(() => {
        if (stopping) return;
        newWorker()
          .then(async (next) => {
            worker = next;
            await next.start();
          })
          .catch((error: unknown) => logger.error({ err: error }, "the worker could not restart"));
      }, 10_000);
    });
    return w;
  };
  let worker = await newWorker();

  try {
    await building;
  } catch (error) {
    print(
      `The dashboard could not be built; the API works without it.\n${(error as Error).message}`,
    );
  }
  await server.start().catch((error: NodeJS.ErrnoException) => {
    if (error.code !== "EADDRINUSE") throw error;
    throw new Error(
      `port ${server.config.port} is taken (another dev mode?): choose another with --port or PORT`,
    );
  });
  const token = await adminToken(server, path.join(dataDir, "admin-token"), print);
  await worker.start();
  await ensureDemoSchedule(server, logger);
  if (options.demo !== false) stopDemo = startDemo(app, logger);

  const url = server.url;
  const shown = (u: string) => u.replace(/\/\/[^@/]*@/, "//***@");
  print(
    [
      "",
      "  Celeriac is running (dev mode)",
      "",
      `  Dashboard:    ${url}/#token=${token}`,
      `  Admin token:  ${token}`,
      `  GraphQL:      ${url}/graphql`,
      `  Database:     ${shown(databaseUrl)}`,
      `  Broker:       ${shown(brokerUrl)}${inMemory ? " (in this process: set BROKER_URL to let other workers join)" : ""}`,
      `  Worker:       ${worker.hostname}, running ${EXAMPLE_MODULES.filter((m) => existsSync(path.join(REPO_ROOT, m))).join(", ")}`,
      options.demo === false ? "" : "  Demo load:    a few tasks a second; Ctrl-C stops everything",
      "",
    ].join("\n"),
  );

  return {
    server,
    app,
    get worker() {
      return worker;
    },
    url,
    token,
    async stop() {
      if (stopping) return;
      stopping = true;
      stopDemo();
      if (respawn) clearTimeout(respawn);
      await worker.stop().catch(() => {});
      await app.close().catch(() => {});
      await server.stop();
    },
  };
}

/** `celeriac-server dev`: start, then stop on the first signal (a second one exits at once). */
export async function runDev(options: DevOptions = {}): Promise<void> {
  const dev = await startDev(options);
  let signals = 0;
  const stop = (signal: NodeJS.Signals) => {
    if (++signals > 1) process.exit(1);
    dev.server.logger.info({ signal }, "stopping");
    dev.stop().then(
      () => process.exit(0),
      (error: unknown) => {
        console.error(error);
        process.exit(1);
      },
    );
  };
  process.on("SIGINT", stop);
  process.on("SIGTERM", stop);
}
