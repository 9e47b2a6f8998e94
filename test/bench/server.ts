/**
 * `npm run bench:server`: the control plane's figures on this machine's PostgreSQL.
 *
 * 1. Ingestion: N tasks' lifecycles (received, started, succeeded, plus task-sent: 4 state changes
 *    each) fed to the ingestor as fast as it takes them; changes per second until all are in
 *    Postgres, and a count that none was lost.
 * 2. Subscriptions: S graphql-ws subscribers (in a separate process) to `taskEvents`, while task
 *    events are published at R per second; delivery latency percentiles at the subscribers.
 * 3. History queries: `tasks` with filters over M stored tasks, latency percentiles through
 *    yoga.fetch; then the counts the dashboard shows, exact (`totalCount`) and bounded
 *    (`totalCountEstimate`).
 *
 * Options: --tasks 50000 --subscribers 200 --rate 2000 --rows 1000000 --only ingest,subs,query
 */
import { spawn } from "node:child_process";
import { randomUUID } from "node:crypto";
import os from "node:os";
import type { CeleryEvent } from "@celeriac/sdk";
import { pino } from "pino";
import { buildApp } from "../../server/src/app.js";
import { createTestDatabase } from "../helpers/postgres.js";

const argv = process.argv.slice(2);
const flag = (name: string, fallback: string) => {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 ? (argv[i + 1] ?? fallback) : fallback;
};
const TASKS = Number(flag("tasks", "50000"));
const SUBSCRIBERS = Number(flag("subscribers", "200"));
const RATE = Number(flag("rate", "2000"));
const ROWS = Number(flag("rows", "1000000"));
const ONLY = flag("only", "ingest,subs,query").split(",");
const fmt = (n: number) => n.toLocaleString("en-US", { maximumFractionDigits: 0 });
const pct = (sorted: number[], p: number) =>
  sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? 0;

async function server(extra: Record<string, unknown> = {}) {
  const database = await createTestDatabase("celeriac_bench");
  const s = await buildApp(
    {
      databaseUrl: database.url,
      brokerUrl: `memory://bench-${randomUUID()}`,
      port: 0,
      beat: false,
      logLevel: "warn",
      ...extra,
    },
    pino({ level: "warn" }),
  );
  return { s, database };
}

function lifecycle(id: string, t: number, worker: string, clock: number): CeleryEvent[] {
  const base = { hostname: worker, utcoffset: 0, pid: 1, uuid: id };
  return [
    {
      ...base,
      hostname: "gen1@bench",
      type: "task-sent",
      clock,
      timestamp: t,
      name: "bench.add",
      args: "(1, 2)",
      kwargs: "{}",
      queue: "celery",
      retries: 0,
    },
    {
      ...base,
      type: "task-received",
      clock: clock + 1,
      timestamp: t + 0.001,
      name: "bench.add",
      args: "(1, 2)",
      kwargs: "{}",
      retries: 0,
    },
    { ...base, type: "task-started", clock: clock + 2, timestamp: t + 0.002 },
    {
      ...base,
      type: "task-succeeded",
      clock: clock + 3,
      timestamp: t + 0.003,
      result: "3",
      runtime: 0.001,
    },
  ];
}

async function benchIngest() {
  const { s, database } = await server({ ingestBatchSize: 4000, ingestFlushMs: 20 });
  await s.start();
  const ingestor = s.ingestor!;
  const now = Date.now() / 1000;
  const events: CeleryEvent[] = [];
  for (let i = 0; i < TASKS; i++)
    events.push(...lifecycle(randomUUID(), now + i / 1000, `w${i % 4}@bench`, i * 4));
  const t0 = performance.now();
  // Workers batch task events as task.multi (up to 24 each); feed them in such chunks.
  for (let i = 0; i < events.length; i += 24) {
    ingestor.ingest(events.slice(i, i + 24));
    if (i % 2400 === 0) await new Promise((r) => setImmediate(r));
  }
  await ingestor.drain();
  const seconds = (performance.now() - t0) / 1000;
  const [row] = await s.db.query<{ done: string; events: string }>(
    "SELECT (SELECT count(*) FROM tasks WHERE state = 'SUCCESS') AS done, (SELECT count(*) FROM task_events) AS events",
  );
  console.log(
    `   ${fmt(events.length)} state changes of ${fmt(TASKS)} tasks in ${seconds.toFixed(2)} s: ${fmt(events.length / seconds)} changes/s`,
  );
  console.log(
    `   stored: ${fmt(Number(row?.done))} tasks SUCCESS (of ${fmt(TASKS)}), ${fmt(Number(row?.events))} timeline events (of ${fmt(events.length)})`,
  );
  await s.stop();
  await database.drop();
}

