/**
 * Workers answer control commands with `{ "<node>": { ok: … } | { error: … } | <data> }`; the
 * API gives one typed reply per worker.
 */
import type { Replies } from "@celeriac/sdk";

export interface WorkerReply {
  hostname: string;
  ok: boolean;
  message: string | null;
  /** The reply's data for queries that return some (stats, active …). */
  data: unknown;
}

export function flattenReplies(replies: Replies): WorkerReply[] {
  const out: WorkerReply[] = [];
  for (const reply of replies) {
    for (const [hostname, body] of Object.entries(reply)) {
      const b = body as Record<string, unknown> | null;
      const error = b && typeof b === "object" && "error" in b ? String(b.error) : null;
      const ok = b && typeof b === "object" && "ok" in b ? String(b.ok) : null;
      out.push({ hostname, ok: error === null, message: error ?? ok, data: body });
    }
  }
  return out.sort((a, b) => a.hostname.localeCompare(b.hostname));
}
