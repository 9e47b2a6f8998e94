/**
 * `celeriac-server`: configuration from the environment and flags, then one of
 *   start (default)     the control plane: GraphQL + dashboard, ingestion, beat
 *   beat                the beat alone (periodic tasks), without the API
 *   dev                 everything in one process, nothing to install (the README's `npm start`)
 *   migrate             apply database migrations and exit
 *   token create|list|revoke
 *   schedules list|show|create|update|enable|disable|delete|run
 *   print-schema        the GraphQL schema, as committed in server/schema.graphql
 */
import { Command, InvalidArgumentError } from "commander";
import { pino } from "pino";
import { buildApp } from "./app.js";
import { TokenService } from "./auth/token-service.js";
import { startStandaloneBeat } from "./beat/standalone.js";
import { schedulesCommand } from "./cli/schedules.js";
import { Role, resolveConfig, type ServerConfigInput } from "./config.js";
import { openDatabase, redactUrl } from "./db/database.js";
import { migrate } from "./db/migrate.js";

const env = process.env;

const int = (value: string) => {
  const n = Number(value);
  if (!Number.isInteger(n)) throw new InvalidArgumentError("not an integer");
  return n;
};

/** What the environment says; flags given on the command line win. */
export function configFromEnv(): ServerConfigInput {
  const list = (v: string | undefined) =>
    v
      ? v
          .split(",")
          .map((s) => s.trim())
          .filter(Boolean)
      : undefined;
  const bool = (v: string | undefined) =>
    v === undefined ? undefined : !/^(0|false|no|off)$/i.test(v);
  return {
    databaseUrl: env.DATABASE_URL ?? "",
    brokerUrl: env.BROKER_URL ?? "",
    resultBackendUrl: env.RESULT_BACKEND ?? null,
    pubsubUrl: env.PUBSUB_URL ?? null,
    ...(env.PORT ? { port: Number(env.PORT) } : {}),
    ...(env.HOST ? { host: env.HOST } : {}),
    ...(env.RETENTION_DAYS ? { retentionDays: Number(env.RETENTION_DAYS) } : {}),
    ...(list(env.REDACT_TASKS) ? { redactTasks: list(env.REDACT_TASKS) } : {}),
    ...(bool(env.CELERIAC_BEAT) !== undefined ? { beat: bool(env.CELERIAC_BEAT) } : {}),
    ...(env.LOG_LEVEL ? { logLevel: env.LOG_LEVEL as ServerConfigInput["logLevel"] } : {}),
  };
}

function requireDatabase(): string {
  if (!env.DATABASE_URL) {
    console.error(
      "DATABASE_URL is not set (postgresql://user:pass@host:5432/db, or pglite://<dir>)",
    );
    process.exit(2);
  }
  return env.DATABASE_URL;
}

const program = new Command("celeriac-server").description("Celeriac's control plane");

program
  .command("start", { isDefault: true })
  .description("serve GraphQL and the dashboard, ingest the fleet's events, run the beat")
  .option("--port <n>", "HTTP port (env PORT; default 4000)", int)
  .option("--host <host>", "interface to listen on (env HOST; default 127.0.0.1)")
  .option("--no-beat", "do not run the beat in this process")
  .option("--no-ingest", "do not consume events (another instance does)")
  .action(async (opts: { port?: number; host?: string; beat: boolean; ingest: boolean }) => {
    requireDatabase();
    if (!env.BROKER_URL) {
      console.error("BROKER_URL is not set (redis://…, amqp://…)");
      process.exit(2);
    }
    const server = await buildApp({
      ...configFromEnv(),
      ...(opts.port !== undefined ? { port: opts.port } : {}),
      ...(opts.host ? { host: opts.host } : {}),
      ...(opts.beat === false ? { beat: false } : {}),
      ...(opts.ingest === false ? { ingest: false } : {}),
    });
    await server.start();
    let stopping = false;
    const stop = (signal: string) => {
      if (stopping) process.exit(1); // a second signal: stop now
      stopping = true;
      server.logger.info({ signal }, "stopping");
      server.stop().then(
        () => process.exit(0),
        (error) => {
          server.logger.error({ err: error }, "stop failed");
          process.exit(1);
        },
      );
    };
    process.on("SIGTERM", () => stop("SIGTERM"));
    process.on("SIGINT", () => stop("SIGINT"));
  });

