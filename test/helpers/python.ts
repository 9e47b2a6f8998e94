/**
 * Real Python Celery for the interop suites: start and stop a Celery 5 worker, and drive Celery
 * as a producer, controller or event monitor through test/interop/python/driver.py.
 */
import { execFile } from "node:child_process";
import path from "node:path";
import { promisify } from "node:util";
import { kill, startUntil, stopWithin } from "./processes.js";

const run = promisify(execFile);
export const PYTHON = "/usr/bin/python3";
export const PYTHON_DIR = path.resolve("test/interop/python");

/** Where the Python side connects, as its env: BROKER, BACKEND, QUEUE, MAX_PRIORITY. */
export interface PythonSide {
  broker: string;
  backend: string;
  queue?: string;
  maxPriority?: number;
}

function env(side: PythonSide): NodeJS.ProcessEnv {
  return {
    BROKER: side.broker.replace(/^amqp:/, "pyamqp:"),
    BACKEND: side.backend,
    ...(side.queue ? { QUEUE: side.queue } : {}),
    ...(side.maxPriority ? { MAX_PRIORITY: String(side.maxPriority) } : {}),
  };
}

export async function requirePythonCelery(): Promise<void> {
  try {
    await run(PYTHON, ["-c", "import celery, redis, amqp"]);
  } catch {
    throw new Error(
      "Python Celery is not installed: apt-get install -y python3-celery python3-redis python3-amqp",
    );
  }
}

/** Run one driver command and return its JSON answer. */
export async function py<T = Record<string, unknown>>(
  side: PythonSide,
  command: Record<string, unknown>,
  timeoutMs = 60_000,
): Promise<T> {
  const { stdout } = await run(PYTHON, ["driver.py", JSON.stringify(command)], {
    cwd: PYTHON_DIR,
    env: { ...process.env, ...env(side) },
    timeout: timeoutMs,
    maxBuffer: 64 * 1024 * 1024,
  });
  return JSON.parse(stdout.trim().split("\n").pop() ?? "{}") as T;
}

export interface RunningWorker {
  hostname: string;
  output(): string;
  stop(): Promise<void>;
  kill(): Promise<void>;
}

/** A real Celery worker (`celery -A interop_tasks worker`), ready when it says so. */
export async function startPythonWorker(
  side: PythonSide,
  name: string,
  queues: string[],
  { concurrency = 2, extra = [] as string[] } = {},
): Promise<RunningWorker> {
  const hostname = `${name}@${(await run("hostname")).stdout.trim()}`;
  const started = await startUntil(
    PYTHON,
    [
      "-m",
      "celery",
      "-A",
      "interop_tasks",
      "worker",
      "-E",
      "-l",
      "INFO",
      "-c",
      String(concurrency),
      "-n",
      hostname,
      "--without-mingle",
      "--without-gossip",
      "-Q",
      queues.join(","),
      ...extra,
    ],
    /ready\./,
    { cwd: PYTHON_DIR, env: env(side), timeoutMs: 30_000 },
  );
  return {
    hostname,
    output: started.output,
    // Celery 5.2.6 on RabbitMQ now and then hangs after logging "Warm shutdown" with nothing left
    // to run: it is killed (and named on stderr) rather than failing the suite that used it.
    stop: async () => {
      await stopWithin(started, `Python worker ${hostname}`);
    },
    kill: () => kill(started.proc, "SIGKILL"),
  };
}

/** Our worker, as users run it: the CLI on the interop fixture app. */
export async function startCeleriacWorker(
  side: PythonSide,
  name: string,
  queues: string[],
  { concurrency = 4, extra = [] as string[] } = {},
): Promise<RunningWorker> {
  const hostname = `${name}@${(await run("hostname")).stdout.trim()}`;
  const started = await startUntil(
    "node",
    [
      "sdk/bin/celeriac.mjs",
      "worker",
      "--app",
      "test/interop/fixtures/interop-app.ts",
      "--broker",
      side.broker,
      "--result-backend",
      side.backend,
      "-Q",
      queues.join(","),
      "-n",
      hostname,
      "-c",
      String(concurrency),
      "-E",
      ...extra,
    ],
    /ready/,
    { env: side.maxPriority ? { MAX_PRIORITY: String(side.maxPriority) } : {}, timeoutMs: 30_000 },
  );
  return {
    hostname,
    output: started.output,
    // Ours must stop by itself: a warm shutdown that hangs is a bug the teardown reports.
    stop: async () => {
      if (!(await stopWithin(started, `Celeriac worker ${hostname}`)))
        throw new Error(`Celeriac worker ${hostname} did not stop within 15 s of SIGTERM`);
    },
    kill: () => kill(started.proc, "SIGKILL"),
  };
}
