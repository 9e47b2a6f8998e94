/**
 * No lost work: late-acked tasks of a worker that is killed, or whose broker connections are cut,
 * run again. Counts every task: completed, lost, and run more than once (allowed: delivery is at
 * least once).
 */
import type { ChildProcess } from "node:child_process";
import { Redis } from "ioredis";
import { expect } from "vitest";
import { createApp } from "../../sdk/src/index.js";
import { kill, startUntil } from "../helpers/processes.js";
import { redisUrl, uniqueName } from "../helpers/services.js";

export const LEDGER_URL = redisUrl(14);

export interface FaultRun {
  sent: number;
  completed: number;
  lost: number;
  duplicates: number;
}

export interface FaultScenario {
  brokerUrl: string;
  tasks: number;
  /** What to do to the system while it works; called with the running worker, returns the worker to go on with. */
  disrupt(worker: ChildProcess, restart: () => Promise<ChildProcess>): Promise<ChildProcess>;
}

export function startWorker(brokerUrl: string, queue: string): Promise<ChildProcess> {
  return startUntil(
    "node",
    [
      "sdk/bin/celeriac.mjs",
      "worker",
      "--app",
      "test/integration/fixtures/fault-app.ts",
      "--broker",
      brokerUrl,
      "-Q",
      queue,
      "-c",
      "20",
      "-n",
      `${queue}@test`,
      "-l",
      "info",
    ],
    /ready/,
    { env: { FAULT_LEDGER_URL: LEDGER_URL, RESULT_BACKEND: "" } },
  ).then((s) => s.proc);
}

export async function runFaultScenario(scenario: FaultScenario): Promise<FaultRun> {
  const queue = uniqueName("faults");
  const run = uniqueName("run");
  const ledger = new Redis(LEDGER_URL);
  const producer = createApp({
    broker: scenario.brokerUrl,
    resultBackend: null,
    defaultQueue: queue,
  });
  let worker: ChildProcess | undefined;
  try {
    for (let i = 0; i < scenario.tasks; i++) await producer.sendTask("fault.record", [run, i, 20]);
    worker = await startWorker(scenario.brokerUrl, queue);
    worker = await scenario.disrupt(worker, () => startWorker(scenario.brokerUrl, queue));
    const deadline = Date.now() + 120_000;
    while ((await ledger.hlen(run)) < scenario.tasks && Date.now() < deadline)
      await new Promise((r) => setTimeout(r, 250));
    const counts = Object.values(await ledger.hgetall(run)).map(Number);
    const completed = counts.length;
    const result = {
      sent: scenario.tasks,
      completed,
      lost: scenario.tasks - completed,
      duplicates: counts.reduce((a, c) => a + c - 1, 0),
    };
    process.stdout.write(`fault run: ${JSON.stringify(result)}\n`);
    return result;
  } finally {
    if (worker) await kill(worker);
    await ledger.del(run);
    ledger.disconnect();
    const { broker } = await producer.connect();
    await broker.deleteQueue(queue).catch(() => {});
    await producer.close();
  }
}

/** SIGKILL the worker `times` times while it works, restarting it each time. */
export function killRepeatedly(times: number, everyMs: number) {
  return async (worker: ChildProcess, restart: () => Promise<ChildProcess>) => {
    let current = worker;
    for (let i = 0; i < times; i++) {
      await new Promise((r) => setTimeout(r, everyMs));
      await kill(current, "SIGKILL");
      current = await restart();
    }
    return current;
  };
}

export function expectNothingLost(result: FaultRun) {
  expect(result.lost).toBe(0);
  expect(result.completed).toBe(result.sent);
}
