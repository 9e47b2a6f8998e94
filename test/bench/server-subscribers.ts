/**
 * The subscribers of the control-plane benchmark, in a process of their own: S WebSocket
 * clients speaking graphql-transport-ws, subscribed to `taskEventBatches` as the dashboard's
 * live table is. They take each message's send times straight from the raw frame, without
 * parsing it: one process stands in for S browsers here, and parsing S copies of every batch
 * would measure this harness rather than the server. On SIGUSR2 they print per-event delivery
 * latency percentiles as one JSON line.
 */
import WebSocket from "ws";

const [url = "", token = "", count = "200"] = process.argv.slice(2);
const QUERY =
  "subscription { taskEventBatches(maxDelayMs: 50) { events { event { type fields } task { id name state } } } }";
const latencies: number[] = [];
const cpu0 = process.cpuUsage();
const t0 = performance.now();
const n = Number(count);
let subscribed = 0;
const SENT_AT = /"sentAt":([0-9.]+)/g;

for (let i = 0; i < n; i++) {
  const socket = new WebSocket(`${url.replace(/^http/, "ws")}/graphql`, "graphql-transport-ws");
  socket.on("open", () =>
    socket.send(
      JSON.stringify({ type: "connection_init", payload: { authorization: `Bearer ${token}` } }),
    ),
  );
  socket.on("message", (data: Buffer) => {
    const now = performance.timeOrigin + performance.now();
    const text = data.toString();
    if (text.startsWith('{"type":"connection_ack"')) {
      socket.send(JSON.stringify({ id: "1", type: "subscribe", payload: { query: QUERY } }));
      if (++subscribed === n) process.stdout.write("subscribed\n");
      return;
    }
    for (const match of text.matchAll(SENT_AT)) latencies.push(now - Number(match[1]));
  });
}

/** Share of one core used since start. */
function cpuShare(): number {
  const c = process.cpuUsage(cpu0);
  return (c.user + c.system) / 1e6 / ((performance.now() - t0) / 1000);
}

process.on("SIGUSR2", () => {
  const sorted = latencies.sort((a, b) => a - b);
  const p = (q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? 0;
  process.stdout.write(
    `${JSON.stringify({ received: sorted.length, p50: p(0.5), p99: p(0.99), max: sorted[sorted.length - 1] ?? 0, cpu: cpuShare() })}\n`,
  );
});
