/**
 * The control commands a Celeriac worker answers, with Celery's argument names and replies, so
 * `celery inspect` / `celery control` work on our workers as on Python's.
 */
import os from "node:os";
import { z } from "zod";
import { isBuiltin } from "../canvas/builtins.js";
import { parseRate } from "../worker/rate-limit.js";
import type { Worker } from "../worker/worker.js";
import type { ControlHandler } from "./mailbox.js";

const ids = (v: unknown): string[] =>
  Array.isArray(v) ? v.map(String) : v === undefined || v === null ? [] : [String(v)];

const SIGNALS: Record<string, number> = {
  SIGHUP: 1,
  SIGINT: 2,
  SIGQUIT: 3,
  SIGKILL: 9,
  SIGUSR1: 10,
  SIGUSR2: 12,
  SIGTERM: 15,
};

function signum(signal: unknown): number {
  if (typeof signal === "number") return signal;
  const name = String(signal ?? "SIGTERM").toUpperCase();
  return SIGNALS[name.startsWith("SIG") ? name : `SIG${name}`] ?? 15;
}

/** A task's argument schema as JSON Schema, when it has a zod schema. */
function argumentSchema(worker: Worker, name: string): unknown {
  const schema = worker.app.registry.get(name)?.definition.schemas.args;
  if (!schema) return null;
  try {
    return z.toJSONSchema(schema, { unrepresentable: "any" });
  } catch {
    return null;
  }
}

/** kombu's description of a consumed queue (`active_queues`). */
function queueInfo(name: string, maxPriority: number | undefined) {
  return {
    name,
    exchange: {
      name,
      type: "direct",
      arguments: null,
      durable: true,
      passive: false,
      auto_delete: false,
      delivery_mode: null,
      no_declare: false,
    },
    routing_key: name,
    queue_arguments: maxPriority ? { "x-max-priority": maxPriority } : null,
    binding_arguments: null,
    consumer_arguments: null,
    durable: true,
    exclusive: false,
    auto_delete: false,
    no_ack: false,
    alias: null,
    bindings: [],
    no_declare: null,
    expires: null,
    message_ttl: null,
    max_length: null,
    max_length_bytes: null,
    max_priority: maxPriority ?? null,
  };
}