program
  .command("beat")
  .description("run only the beat: fire periodic tasks (one leader among all beats of a database)")
  .action(async () => {
    requireDatabase();
    if (!env.BROKER_URL) {
      console.error("BROKER_URL is not set (redis://…, amqp://…)");
      process.exit(2);
    }
    const config = resolveConfig(configFromEnv());
    const logger = pino({ level: config.logLevel, name: "celeriac-beat" });
    const running = await startStandaloneBeat(config, logger);
    let stopping = false;
    const stop = (signal: string) => {
      if (stopping) process.exit(1); // a second signal: stop now
      stopping = true;
      logger.info({ signal }, "stopping");
      running.stop().then(
        () => process.exit(0),
        (error) => {
          logger.error({ err: error }, "stop failed");
          process.exit(1);
        },
      );
    };
    process.on("SIGTERM", () => stop("SIGTERM"));
    process.on("SIGINT", () => stop("SIGINT"));
  });

program
  .command("dev")
  .description(
    "dev mode: the server on an embedded Postgres, an in-memory broker, the beat, a worker running the examples and a demo load, in one process (DATABASE_URL, BROKER_URL and RESULT_BACKEND replace the embedded ones)",
  )
  .option("--port <n>", "HTTP port (env PORT; default 4000; 0 picks one)", int)
  .option("--host <host>", "interface to listen on (env HOST; default 127.0.0.1)")
  .option(
    "--data-dir <dir>",
    "where the embedded database and the admin token are kept (default .celeriac/)",
  )
  .option("--no-demo", "send no demo load")
  .action(async (opts: { port?: number; host?: string; dataDir?: string; demo: boolean }) => {
    const { runDev } = await import("./dev/dev.js");
    await runDev({
      ...(opts.port !== undefined ? { port: opts.port } : {}),
      ...(opts.host ? { host: opts.host } : {}),
      ...(opts.dataDir ? { dataDir: opts.dataDir } : {}),
      demo: opts.demo,
    });
  });

program
  .command("migrate")
  .description("apply the database migrations (prisma/migrations) and exit")
  .action(async () => {
    const url = requireDatabase();
    const db = await openDatabase(url);
    try {
      const { applied, alreadyApplied } = await migrate(db);
      console.log(
        `${redactUrl(url)}: ${applied.length} migration(s) applied${applied.length ? ` (${applied.join(", ")})` : ""}, ${alreadyApplied} already applied`,
      );
    } finally {
      await db.close();
    }
  });

const token = program.command("token").description("API tokens");

token
  .command("create")
  .description("create a token and print it (shown once)")
  .requiredOption("--role <role>", "viewer, operator or admin")
  .requiredOption("--name <name>", "who or what uses it")
  .action(async (opts: { role: string; name: string }) => {
    const role = Role.safeParse(opts.role);
    if (!role.success) {
      console.error(`--role must be one of: ${Role.options.join(", ")}`);
      process.exit(2);
    }
    const db = await openDatabase(requireDatabase());
    try {
      await migrate(db);
      const { token: secret, record } = await new TokenService(db).create(opts.name, role.data);
      console.error(
        `created ${record.role} token "${record.name}" (${record.id}); it is shown only now:`,
      );
      console.log(secret);
    } finally {
      await db.close();
    }
  });

token.command("list").action(async () => {
  const db = await openDatabase(requireDatabase());
  try {
    for (const t of await new TokenService(db).list())
      console.log(
        [
          t.id,
          t.prefix,
          t.role,
          t.name,
          t.revokedAt ? `revoked ${t.revokedAt.toISOString()}` : "active",
        ].join("\t"),
      );
  } finally {
    await db.close();
  }
});

token.command("revoke <id>").action(async (id: string) => {
  const db = await openDatabase(requireDatabase());
  try {
    const revoked = await new TokenService(db).revoke(id);
    if (!revoked) {
      console.error(`no token ${id}`);
      process.exitCode = 1;
    } else console.log(`revoked ${revoked.name}`);
  } finally {
    await db.close();
  }
});

program.addCommand(schedulesCommand({ requireDatabase, config: configFromEnv }));

program
  .command("print-schema")
  .description("print the GraphQL schema (SDL)")
  .action(async () => {
    const { printedSchema } = await import("./schema/index.js");
    process.stdout.write(`${printedSchema()}\n`);
  });

program.parseAsync().catch((error) => {
  pino({ name: "celeriac-server" }).fatal({ err: error }, "failed");
  process.exit(1);
});
