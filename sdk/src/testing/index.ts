/**
 * Test helpers for users' code: run tasks in-process on the memory broker and wait for the
 * queues to settle, or call a handler directly with a real context.
 *
 * @example
 * const { app, worker, drain } = await startTestWorker(myApp);
 * await myTask.delay(1, 2);
 * await drain();
 */
import { randomUUID } from "node:crypto";
import { pino } from "pino";
import type { App, Task } from "../app.js";
import { MemoryBackend } from "../backends/memory/backend.js";
import { MemoryBroker } from "../brokers/memory/broker.js";
import { buildTaskMessage } from "../producer/message-builder.js";
import type { SendOptions } from "../producer/options.js";
import { decodeTaskMessage, encodeTaskMessage } from "../protocol/message.js";
import type { Kwargs } from "../task.js";
import { Cancellation } from "../worker/cancellation.js";
import { type ExecutorEnv, execute, type Outcome } from "../worker/executor.js";
import type { WorkerOptions } from "../worker/options.js";
import { Request } from "../worker/request.js";
import { createWorker, type Worker } from "../worker/worker.js";

export interface TestWorker {
  app: App;
  worker: Worker;
  /** Resolve once no message waits in the worker's queues and no task runs or is held. */
  drain(options?: { timeout?: number }): Promise<void>;
  stop(): Promise<void>;
}

/**
 * Point an app at a private in-memory broker and result backend, and start a silent worker on
 * it. Use before the app's first send.
 */
export async function startTestWorker(app: App, options: WorkerOptions = {}): Promise<TestWorker> {
  const name = `test-${randomUUID()}`;
  const broker = new MemoryBroker(`memory://${name}`);
  app.configure({ broker, resultBackend: new MemoryBackend(`memory://${name}`) });
  const worker = await createWorker(app, {
    concurrency: 4,
    logger: pino({ level: "silent" }),
    ...options,
  });
  await worker.start();
  const idle = async () => {
    for (const q of worker.queues)
      if (((await broker.inspectQueue(q))?.messages ?? 0) > 0) return false;
    return worker.active.size === 0 && worker.waiting.length === 0 && worker.scheduled.size === 0;
  };
  return {
    app,
    worker,
    async drain({ timeout = 10_000 } = {}) {
      const deadline = Date.now() + timeout;
      // Two idle looks in a row: a finishing task may still send a follow-up (retry, link).
      let streak = 0;
      while (streak < 2) {
        if (Date.now() > deadline)
          throw new Error(`the test worker did not drain within ${timeout} ms`);
        streak = (await idle()) ? streak + 1 : 0;
        await new Promise((r) => setTimeout(r, 5));
      }
    },
    async stop() {
      await worker.stop({ force: true });
      await app.close();
    },
  };
}

/**
 * Run a task's handler once, in this process, with a real context, and return how it ended
 * (success, failure, retry, reject, ignore), without any broker. Retries are reported, not sent.
 */
export async function applyTask<A extends unknown[], R, K extends Kwargs>(
  task: Task<A, R, K>,
  args: A,
  options: SendOptions<K> & { retries?: number } = {},
): Promise<Outcome> {
  const registered = task.app.registry.get(task.name);
  if (!registered) throw new Error(`task ${task.name} is not registered on its app`);
  const message = buildTaskMessage(task.name, args, options, { origin: "test", replyTo: "" });
  const decoded = decodeTaskMessage(encodeTaskMessage(message));
  const delivery = {
    message: encodeTaskMessage(message),
    deliveryTag: randomUUID(),
    exchange: "",
    routingKey: options.queue ?? "celery",
    queue: options.queue ?? "celery",
    redelivered: false,
    ack: async () => {},
    reject: async () => {},
  };
  const env: ExecutorEnv = {
    app: task.app,
    hostname: "test@localhost",
    logger: pino({ level: "silent" }),
    timeLimit: undefined,
    softTimeLimit: undefined,
  };
  const { outcome, hooks } = await execute(
    new Request(decoded, delivery),
    registered,
    env,
    new Cancellation(),
  );
  // Nothing to store here: the hooks run right away.
  await hooks();
  return outcome;
}
