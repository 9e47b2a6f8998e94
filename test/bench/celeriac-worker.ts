/**
 * One Celeriac worker process for the benchmark. Modes:
 * - `throughput`: run until N no-op tasks have succeeded, print the elapsed time;
 * - `latency`: tasks carry their send time; print enqueue-to-start percentiles after N;
 * - `counter`: each task does one Redis INCR (for comparisons where the peer runs elsewhere).
 */
import { Redis } from "ioredis";
import { pino } from "pino";
import { createApp, createWorker } from "../../sdk/src/index.js";

const [
  mode = "throughput",
  brokerUrl = "",
  backendUrl = "",
  queue = "bench",
  n = "10000",
  concurrency = "100",
] = process.argv.slice(2);
const total = Number(n);
const app = createApp({
  broker: brokerUrl,
  resultBackend: backendUrl || null,
  defaultQueue: queue,
});
const now = () => performance.timeOrigin + performance.now();
const delays: number[] = [];
const counter =
  mode === "counter" ? new Redis(backendUrl || "redis://127.0.0.1:6379/15") : undefined;

app.task("bench.noop", () => null);
app.task("bench.latency", (_ctx, sentAt: number) => {
  delays.push(now() - sentAt);
  return null;
});
app.task("bench.count", async () => {
  await counter?.incr("bench:done");
  return null;
});

const worker = await createWorker(app, {
  concurrency: Number(concurrency),
  logger: pino({ level: "warn" }),
  withoutHeartbeat: true,
  control: false,
  // `--events` (-E): every task sends task-received/started/succeeded, as monitors need.
  taskEvents: process.env.BENCH_TASK_EVENTS === "1",
});
let done = 0;
let started = 0;
let cpuAtStart = process.cpuUsage();
// Poll the worker's own counters: listening to task events would make the worker build them.
// Done once every run has ended and been completed (results stored, messages settled), as
// BullMQ's `completed` comes after it stored a job's return value.
const poll = setInterval(() => {
  done = worker.processedTotal();
  if (done >= total && worker.activeCount === 0) {
    clearInterval(poll);
    finish();
  }
}, 2);

function percentile(sorted: number[], p: number) {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? 0;
}

/** Milliseconds of this process's CPU since the clock started. */
function cpuMs() {
  const { user, system } = process.cpuUsage(cpuAtStart);
  return (user + system) / 1000;
}

function finish() {
  const elapsed = now() - started;
  const sorted = [...delays].sort((a, b) => a - b);
  process.stdout.write(
    `${JSON.stringify({ done, elapsedMs: elapsed, cpuMs: cpuMs(), p50: percentile(sorted, 50), p99: percentile(sorted, 99), max: sorted[sorted.length - 1] ?? 0 })}\n`,
  );
  void worker
    .stop({ force: true })
    .then(() => app.close())
    .then(() => process.exit(0));
}

await app.connect();
started = now();
cpuAtStart = process.cpuUsage();
await worker.start();
process.stdout.write("ready\n");
