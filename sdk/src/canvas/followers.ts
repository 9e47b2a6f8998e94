/**
 * What a worker sends or records after a task, for the workflow it belongs to, as Celery 5.2's
 * worker does (`app/trace.py`, `backends/base.py`): links with the result, the next chain step,
 * errbacks with the failed task's id, the chord counter, and a failure carried down the chain.
 */
import type { App } from "../app.js";
import { type MetaContext, type ResultMeta, resultMeta } from "../backends/backend.js";
import { encodeException } from "../protocol/exceptions.js";
import type { SignatureDict } from "../protocol/message.js";
import { TaskState } from "../protocol/states.js";
import { applySignature, GROUP, signatureDict } from "./apply.js";

/** The task that just ended: its id and lineage. */
export interface Finished {
  id: string;
  rootId: string;
}

const lineageOf = (task: Finished) => ({ parent_id: task.id, root_id: task.rootId });

/**
 * Links, with the result prepended. One link is applied as is; several are sent together as one
 * group (groups among them each on their own), as Celery does.
 */
export async function sendCallbacks(
  app: App,
  task: Finished,
  callbacks: SignatureDict[],
  result: unknown,
): Promise<void> {
  if (callbacks.length === 1) {
    await applySignature(app, callbacks[0]!, [result], {}, lineageOf(task));
    return;
  }
  const groups = callbacks.filter((c) => c.subtask_type === "group");
  const others = callbacks.filter((c) => c.subtask_type !== "group");
  for (const g of groups) await applySignature(app, g, [result], {}, lineageOf(task));
  if (others.length)
    await applySignature(
      app,
      signatureDict(GROUP, [], { tasks: others }, {}, "group"),
      [result],
      {},
      lineageOf(task),
    );
}

/** The next chain step (the last element: the field is reversed), with the rest of the chain. */
export async function sendNextStep(
  app: App,
  task: Finished,
  chain: SignatureDict[],
  result: unknown,
): Promise<void> {
  const next = chain[chain.length - 1];
  if (!next) return;
  await applySignature(app, next, [result], {}, { chain: chain.slice(0, -1), ...lineageOf(task) });
}

/** Errbacks, sent as one group with the failed task's id as their argument. */
export async function sendErrbacks(
  app: App,
  task: Finished,
  errbacks: SignatureDict[],
): Promise<void> {
  if (!errbacks.length) return;
  await applySignature(
    app,
    signatureDict(GROUP, [], { tasks: errbacks }, {}, "group"),
    [task.id],
    {},
    lineageOf(task),
  );
}

/** A FAILURE (or REVOKED) result as Celery stores it for a task known only by its id. */
export function failureMeta(
  taskId: string,
  error: unknown,
  traceback: string | null,
  state: string = TaskState.FAILURE,
  context: MetaContext = {},
): ResultMeta {
  return resultMeta(taskId, state, encodeException(error), traceback, context);
}

/**
 * A chain step that failed takes the rest of its chain with it: every later step's id gets the
 * same failure, so whoever waits on the chain's last result is not left waiting (Celery 5.2's
 * `mark_as_failure`). Steps in a chord's header also count towards their chord.
 */
export async function failRestOfChain(
  app: App,
  chain: SignatureDict[],
  state: string,
  error: unknown,
  traceback: string | null,
  countChordPart: (step: SignatureDict) => Promise<void>,
  /** False when the failed task's errors are not stored (Celery's `store_result`): the steps are only counted. */
  storeResults = true,
): Promise<void> {
  const backend = app.connected.backend;
  for (const step of chain) {
    const o = step.options ?? {};
    const id = typeof o.task_id === "string" ? o.task_id : null;
    if (
      storeResults &&
      backend &&
      id &&
      (state === TaskState.FAILURE || state === TaskState.REVOKED)
    ) {
      await backend.store(
        failureMeta(id, error, traceback, state, {
          groupId: typeof o.group_id === "string" ? o.group_id : null,
          parentId: typeof o.parent_id === "string" ? o.parent_id : null,
        }),
      );
    }
    if (o.chord) await countChordPart(step);
  }
}
