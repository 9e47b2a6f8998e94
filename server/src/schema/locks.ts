/** Unique-task locks: who holds what until when, and freeing one (operator). */
import { builder } from "../builder.js";
import type { LockView } from "../services/lock-service.js";
import { MUTATION_ERRORS } from "./errors.js";
import { TaskRef } from "./tasks.js";

export const LockRef = builder.objectRef<LockView>("Lock").implement({
  description:
    "A unique task's lock, held while one run of its key goes on; it frees itself at expiresAt unless its holder renews it.",
  fields: (t) => ({
    key: t.exposeString("key", {
      description:
        'The lock key: the task name, then what made the run unique (`stats.album:["a1"]`). For tasks whose data is redacted, `<task>:[redacted]:<holder task id>`. releaseLock takes it.',
    }),
    taskName: t.exposeString("task", { description: "The task name of the holder." }),
    taskId: t.exposeID("taskId", { description: "The task id of the holder." }),
    worker: t.exposeString("worker", { description: "The node name of the worker running it." }),
    acquiredAt: t.expose("acquiredAt", { type: "DateTime" }),
    expiresAt: t.expose("expiresAt", {
      type: "DateTime",
      description: "When it frees itself unless its holder renews it first.",
    }),
    task: t.field({
      type: TaskRef,
      nullable: true,
      description: "The holder in the history, once the control plane has heard of it.",
      resolve: (lock, _a, ctx) => ctx.db.prisma.task.findUnique({ where: { id: lock.taskId } }),
    }),
  }),
});

builder.queryFields((t) => ({
  locks: t.field({
    type: [LockRef],
    description:
      "Every lock held now, oldest first, from the lock store of the server's broker or result backend (Redis, or the in-memory broker); UNAVAILABLE when it has none.",
    resolve: (_r, _a, ctx) => ctx.services.locks.list(),
  }),
}));

builder.mutationFields((t) => ({
  releaseLock: t.field({
    type: LockRef,
    description:
      "Free a lock whoever holds it; returns what was held. The holder keeps running (and logs a warning); another run of the key may start at once.",
    authScopes: { operator: true },
    errors: { types: MUTATION_ERRORS, directResult: true },
    args: { key: t.arg.string({ required: true, description: "As `locks` shows it." }) },
    resolve: (_r, args, ctx) => ctx.services.locks.release(ctx.viewer, args.key),
  }),
}));