export function workerCommands(worker: Worker): Record<string, ControlHandler> {
  const known = (name: unknown) => typeof name === "string" && worker.app.registry.has(name);
  return {
    ping: () => ({ ok: "pong" }),
    clock: () => ({ clock: worker.app.clock.current }),
    stats: () => ({
      ...worker.stats(),
      clock: String(worker.app.clock.current),
      broker: {
        transport: worker.app.connected.broker.displayUrl.split(":")[0],
        hostname: os.hostname(),
      },
      rusage: rusage(),
    }),
    active: () => [...worker.active.values()].map((r) => r.request.info(worker.hostname)),
    reserved: () => worker.waiting.map((r) => r.info(worker.hostname)),
    scheduled: () =>
      [...worker.scheduled.keys()].map((r) => ({
        eta: r.headers.eta,
        priority: r.message.properties.priority ?? 0,
        request: r.info(worker.hostname),
      })),
    revoked: () => worker.revoked.ids(),
    registered: (args) => {
      // Celery's DEFAULT_TASK_INFO_ITEMS when the caller names none: `tasks.add [rate_limit=10/s]`.
      const items = Array.isArray(args.taskinfoitems)
        ? args.taskinfoitems.map(String)
        : ["exchange", "routing_key", "rate_limit"];
      // Celery's built-ins (celery.starmap …) are listed only when asked for, as in Celery.
      const names = [...worker.app.registry.keys()]
        .filter((name) => args.builtins === true || !isBuiltin(name))
        .sort();
      // Celery's reply is a list of names; our control plane asks for schemas with an item
      // Python never sends, and gets objects instead.
      if (items.includes("schema"))
        return names.map((name) => ({
          name,
          schema: argumentSchema(worker, name),
          rate_limit: worker.rateLimitOf(name),
        }));
      return names.map((name) => {
        const rate = worker.rateLimitOf(name);
        return items.includes("rate_limit") && rate ? `${name} [rate_limit=${rate}]` : name;
      });
    },
    query_task: (args) => {
      const wanted = new Set(ids(args.ids ?? args.task_id));
      const out: Record<string, [string, unknown]> = {};
      for (const { request } of worker.active.values())
        if (wanted.has(request.id)) out[request.id] = ["active", request.info(worker.hostname)];
      for (const r of worker.waiting)
        if (wanted.has(r.id)) out[r.id] = ["reserved", r.info(worker.hostname)];
      for (const r of worker.scheduled.keys())
        if (wanted.has(r.id)) out[r.id] = ["scheduled", r.info(worker.hostname)];
      return out;
    },
    active_queues: () =>
      worker.queues.map((q) => queueInfo(q, worker.app.options.queueMaxPriority)),
    revoke: (args) => {
      const taskIds = ids(args.task_id);
      if (args.terminate) {
        const hit = worker.revoke(taskIds, { terminate: true, signum: signum(args.signal) });
        return { ok: hit.length ? `terminate: ${hit.join(", ")}` : "terminate: tasks unknown" };
      }
      worker.revoke(taskIds);
      return { ok: `tasks ${taskIds.join(", ")} flagged as revoked` };
    },
    terminate: (args) => {
      const hit = worker.revoke(ids(args.task_id), {
        terminate: true,
        signum: signum(args.signal),
      });
      return { ok: hit.length ? `terminate: ${hit.join(", ")}` : "terminate: tasks unknown" };
    },
    rate_limit: (args) => {
      if (!known(args.task_name)) return { error: "unknown task" };
      const rate =
        args.rate_limit === null || args.rate_limit === undefined ? null : String(args.rate_limit);
      try {
        parseRate(rate);
      } catch {
        return { error: `Invalid rate limit string: ${rate}` };
      }
      // `global` is ours (Python never sends it): the fleet-wide limit, held in Redis.
      try {
        worker.setRateLimit(String(args.task_name), rate, { global: args.global === true });
      } catch (error) {
        return { error: error instanceof Error ? error.message : String(error) };
      }
      return {
        ok:
          rate && parseRate(rate) > 0
            ? "new rate limit set successfully"
            : "rate limit disabled successfully",
      };
    },
    time_limit: (args) => {
      if (!known(args.task_name)) return { error: "unknown task" };
      const seconds = (v: unknown) => (v === null || v === undefined ? null : Number(v));
      worker.setTimeLimit(String(args.task_name), {
        soft: seconds(args.soft),
        hard: seconds(args.hard),
      });
      return { ok: "time limits set successfully" };
    },
    shutdown: () => {
      // Reply first, then stop: the caller may be waiting for the answer.
      setImmediate(() => void worker.stop());
      return { ok: "shutting down" };
    },
    pool_grow: (args) => {
      worker.resize(worker.concurrency + Math.max(1, Number(args.n ?? 1)));
      return { ok: "pool will grow" };
    },
    pool_shrink: (args) => {
      worker.resize(Math.max(1, worker.concurrency - Math.max(1, Number(args.n ?? 1))));
      return { ok: "pool will shrink" };
    },
    add_consumer: async (args) => {
      const queue = String(args.queue ?? "");
      if (!queue) return { error: "queue is required" };
      if (worker.queues.includes(queue))
        return { ok: `already consuming from ${JSON.stringify(queue)}` };
      await worker.addQueue(queue);
      return { ok: `add consumer ${queue}` };
    },
    cancel_consumer: async (args) => {
      const queue = String(args.queue ?? "");
      await worker.cancelQueue(queue);
      return { ok: `no longer consuming from ${queue}` };
    },
    enable_events: () => ({
      ok: worker.setTaskEvents(true) ? "task events enabled" : "task events already enabled",
    }),
    disable_events: () => ({
      ok: worker.setTaskEvents(false) ? "task events disabled" : "task events already disabled",
    }),
    heartbeat: () => {
      worker.heartbeatNow();
      return null;
    },
    hello: (args) => {
      // Mingle: a starting worker sends its revoked ids and gets ours back (LimitedSet's
      // `{id: [monotonic seconds, id]}`), so revokes survive across the fleet.
      const theirs =
        args.revoked && typeof args.revoked === "object" ? Object.keys(args.revoked as object) : [];
      if (args.from_node !== worker.hostname) worker.revoke(theirs);
      const uptime = os.uptime();
      const now = Date.now();
      const revoked = Object.fromEntries(
        worker.revoked.toJSON().map(([id, at]) => [id, [uptime - (now - at) / 1000, id]]),
      );
      return { revoked, clock: worker.app.clock.forward() };
    },
  };
}

function rusage() {
  const u = process.resourceUsage();
  return {
    utime: u.userCPUTime / 1e6,
    stime: u.systemCPUTime / 1e6,
    maxrss: u.maxRSS,
    minflt: u.minorPageFault,
    majflt: u.majorPageFault,
    nvcsw: u.voluntaryContextSwitches,
    nivcsw: u.involuntaryContextSwitches,
  };
}