async function benchSubscriptions() {
  const { s, database } = await server({ ingest: false });
  await s.start();
  const { token } = await s.services.tokens.create("bench", "viewer");
  const child = spawn(
    "node",
    ["--import", "tsx", "test/bench/server-subscribers.ts", s.url, token, String(SUBSCRIBERS)],
    {
      stdio: ["ignore", "pipe", "inherit"],
    },
  );
  let out = "";
  child.stdout.on("data", (c: Buffer) => {
    out += c.toString();
  });
  while (!out.includes("subscribed")) await new Promise((r) => setTimeout(r, 50));
  await new Promise((r) => setTimeout(r, 500));
  const seconds = 5;
  const total = RATE * seconds;
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  let sent = 0;
  const task = (id: string) => ({
    id,
    name: "bench.add",
    state: "SUCCESS",
    argsRepr: "(1, 2)",
    kwargsRepr: "{}",
    args: [1, 2],
    kwargs: {},
    result: "3",
    exception: null,
    traceback: null,
    retries: 0,
    queue: "celery",
    exchange: "",
    routingKey: "celery",
    worker: "w@bench",
    parentId: null,
    rootId: id,
    groupId: null,
    eta: null,
    expires: null,
    runtime: 0.001,
    sentAt: null,
    receivedAt: null,
    startedAt: null,
    succeededAt: new Date(),
    failedAt: null,
    retriedAt: null,
    revokedAt: null,
    rejectedAt: null,
    rerunOf: null,
    createdAt: new Date(),
    updatedAt: new Date(),
  });
  while (sent < total) {
    const due = Math.min(total, Math.floor(((performance.now() - t0) / 1000) * RATE));
    for (; sent < due; sent++) {
      const id = randomUUID();
      s.services.pubsub.publish("task:event", {
        task: task(id),
        event: {
          id: String(sent),
          taskId: id,
          type: "task-succeeded",
          hostname: "w@bench",
          clock: sent,
          timestamp: new Date(),
          fields: { sentAt: performance.timeOrigin + performance.now() },
        },
      } as never);
    }
    await new Promise((r) => setTimeout(r, 1));
  }
  const cpu = process.cpuUsage(cpu0);
  const serverCpu = (cpu.user + cpu.system) / 1e6 / ((performance.now() - t0) / 1000);
  // Let the last batches arrive before asking for the figures.
  await new Promise((r) => setTimeout(r, 1000));
  child.kill("SIGUSR2");
  const result = await new Promise<{
    received: number;
    p50: number;
    p99: number;
    max: number;
    cpu: number;
  }>((resolve) => {
    child.stdout.on("data", () => {
      const line = out.split("\n").find((l) => l.startsWith("{"));
      if (line) resolve(JSON.parse(line));
    });
  });
  console.log(
    `   ${SUBSCRIBERS} subscribers, ${fmt(RATE)} events/s for ${seconds} s: ${fmt(result.received)} deliveries (of ${fmt(total * SUBSCRIBERS)}), latency p50 ${result.p50.toFixed(1)} ms, p99 ${result.p99.toFixed(1)} ms, max ${result.max.toFixed(1)} ms`,
  );
  console.log(
    `   CPU: server ${(serverCpu * 100).toFixed(0)} % of a core (publishing included), subscribers' process ${(result.cpu * 100).toFixed(0)} %`,
  );
  child.kill();
  await s.stop();
  await database.drop();
}

