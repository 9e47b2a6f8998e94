/**
 * `celeriac`: run workers, send tasks, purge queues.
 */
import path from "node:path";
import { Command, InvalidArgumentError, Option } from "commander";
import { type App, createApp } from "../app.js";
import { CeleriacError } from "../errors.js";
import { control, INSPECT_METHODS, type InspectMethod, inspect, streamEvents } from "./control.js";
import { loadApp } from "./load-app.js";
import { runWorker } from "./worker.js";

function int(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0)
    throw new InvalidArgumentError("expected a non-negative integer");
  return n;
}

function num(value: string): number {
  const n = Number(value);
  if (!Number.isFinite(n)) throw new InvalidArgumentError("expected a number");
  return n;
}

function json(value: string): unknown {
  try {
    return JSON.parse(value);
  } catch {
    throw new InvalidArgumentError(`not valid JSON: ${value}`);
  }
}

const list = (value: string) =>
  value
    .split(",")
    .map((s) => s.trim())
    .filter(Boolean);

const brokerOption = () =>
  new Option("-b, --broker <url>", "broker URL (env BROKER_URL)").env("BROKER_URL");
const backendOption = () =>
  new Option("--result-backend <url>", "result backend URL (env RESULT_BACKEND)").env(
    "RESULT_BACKEND",
  );

/** The app of `--app`, or a bare one; `--broker` and `--result-backend` override its URLs. */
async function appFrom(opts: {
  app?: string;
  broker?: string;
  resultBackend?: string;
}): Promise<App> {
  const app = opts.app ? await loadApp(opts.app) : createApp();
  app.configure({
    ...(opts.broker ? { broker: opts.broker } : {}),
    ...(opts.resultBackend ? { resultBackend: opts.resultBackend } : {}),
  });
  return app;
}

const program = new Command("celeriac")
  .description("Celeriac: typed tasks over Celery's protocol")
  .showHelpAfterError();

program
  .command("worker")
  .description("run a worker for the tasks of an app module")
  .requiredOption("-A, --app <module>", "module exporting the app (.ts or .js)")
  .addOption(brokerOption())
  .addOption(backendOption())
  .option("-c, --concurrency <n>", "tasks run at once (default: CPUs)", int)
  .option("--prefetch-multiplier <n>", "messages fetched ahead per slot (default 4)", int)
  .option("-Q, --queues <names>", "comma-separated queues to consume (default: celery)", list)
  .option("-n, --hostname <name>", "node name, name@host (%h = host name)")
  .option("-l, --loglevel <level>", "trace, debug, info, warn, error", "info")
  .option("--shutdown-timeout <seconds>", "warm shutdown wait for running tasks (default 60)", num)
  .option("--time-limit <seconds>", "hard time limit for tasks without one", num)
  .option("--soft-time-limit <seconds>", "soft time limit for tasks without one", num)
  .option("-P, --pool <kind>", "async (default), threads or processes")
  .option("--max-tasks-per-child <n>", "replace a thread/process after this many tasks", int)
  .option(
    "--max-memory-per-child <kib>",
    "replace a thread/process past this resident memory (KiB)",
    int,
  )
  .option("-E, --events", "publish task events (worker events are always sent)")
  .option("--heartbeat-interval <seconds>", "seconds between worker heartbeats (default 2)", num)
  .option("--without-heartbeat", "send no worker events")
  .option("-S, --statedb <path>", "keep revoked ids in this file across restarts")
  .option(
    "--ship-logs [level]",
    "publish log records on the broker as celeriac-log events, at this level and up (default info)",
  )
  .action(async (opts) => {
    const app = await appFrom(opts);
    await runWorker(app, {
      ...(opts.concurrency !== undefined ? { concurrency: opts.concurrency } : {}),
      ...(opts.prefetchMultiplier !== undefined
        ? { prefetchMultiplier: opts.prefetchMultiplier }
        : {}),
      ...(opts.queues ? { queues: opts.queues } : {}),
      ...(opts.hostname ? { hostname: opts.hostname } : {}),
      ...(opts.shutdownTimeout !== undefined ? { shutdownTimeout: opts.shutdownTimeout } : {}),
      ...(opts.timeLimit !== undefined ? { timeLimit: opts.timeLimit } : {}),
      ...(opts.softTimeLimit !== undefined ? { softTimeLimit: opts.softTimeLimit } : {}),
      logLevel: String(opts.loglevel).toLowerCase(),
      taskEvents: Boolean(opts.events),
      ...(opts.pool ? { pool: opts.pool, appModule: path.resolve(opts.app) } : {}),
      ...(opts.maxTasksPerChild !== undefined ? { maxTasksPerChild: opts.maxTasksPerChild } : {}),
      ...(opts.maxMemoryPerChild !== undefined
        ? { maxMemoryPerChild: opts.maxMemoryPerChild }
        : {}),
      ...(opts.heartbeatInterval !== undefined
        ? { heartbeatInterval: opts.heartbeatInterval }
        : {}),
      ...(opts.withoutHeartbeat ? { withoutHeartbeat: true } : {}),
      ...(opts.statedb ? { stateDb: opts.statedb } : {}),
      ...(opts.shipLogs ? { shipLogs: opts.shipLogs === true ? true : opts.shipLogs } : {}),
    });
  });

