/**
 * `npm run bench`: Celeriac against its peers, measured in the same run on this machine.
 *
 * 1. Redis: N no-op tasks sent and processed end to end by one worker process (results stored,
 *    as BullMQ stores return values), then the same N queued beforehand and drained by the
 *    worker alone: Celeriac vs the latest BullMQ on the same Redis.
 * 2. Redis: enqueue-to-start latency at a steady 1,000 tasks/s, Celeriac vs BullMQ.
 * 3. RabbitMQ: N tasks sent and processed end to end, one Celeriac worker process vs a Python
 *    Celery 5 prefork worker with 2 processes, same producer, each task doing one Redis INCR.
 *
 * Options: --n 20000 (tasks per run), --concurrency 100 (Celeriac and BullMQ), --skip-amqp.
 */
import { type ChildProcess, spawn } from "node:child_process";
import os from "node:os";
import path from "node:path";
import { Queue } from "bullmq";
import { Redis } from "ioredis";
import { createApp, EventReceiver } from "../../sdk/src/index.js";

const args = process.argv.slice(2);
const flag = (name: string, fallback: string) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? (args[i + 1] ?? fallback) : fallback;
};
const N = Number(flag("n", "20000"));
const CONCURRENCY = flag("concurrency", "100");
const REDIS = process.env.BENCH_REDIS ?? "redis://127.0.0.1:6379";
const AMQP = process.env.BENCH_AMQP ?? "amqp://guest:guest@127.0.0.1:5672//";
const db = (n: number) => `${REDIS}/${n}`;
const now = () => performance.timeOrigin + performance.now();
const children = new Set<ChildProcess>();
process.on("exit", () => {
  for (const c of children) c.kill("SIGKILL");
});

interface ChildResult {
  done: number;
  elapsedMs: number;
  /** The worker process's CPU over the run: a figure that other load on the machine moves less. */
  cpuMs: number;
  p50: number;
  p99: number;
  max: number;
}