async function benchQueries() {
  const { s, database } = await server({ ingest: false });
  const { token } = await s.services.tokens.create("bench", "viewer");
  const t0 = performance.now();
  // A month of history: 20 task names, 8 workers, states mostly SUCCESS.
  await s.db.query(
    `INSERT INTO tasks (id, name, state, args_repr, kwargs_repr, result, exception, worker, queue, runtime, created_at, updated_at, succeeded_at)
     SELECT md5(g::text), 'tasks.t' || (g % 20), CASE WHEN g % 50 = 0 THEN 'FAILURE' WHEN g % 97 = 0 THEN 'RETRY' ELSE 'SUCCESS' END,
       '(' || g || ', ''album-' || (g % 5000) || ''')', '{}', CASE WHEN g % 50 = 0 THEN NULL ELSE (g * 7)::text END,
       CASE WHEN g % 50 = 0 THEN 'ValueError(''bad ' || g || ''')' END,
       'w' || (g % 8) || '@bench', CASE WHEN g % 3 = 0 THEN 'priority' ELSE 'celery' END, (g % 1000) / 1000.0,
       now() - (g || ' seconds')::interval * 2.5, now() - (g || ' seconds')::interval * 2.5, now() - (g || ' seconds')::interval * 2.5
     FROM generate_series(1, $1) g`,
    [ROWS],
  );
  await s.db.query("ANALYZE tasks");
  console.log(`   ${fmt(ROWS)} tasks stored in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  const queries: Array<[string, string]> = [
    ["newest 50", "{ tasks(first: 50) { edges { node { id name state worker createdAt } } } }"],
    [
      "by state",
      `{ tasks(first: 50, filter: { states: ["FAILURE"] }) { edges { node { id exception } } } }`,
    ],
    [
      "name + worker + day",
      `{ tasks(first: 50, filter: { names: ["tasks.t7"], workers: ["w7@bench"], from: "${new Date(Date.now() - 86_400_000).toISOString()}" }) { edges { node { id } } } }`,
    ],
    [
      "text search",
      `{ tasks(first: 50, filter: { search: "album-4242" }) { edges { node { id argsRepr } } } }`,
    ],
    [
      "page 20 deep",
      '{ tasks(first: 50, after: "CURSOR") { edges { node { id } } pageInfo { endCursor } } }',
    ],
  ];
  const ask = async (query: string) => {
    const r = await s.yoga.fetch("http://bench/graphql", {
      method: "POST",
      headers: { "content-type": "application/json", authorization: `Bearer ${token}` },
      body: JSON.stringify({ query }),
    });
    const body = (await r.json()) as { errors?: unknown };
    if (body.errors) throw new Error(JSON.stringify(body.errors));
    return body as {
      data: { tasks: { pageInfo?: { endCursor: string } } & Record<string, unknown> };
    };
  };
  let cursor = "";
  for (let i = 0; i < 20; i++) {
    const r = await ask(
      `{ tasks(first: 50${cursor ? `, after: "${cursor}"` : ""}) { pageInfo { endCursor } } }`,
    );
    cursor = r.data.tasks.pageInfo!.endCursor;
  }
  for (const [label, raw] of queries) {
    const query = raw.replace("CURSOR", cursor);
    for (let i = 0; i < 5; i++) await ask(query);
    const times: number[] = [];
    for (let i = 0; i < 100; i++) {
      const t = performance.now();
      await ask(query);
      times.push(performance.now() - t);
    }
    times.sort((a, b) => a - b);
    console.log(
      `   ${label.padEnd(20)} p50 ${pct(times, 50).toFixed(1)} ms  p95 ${pct(times, 95).toFixed(1)} ms`,
    );
  }
  // What the dashboard shows above the list: the exact count against the bounded one.
  console.log("   counts (exact totalCount | totalCountEstimate):");
  const counts: Array<[string, string]> = [
    ["all", ""],
    ["by state (2 %)", 'states: ["FAILURE"]'],
    ["by state (97 %)", 'states: ["SUCCESS"]'],
    ["by name (5 %)", 'names: ["tasks.t7"]'],
    ["text search", 'search: "album-4242"'],
  ];
  for (const [label, filter] of counts) {
    const args = filter ? `(filter: { ${filter} })` : "";
    const line: string[] = [];
    for (const field of ["totalCount", "totalCountEstimate { value exact }"]) {
      const query = `{ tasks${args} { ${field} } }`;
      await ask(query);
      const times: number[] = [];
      let answer: unknown;
      for (let i = 0; i < 20; i++) {
        const t = performance.now();
        answer = (await ask(query)).data.tasks;
        times.push(performance.now() - t);
      }
      times.sort((a, b) => a - b);
      const got = answer as {
        totalCount?: number;
        totalCountEstimate?: { value: number; exact: boolean };
      };
      const value = got.totalCount ?? got.totalCountEstimate?.value ?? 0;
      const shown = got.totalCountEstimate?.exact === false ? `≈${fmt(value)}` : fmt(value);
      line.push(
        `${shown.padStart(10)} p50 ${pct(times, 50).toFixed(1)} p95 ${pct(times, 95).toFixed(1)} ms`,
      );
    }
    console.log(`   ${label.padEnd(18)} ${line.join(" | ")}`);
  }
  await s.stop();
  await database.drop();
}

async function main() {
  const cpus = os.cpus();
  console.log(
    `Celeriac control-plane benchmark — ${cpus.length} × ${cpus[0]?.model ?? "CPU"}, Node ${process.version}, PostgreSQL on 127.0.0.1`,
  );
  console.log(`reproduce: npm run bench:server -- ${argv.join(" ")}\n`);
  if (ONLY.includes("ingest")) {
    console.log("1. Ingestion into Postgres");
    await benchIngest();
  }
  if (ONLY.includes("subs")) {
    console.log("\n2. Subscriptions over graphql-ws");
    await benchSubscriptions();
  }
  if (ONLY.includes("query")) {
    console.log("\n3. `tasks` queries over stored history");
    await benchQueries();
  }
}

main().then(
  () => process.exit(0),
  (error) => {
    console.error(error);
    process.exit(1);
  },
);
