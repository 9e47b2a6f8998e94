/** One BullMQ worker process for the benchmark, the same modes as celeriac-worker.ts. */
import { Worker } from "bullmq";
import { Redis } from "ioredis";

const [mode = "throughput", redisUrl = "", queue = "bench", n = "10000", concurrency = "100"] =
  process.argv.slice(2);
const total = Number(n);
const now = () => performance.timeOrigin + performance.now();
const delays: number[] = [];
const connection = new Redis(redisUrl, { maxRetriesPerRequest: null });
let done = 0;
const started = now();
const cpuAtStart = process.cpuUsage();

const worker = new Worker(
  queue,
  async (job) => {
    if (mode === "latency") delays.push(now() - (job.data as { sentAt: number }).sentAt);
    return null;
  },
  { connection, concurrency: Number(concurrency) },
);

/** Milliseconds of this process's CPU since the clock started. */
function cpuMs() {
  const { user, system } = process.cpuUsage(cpuAtStart);
  return (user + system) / 1000;
}

worker.on("completed", () => {
  done++;
  if (done !== total) return;
  const elapsed = now() - started;
  const sorted = [...delays].sort((a, b) => a - b);
  const pick = (p: number) =>
    sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? 0;
  process.stdout.write(
    `${JSON.stringify({ done, elapsedMs: elapsed, cpuMs: cpuMs(), p50: pick(50), p99: pick(99), max: sorted[sorted.length - 1] ?? 0 })}\n`,
  );
  void worker.close().then(() => process.exit(0));
});
await worker.waitUntilReady();
process.stdout.write("ready\n");
