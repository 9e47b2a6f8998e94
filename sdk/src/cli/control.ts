/**
 * `celeriac inspect`, `celeriac control` and `celeriac events`: watch and steer workers (ours
 * and Python's) from the command line.
 */
import type { App } from "../app.js";
import type { BroadcastOptions, Replies } from "../control/client.js";
import type { CeleryEvent } from "../events/event.js";
import { EventReceiver } from "../events/receiver.js";

export const INSPECT_METHODS = [
  "ping",
  "stats",
  "active",
  "reserved",
  "scheduled",
  "registered",
  "active_queues",
  "revoked",
  "clock",
] as const;
export type InspectMethod = (typeof INSPECT_METHODS)[number];

export interface Addressing {
  destination?: string[];
  timeout?: number;
  json?: boolean;
}

function broadcastOptions(opts: Addressing): BroadcastOptions {
  return {
    reply: true,
    timeout: opts.timeout ?? 1,
    ...(opts.destination ? { destination: opts.destination } : {}),
  };
}

/** Print replies as `-> node: OK` blocks (Celery's layout), or as JSON. Exit code 1 when nobody answered. */
export function printReplies(replies: Replies, json: boolean | undefined): number {
  if (json) {
    process.stdout.write(`${JSON.stringify(Object.assign({}, ...replies), null, 2)}\n`);
  } else {
    for (const reply of replies) {
      for (const [node, value] of Object.entries(reply)) {
        const isError = value !== null && typeof value === "object" && "error" in value;
        process.stdout.write(`-> ${node}: ${isError ? "ERROR" : "OK"}\n`);
        const shown =
          value !== null && typeof value === "object" && "ok" in value
            ? (value as { ok: unknown }).ok
            : value;
        const text = typeof shown === "string" ? shown : JSON.stringify(shown, null, 2);
        process.stdout.write(`${text.replace(/^/gm, "    ")}\n`);
      }
    }
  }
  if (replies.length === 0) {
    process.stderr.write("Error: No nodes replied within time constraint.\n");
    return 1;
  }
  return 0;
}

export async function inspect(app: App, method: InspectMethod, opts: Addressing): Promise<number> {
  const replies =
    method === "ping"
      ? await app.control.ping(broadcastOptions(opts))
      : await app.control.inspect(method, broadcastOptions(opts));
  return printReplies(replies, opts.json);
}

export async function control(
  app: App,
  method: string,
  args: Record<string, unknown>,
  opts: Addressing,
): Promise<number> {
  return printReplies(await app.control.broadcast(method, args, broadcastOptions(opts)), opts.json);
}

function line(e: CeleryEvent): string {
  const when = new Date(e.timestamp * 1000).toISOString();
  const {
    type,
    hostname,
    uuid,
    timestamp: _t,
    utcoffset: _u,
    pid: _p,
    clock: _c,
    local_received: _l,
    ...rest
  } = e;
  const details = Object.entries(rest)
    .map(([k, v]) => `${k}=${typeof v === "string" ? v : JSON.stringify(v)}`)
    .join(" ");
  return `${when} ${hostname} ${type}${uuid ? ` ${uuid}` : ""}${details ? ` ${details}` : ""}`;
}

/** Print the live event stream until interrupted. */
export async function streamEvents(app: App, opts: { json?: boolean }): Promise<void> {
  const { broker } = await app.connect();
  const receiver = new EventReceiver(broker);
  receiver.on("event", (e) => process.stdout.write(`${opts.json ? JSON.stringify(e) : line(e)}\n`));
  await receiver.start();
  // Wake workers so their state shows at once, as Celery's monitors do.
  await app.control.broadcast("heartbeat");
  await new Promise<void>((resolve) => {
    process.once("SIGINT", resolve);
    process.once("SIGTERM", resolve);
  });
  await receiver.stop();
}