/** Options shared by the commands that talk to workers. */
function addressed(cmd: Command): Command {
  return cmd
    .option("-A, --app <module>", "module exporting the app (for its settings)")
    .addOption(brokerOption())
    .option("-d, --destination <nodes>", "comma-separated node names (default: all workers)", list)
    .option("-t, --timeout <seconds>", "seconds to wait for replies (default 1)", num)
    .option("-j, --json", "print replies as JSON");
}

/** Run a command against an app and exit with its status. */
async function withApp(
  opts: { app?: string; broker?: string },
  fn: (app: App) => Promise<number>,
): Promise<void> {
  const app = await appFrom(opts);
  let code = 1;
  try {
    code = await fn(app);
  } finally {
    await app.close();
  }
  process.exitCode = code;
}

addressed(
  program
    .command("inspect")
    .description(`ask workers about themselves: ${INSPECT_METHODS.join(", ")}`)
    .argument("<method>", "what to ask")
    .action(async (method: string, opts) => {
      if (!(INSPECT_METHODS as readonly string[]).includes(method)) {
        throw new CeleriacError(
          "INVALID_ARGUMENTS",
          `unknown inspect method ${method}; use one of ${INSPECT_METHODS.join(", ")}`,
        );
      }
      await withApp(opts, (app) => inspect(app, method as InspectMethod, opts));
    }),
);

const controlCommand = program.command("control").description("steer workers");
const steer = (
  name: string,
  description: string,
  build: (args: string[], opts: Record<string, unknown>) => Record<string, unknown>,
  usage = "",
) => {
  const cmd = controlCommand.command(`${name}${usage ? ` ${usage}` : ""}`).description(description);
  addressed(cmd).action(async (...params: unknown[]) => {
    const command = params[params.length - 1] as Command;
    const opts = command.opts();
    const args = command.args;
    await withApp(opts, (app) => control(app, name, build(args, opts), opts));
  });
  return cmd;
};
steer(
  "revoke",
  "revoke tasks (with --terminate, stop them if running)",
  (args, o) => ({ task_id: args, terminate: Boolean(o.terminate), signal: o.signal ?? "SIGTERM" }),
  "<ids...>",
)
  .option("--terminate", "stop the task if it is running")
  .option("-s, --signal <name>", "signal for --terminate (default SIGTERM)");
/** `SIGKILL`, `KILL` or `9`: what Celery's `terminate <signal> <ids…>` takes first. */
const isSignal = (word: string | undefined) =>
  word !== undefined && (/^SIG[A-Z0-9]+$/i.test(word) || /^[0-9]{1,2}$/.test(word));