/** Start a child; resolves `ready` when it says so, and `result` with its JSON line. */
function child(
  command: string,
  argv: string[],
  options: { cwd?: string; env?: NodeJS.ProcessEnv } = {},
) {
  const proc = spawn(command, argv, {
    cwd: options.cwd,
    env: { ...process.env, ...options.env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  children.add(proc);
  let out = "";
  let err = "";
  let onReady: () => void = () => {};
  const ready = new Promise<void>((r) => {
    onReady = r;
  });
  const result = new Promise<ChildResult>((resolve, reject) => {
    proc.stdout.on("data", (chunk: Buffer) => {
      out += chunk.toString();
      if (/ready/.test(out)) onReady();
      const line = out.split("\n").find((l) => l.startsWith("{"));
      if (line) resolve(JSON.parse(line) as ChildResult);
    });
    proc.stderr.on("data", (chunk: Buffer) => {
      err += chunk.toString();
      if (/ready\./.test(err)) onReady();
    });
    proc.once("exit", (code) => {
      children.delete(proc);
      if (code !== 0 && code !== null)
        reject(new Error(`${command} exited ${code}:\n${err.slice(-2000)}`));
    });
  });
  return { proc, ready, result };
}

const tsx = (file: string, argv: string[], env: NodeJS.ProcessEnv = {}) =>
  child("node", ["--import", "tsx", path.join("test/bench", file), ...argv], { env });

async function flush(url: string) {
  const r = new Redis(url);
  await r.flushdb();
  r.disconnect();
}

/** Tasks per second, and the worker's CPU per task in microseconds. */
interface Drain {
  rate: number;
  cpuUs: number;
}

const drained = (r: ChildResult): Drain => ({
  rate: (N / r.elapsedMs) * 1000,
  cpuUs: (r.cpuMs * 1000) / N,
});

async function celeriacDrain(taskEvents = false): Promise<Drain> {
  const url = db(11);
  await flush(url);
  const app = createApp({ broker: url, resultBackend: url, defaultQueue: "bench" });
  const sends: Promise<unknown>[] = [];
  for (let i = 0; i < N; i++) sends.push(app.sendTask("bench.noop"));
  await Promise.all(sends);
  await app.close();
  // With events on, a monitor listens, as the control plane or Flower would.
  const receiver = taskEvents ? await listen(url) : undefined;
  const { result } = tsx(
    "celeriac-worker.ts",
    ["throughput", url, url, "bench", String(N), CONCURRENCY],
    taskEvents ? { BENCH_TASK_EVENTS: "1" } : {},
  );
  const r = await result;
  if (receiver) {
    await new Promise((res) => setTimeout(res, 500));
    await receiver.stop();
    console.log(`   (the monitor received ${fmt(receiver.count)} task events)`);
  }
  return drained(r);
}

async function listen(url: string) {
  const monitor = createApp({ broker: url, resultBackend: null });
  const receiver = new EventReceiver((await monitor.connect()).broker, { bindingKey: "task.#" });
  let count = 0;
  receiver.on("event", () => {
    count++;
  });
  await receiver.start();
  return {
    get count() {
      return count;
    },
    async stop() {
      await receiver.stop();
      await monitor.close();
    },
  };
}

async function bullmqDrain(): Promise<Drain> {
  const url = db(12);
  await flush(url);
  const connection = new Redis(url, { maxRetriesPerRequest: null });
  const queue = new Queue("bench", { connection });
  for (let i = 0; i < N; i += 1000)
    await queue.addBulk(
      Array.from({ length: Math.min(1000, N - i) }, () => ({ name: "noop", data: {} })),
    );
  await queue.close();
  connection.disconnect();
  const { result } = tsx("bullmq-worker.ts", ["throughput", url, "bench", String(N), CONCURRENCY]);
  return drained(await result);
}

/**
 * Start a worker process on an empty queue, then send N no-op tasks from this process (each
 * library's single-send call, all in flight at once) and time until the worker has completed
 * every one: sending and processing together, the producer and the worker running side by side.
 */
async function endToEnd(
  start: (queue: string) => ReturnType<typeof child>,
  connect: (queue: string) => Promise<{ send(): Promise<unknown>; close(): Promise<void> }>,
): Promise<number> {
  const queue = "bench-e2e";
  const worker = start(queue);
  await worker.ready;
  const producer = await connect(queue);
  const t0 = now();
  const sends: Promise<unknown>[] = [];
  for (let i = 0; i < N; i++) sends.push(producer.send());
  await Promise.all(sends);
  await worker.result;
  const rate = (N / (now() - t0)) * 1000;
  await producer.close();
  return rate;
}

async function celeriacEndToEnd(): Promise<number> {
  const url = db(11);
  await flush(url);
  return endToEnd(
    (queue) => tsx("celeriac-worker.ts", ["throughput", url, url, queue, String(N), CONCURRENCY]),
    async (queue) => {
      const app = createApp({ broker: url, resultBackend: url, defaultQueue: queue });
      await app.connect();
      return { send: () => app.sendTask("bench.noop"), close: () => app.close() };
    },
  );
}

async function bullmqEndToEnd(): Promise<number> {
  const url = db(12);
  await flush(url);
  return endToEnd(
    (queue) => tsx("bullmq-worker.ts", ["throughput", url, queue, String(N), CONCURRENCY]),
    async (queue) => {
      const connection = new Redis(url, { maxRetriesPerRequest: null });
      const q = new Queue(queue, { connection });
      await q.waitUntilReady();
      return {
        send: () => q.add("noop", {}),
        close: async () => {
          await q.close();
          connection.disconnect();
        },
      };
    },
  );
}

/** Send `rate` tasks a second for `seconds`, each carrying its send time. */
async function steady(rate: number, seconds: number, send: (sentAt: number) => Promise<unknown>) {
  const total = rate * seconds;
  const start = now();
  let sent = 0;
  const pending: Promise<unknown>[] = [];
  while (sent < total) {
    const due = Math.min(total, Math.floor(((now() - start) / 1000) * rate));
    while (sent < due) {
      pending.push(send(now()));
      sent++;
    }
    await new Promise((r) => setTimeout(r, 1));
  }
  await Promise.all(pending);
  return total;
}

async function celeriacLatency(rate: number, seconds: number): Promise<ChildResult> {
  const url = db(11);
  await flush(url);
  const worker = tsx("celeriac-worker.ts", [
    "latency",
    url,
    url,
    "bench-latency",
    String(rate * seconds),
    CONCURRENCY,
  ]);
  await worker.ready;
  const app = createApp({ broker: url, resultBackend: url, defaultQueue: "bench-latency" });
  await app.connect();
  await steady(rate, seconds, (sentAt) => app.sendTask("bench.latency", [sentAt]));
  const r = await worker.result;
  await app.close();
  return r;
}

async function bullmqLatency(rate: number, seconds: number): Promise<ChildResult> {
  const url = db(12);
  await flush(url);
  const worker = tsx("bullmq-worker.ts", [
    "latency",
    url,
    "bench-latency",
    String(rate * seconds),
    CONCURRENCY,
  ]);
  await worker.ready;
  const connection = new Redis(url, { maxRetriesPerRequest: null });
  const queue = new Queue("bench-latency", { connection });
  await steady(rate, seconds, (sentAt) => queue.add("latency", { sentAt }));
  const r = await worker.result;
  await queue.close();
  connection.disconnect();
  return r;
}

/** Start a worker on an empty queue, then send N tasks and time until each has done its INCR. */
async function amqpEndToEnd(start: (queue: string) => ReturnType<typeof child>): Promise<number> {
  const counterUrl = db(15);
  const counter = new Redis(counterUrl);
  await counter.del("bench:done");
  const queue = `bench-amqp-${Math.random().toString(36).slice(2, 8)}`;
  const app = createApp({ broker: AMQP, resultBackend: null, defaultQueue: queue });
  await app.connect();
  await app.connected.broker.declareQueue({ name: queue });
  const worker = start(queue);
  // Ready when it consumes the queue (Celery logs nothing at WARNING level when it is ready).
  while (((await app.connected.broker.inspectQueue(queue))?.consumers ?? 0) === 0)
    await new Promise((r) => setTimeout(r, 50));
  const t0 = now();
  const sends: Promise<unknown>[] = [];
  for (let i = 0; i < N; i++)
    sends.push(app.sendTask("bench.count", [], {}, { ignoreResult: true }));
  await Promise.all(sends);
  while (Number(await counter.get("bench:done")) < N) await new Promise((r) => setTimeout(r, 20));
  const rate = (N / (now() - t0)) * 1000;
  worker.proc.kill("SIGKILL");
  await app.connected.broker.deleteQueue(queue);
  await app.close();
  counter.disconnect();
  return rate;
}

const fmt = (n: number) => n.toLocaleString("en-US", { maximumFractionDigits: 0 });
const ms = (n: number) => n.toFixed(2);

async function main() {
  const cpus = os.cpus();
  console.log(
    `Celeriac benchmark — ${cpus.length} × ${cpus[0]?.model ?? "CPU"}, Node ${process.version}, N=${fmt(N)}, concurrency ${CONCURRENCY}`,
  );
  console.log(`reproduce: npm run bench -- --n ${N} --concurrency ${CONCURRENCY}\n`);

  console.log(
    "1. Redis, N no-op tasks sent and processed end to end by one worker process (results stored)",
  );
  const celE2e = await celeriacEndToEnd();
  const bullE2e = await bullmqEndToEnd();
  console.log(
    `   Celeriac ${fmt(celE2e)} tasks/s   BullMQ ${fmt(bullE2e)} tasks/s   ratio ${(celE2e / bullE2e).toFixed(2)}x`,
  );
  console.log("   the worker alone, draining N tasks queued beforehand:");
  const cel = await celeriacDrain();
  const bull = await bullmqDrain();
  console.log(
    `   Celeriac ${fmt(cel.rate)} tasks/s   BullMQ ${fmt(bull.rate)} tasks/s   ratio ${(cel.rate / bull.rate).toFixed(2)}x`,
  );
  console.log(
    `   worker CPU per task: Celeriac ${fmt(cel.cpuUs)} µs   BullMQ ${fmt(bull.cpuUs)} µs\n`,
  );

  console.log("2. Redis, the same drain by one Celeriac worker with task events on (-E), and off");
  const withEvents = await celeriacDrain(true);
  const withoutEvents = await celeriacDrain(false);
  console.log(
    `   events on ${fmt(withEvents.rate)} tasks/s (${fmt(withEvents.cpuUs)} µs CPU a task)   events off ${fmt(withoutEvents.rate)} tasks/s (${fmt(withoutEvents.cpuUs)} µs)   ratio ${(withEvents.rate / withoutEvents.rate).toFixed(2)}\n`,
  );

  console.log("3. Redis, enqueue-to-start latency at 1,000 tasks/s for 5 s");
  const cl = await celeriacLatency(1000, 5);
  const bl = await bullmqLatency(1000, 5);
  console.log(`   Celeriac p50 ${ms(cl.p50)} ms  p99 ${ms(cl.p99)} ms  max ${ms(cl.max)} ms`);
  console.log(`   BullMQ   p50 ${ms(bl.p50)} ms  p99 ${ms(bl.p99)} ms  max ${ms(bl.max)} ms\n`);

  if (!args.includes("--skip-amqp")) {
    console.log(
      "4. RabbitMQ, N tasks sent and processed end to end (each does one Redis INCR, no results)",
    );
    const ours = await amqpEndToEnd((queue) =>
      tsx("celeriac-worker.ts", ["counter", AMQP, "", queue, String(N * 10), CONCURRENCY]),
    );
    const python = await amqpEndToEnd((queue) =>
      child(
        "/usr/bin/python3",
        [
          "-m",
          "celery",
          "-A",
          "bench_tasks",
          "worker",
          "--pool",
          "prefork",
          "-c",
          "2",
          "-l",
          "WARNING",
          "-Q",
          queue,
          "--without-mingle",
          "--without-gossip",
          "--without-heartbeat",
        ],
        {
          cwd: "test/bench/python",
          env: { BROKER: AMQP.replace(/^amqp:/, "pyamqp:"), COUNTER: db(15) },
        },
      ),
    );
    console.log(
      `   Celeriac (1 process) ${fmt(ours)} tasks/s   Python Celery 5.2 (prefork, 2 processes) ${fmt(python)} tasks/s   ratio ${(ours / python).toFixed(2)}x\n`,
    );
  }
}

main().then(
  () => process.exit(0),
  (error) => {
    console.error(error);
    process.exit(1);
  },
);
