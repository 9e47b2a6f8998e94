/**
 * A pool child: loads the app module, then runs one task at a time for the worker and reports
 * each outcome with its memory use. The worker owns the broker delivery; the child only runs.
 */
import { isMainThread, parentPort, workerData } from "node:worker_threads";
import { pino } from "pino";
import { loadApp } from "../../../cli/load-app.js";
import { forwardingStream } from "../../../logs/relay.js";
import { decodeTaskMessage, encodeTaskMessage } from "../../../protocol/message.js";
import { Cancellation } from "../../cancellation.js";
import { type ExecutorEnv, execute, noHooks } from "../../executor.js";
import { Request } from "../../request.js";
import {
  type ChildMessage,
  type ParentMessage,
  type RunMessage,
  serializeError,
  serializeOutcome,
} from "./protocol.js";
import type { ChildConfig } from "./transport.js";

const inThread = !isMainThread;
const config = (
  inThread ? workerData : JSON.parse(process.env.CELERIAC_POOL_CHILD ?? "{}")
) as ChildConfig;

function send(message: ChildMessage): void {
  if (inThread) parentPort?.postMessage(message);
  else process.send?.(message);
}

/**
 * Threads share the process's resident memory; what a thread can answer for is its own heap plus
 * what its objects hold outside it (buffers). Processes report their resident size.
 */
function memoryKiB(): number {
  const m = process.memoryUsage();
  return Math.round((inThread ? m.heapUsed + m.external : m.rss) / 1024);
}

async function main(): Promise<void> {
  const app = await loadApp(config.appModule);
  app.configure({
    ...(config.broker ? { broker: config.broker } : {}),
    ...(config.resultBackend !== undefined ? { resultBackend: config.resultBackend } : {}),
    ...(config.defaultQueue ? { defaultQueue: config.defaultQueue } : {}),
  });
  const env: ExecutorEnv = {
    app,
    hostname: config.hostname,
    // Records go up to the worker, which adds its name and writes them where its own go.
    logger: pino(
      { level: config.logLevel, base: { pid: process.pid } },
      forwardingStream((line) => send({ type: "log", line })),
    ),
    timeLimit: undefined,
    softTimeLimit: undefined,
  };
  /** Resolved by the worker's HooksMessage once it has stored the outcome of the task just run. */
  let hooksCalled: ((skip: boolean) => void) | undefined;
  const onRun = async (run: RunMessage) => {
    const message = decodeTaskMessage(encodeTaskMessage(run.message));
    const noop = async () => {};
    const request = new Request(message, {
      message: encodeTaskMessage(run.message),
      deliveryTag: "",
      ...run.delivery,
      ack: noop,
      reject: noop,
    });
    const registered = app.registry.get(request.name);
    if (!registered)
      throw new Error(`task ${request.name} is not registered in ${config.appModule}`);
    // The worker enforces the hard limit (it can stop this child); only the soft one runs here.
    const task = {
      ...registered,
      options: { ...registered.options, timeLimit: undefined, softTimeLimit: run.softTimeLimit },
    };
    const { outcome, hooks } = await execute(request, task, env, new Cancellation());
    const serialized = serializeOutcome(outcome);
    if (hooks === noHooks) {
      send({ type: "outcome", outcome: serialized, memoryKiB: memoryKiB() });
      return;
    }
    // The task's hooks run once the worker has stored its outcome, as Celery's tracer runs them.
    const called = new Promise<boolean>((resolve) => {
      hooksCalled = resolve;
    });
    send({ type: "outcome", outcome: serialized, memoryKiB: memoryKiB(), hooks: true });
    await hooks(await called).catch(() => {});
    send({ type: "hooks-done", memoryKiB: memoryKiB() });
  };
  const handle = (m: unknown) => {
    const message = m as ParentMessage;
    if (message?.type === "hooks") {
      const call = hooksCalled;
      hooksCalled = undefined;
      call?.(message.skip);
      return;
    }
    if (message?.type !== "run") return;
    // Whatever goes wrong around the task is reported as its failure, never as a dead child.
    onRun(m as RunMessage).catch((error: unknown) => {
      send({
        type: "outcome",
        outcome: { kind: "failure", error: serializeError(error), runtime: 0 },
        memoryKiB: memoryKiB(),
      });
    });
  };
  if (inThread) parentPort?.on("message", handle);
  else {
    process.on("message", handle);
    // The worker is gone: so is its child.
    process.on("disconnect", () => process.exit(0));
  }
  send({ type: "ready" });
}

main().catch((error: unknown) => {
  send({
    type: "failed-to-start",
    error: error instanceof Error ? (error.stack ?? error.message) : String(error),
  });
  process.exitCode = 1;
});