steer(
  "terminate",
  "stop running tasks; the signal may come first, as in Celery (terminate SIGKILL <ids...>)",
  (args, o) =>
    isSignal(args[0]) && args.length > 1
      ? { task_id: args.slice(1), signal: o.signal ?? args[0] }
      : { task_id: args, signal: o.signal ?? "SIGTERM" },
  "<ids...>",
).option("-s, --signal <name>", "signal (default SIGTERM)");
steer(
  "rate_limit",
  "set a task type's rate limit, e.g. 10/s (0 removes it)",
  (args, o) => ({ task_name: args[0], rate_limit: args[1], ...(o.global ? { global: true } : {}) }),
  "<task> <rate>",
).option("--global", "the fleet-wide limit the workers share through Redis (globalRateLimit)");
steer(
  "time_limit",
  "set a task type's soft and hard time limits (seconds)",
  (args) => ({
    task_name: args[0],
    soft: args[1] === undefined ? null : Number(args[1]),
    hard: args[2] === undefined ? null : Number(args[2]),
  }),
  "<task> <soft> [hard]",
);
steer("shutdown", "shut workers down (warm)", () => ({}));
steer("pool_grow", "run N more tasks at once", (args) => ({ n: Number(args[0] ?? 1) }), "[n]");
steer("pool_shrink", "run N fewer tasks at once", (args) => ({ n: Number(args[0] ?? 1) }), "[n]");
steer("add_consumer", "start consuming a queue", (args) => ({ queue: args[0] }), "<queue>");
steer("cancel_consumer", "stop consuming a queue", (args) => ({ queue: args[0] }), "<queue>");
steer("enable_events", "turn task events on", () => ({}));
steer("disable_events", "turn task events off", () => ({}));

program
  .command("events")
  .description("print the live event stream of every worker")
  .option("-A, --app <module>", "module exporting the app (for its settings)")
  .addOption(brokerOption())
  .option("-j, --json", "one JSON object per line")
  .action(async (opts) => {
    const app = await appFrom(opts);
    try {
      await streamEvents(app, opts);
    } finally {
      await app.close();
    }
  });

program
  .command("send")
  .description("send a task by name and print its id (and its result with --wait)")
  .argument("<task>", "task name, e.g. tasks.add")
  .option("-A, --app <module>", "module exporting the app (for its settings)")
  .addOption(brokerOption())
  .addOption(backendOption())
  .option("-a, --args <json>", "positional arguments, a JSON array", json, [])
  .option("-k, --kwargs <json>", "keyword arguments, a JSON object", json, {})
  .option("--countdown <seconds>", "run no earlier than this many seconds from now", num)
  .option("--expires <seconds>", "discard if not started within this many seconds", num)
  .option("--priority <n>", "message priority 0-9", int)
  .option("-q, --queue <name>", "queue to send to")
  .option("-w, --wait", "wait for the result and print it")
  .option("--timeout <seconds>", "with --wait: give up after this many seconds", num)
  .action(async (task: string, opts) => {
    if (!Array.isArray(opts.args))
      throw new CeleriacError("INVALID_ARGUMENTS", "--args must be a JSON array");
    if (opts.kwargs === null || typeof opts.kwargs !== "object" || Array.isArray(opts.kwargs)) {
      throw new CeleriacError("INVALID_ARGUMENTS", "--kwargs must be a JSON object");
    }
    const app = await appFrom(opts);
    try {
      const result = await app.sendTask(task, opts.args, opts.kwargs, {
        ...(opts.countdown !== undefined ? { countdown: opts.countdown } : {}),
        ...(opts.expires !== undefined ? { expires: opts.expires } : {}),
        ...(opts.priority !== undefined ? { priority: opts.priority } : {}),
        ...(opts.queue ? { queue: opts.queue } : {}),
      });
      process.stdout.write(`${result.id}\n`);
      if (opts.wait) {
        const value = await result.get(opts.timeout !== undefined ? { timeout: opts.timeout } : {});
        process.stdout.write(`${JSON.stringify(value)}\n`);
      }
    } finally {
      await app.close();
    }
  });

program
  .command("purge")
  .description("delete every waiting message of the queues")
  .option("-A, --app <module>", "module exporting the app (for its settings)")
  .addOption(brokerOption())
  .option("-Q, --queues <names>", "comma-separated queues (default: celery)", list)
  .option("-q, --queue <name>", "one queue (the same as --queues with one name)")
  .action(async (opts) => {
    const app = await appFrom(opts);
    try {
      const { broker } = await app.connect();
      const queues: string[] = [...(opts.queues ?? []), ...(opts.queue ? [opts.queue] : [])];
      for (const queue of queues.length ? queues : [app.options.defaultQueue]) {
        const n = await broker.purge(queue);
        process.stdout.write(`purged ${n} message${n === 1 ? "" : "s"} from ${queue}\n`);
      }
    } finally {
      await app.close();
    }
  });

program.parseAsync(process.argv).catch((error: unknown) => {
  const message =
    error instanceof CeleriacError
      ? `${error.code}: ${error.message}`
      : error instanceof Error
        ? error.message
        : String(error);
  process.stderr.write(`celeriac: ${message}\n`);
  process.exit(1);
});
