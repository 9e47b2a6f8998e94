/**
 * Prometheus metrics at /metrics: tasks by state, queue depth, ingestion lag and throughput,
 * and GraphQL request latency. A registry per server, so several can live in one process.
 */
import { Counter, Gauge, Histogram, Registry } from "prom-client";
import type { Ingestor } from "../ingest/ingestor.js";
import type { Services } from "../services/index.js";

/** Tasks-by-state counts a whole table; one scrape in this many ms reuses the last count. */
const COUNT_CACHE_MS = 10_000;

export interface Metrics {
  registry: Registry;
  requestDuration: Histogram<"operation">;
}

export function createMetrics(services: Services, ingestor: () => Ingestor | undefined): Metrics {
  const registry = new Registry();
  let counted: { at: number; rows: Array<{ state: string; count: number }> } | undefined;

  new Gauge({
    name: "celeriac_tasks",
    help: "Tasks in the history, by state.",
    labelNames: ["state"],
    registers: [registry],
    async collect() {
      if (!counted || Date.now() - counted.at > COUNT_CACHE_MS)
        counted = { at: Date.now(), rows: await services.stats.countsByState() };
      this.reset();
      for (const row of counted.rows) this.set({ state: row.state }, row.count);
    },
  });
  new Gauge({
    name: "celeriac_queue_messages",
    help: "Messages waiting in each known queue.",
    labelNames: ["queue"],
    registers: [registry],
    async collect() {
      this.reset();
      for (const q of await services.queues.list().catch(() => []))
        if (q.messages !== null) this.set({ queue: q.name }, q.messages);
    },
  });
  new Gauge({
    name: "celeriac_ingest_lag_seconds",
    help: "Seconds between the oldest event of the last batch and its commit.",
    registers: [registry],
    collect() {
      this.set(ingestor()?.stats.lagSeconds ?? 0);
    },
  });
  new Counter({
    name: "celeriac_ingest_events_total",
    help: "Events received from the fleet.",
    registers: [registry],
    collect() {
      this.reset();
      this.inc(ingestor()?.stats.received ?? 0);
    },
  });
  const requestDuration = new Histogram({
    name: "celeriac_graphql_request_duration_seconds",
    help: "GraphQL request latency.",
    labelNames: ["operation"],
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
    registers: [registry],
  });
  return { registry, requestDuration };
}
