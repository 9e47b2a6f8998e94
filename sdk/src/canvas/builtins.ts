/**
 * Celery's built-in canvas tasks that travel as messages, registered on every app so a worker
 * runs them whoever sent them: `celery.starmap` (one part of `chunks`) and `celery.map`.
 */
import type { App } from "../app.js";
import { NotRegistered } from "../errors.js";
import type { SignatureDict } from "../protocol/message.js";
import type { TaskContext } from "../worker/context.js";
import { MAP, STARMAP } from "./apply.js";

/**
 * Call the mapped task in this worker, once per item, without sending anything: the way
 * Celery calls `task(*item)` (no hooks, no result of its own; the results are the part's).
 */
async function mapOver(app: App, ctx: TaskContext, star: boolean): Promise<unknown[]> {
  const { task, it } = ctx.kwargs as { task: SignatureDict | string; it: unknown[] };
  const name = typeof task === "string" ? task : task.task;
  const registered = app.registry.get(name);
  if (!registered) throw new NotRegistered(name);
  const results: unknown[] = [];
  for (const item of it ?? []) {
    const args = star ? [...(item as unknown[])] : [item];
    results.push(await registered.handler({ ...ctx, name, args, kwargs: {} }, ...args));
  }
  return results;
}

export function registerBuiltins(app: App): void {
  app.task(STARMAP, (ctx) => mapOver(app, ctx, true));
  app.task(MAP, (ctx) => mapOver(app, ctx, false));
}

/** Celery leaves its built-ins out of `inspect registered` unless asked. */
export const isBuiltin = (name: string) => name.startsWith("celery.");
