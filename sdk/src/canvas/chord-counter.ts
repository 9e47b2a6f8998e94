/**
 * The worker's side of a chord, as Celery 5.2's Redis backend does it (`on_chord_part_return`):
 * each finished header task adds its result to the chord's counter; the one that completes the
 * count reads every result in header order and sends the callback with them, once. No worker
 * slot ever waits for the header. A failed or revoked header task makes the callback fail with
 * a ChordError (after the whole header has finished), and the callback's errbacks are sent.
 *
 * A header holding group results (a chain ending in a group, say) was saved by the producer
 * (Celery's `apply_chord`): the counter then reads the results through that saved group, so the
 * callback gets them nested as the header is, as Celery's counter joins the restored GroupResult.
 */
import type { Logger } from "pino";
import type { App } from "../app.js";
import type { ChordCounter, ChordPart, ResultBackend } from "../backends/backend.js";
import { ChordError } from "../errors.js";
import { fromTuple, GroupResult } from "../producer/group-result.js";
import { decodeException, encodeException, exceptionRepr } from "../protocol/exceptions.js";
import type { SignatureDict } from "../protocol/message.js";
import { EXCEPTION_STATES, PROPAGATE_STATES } from "../protocol/states.js";
import { applySignature, kind, tasksOf } from "./apply.js";
import { failureMeta, sendErrbacks } from "./followers.js";

/** Seconds the counter waits for a saved header's results (Celery's `result_chord_join_timeout`). */
const CHORD_JOIN_TIMEOUT = 3;

/** A header task as the counter sees it. */
export interface ChordMember {
  id: string;
  rootId: string;
  groupId: string | null;
  groupIndex: number | null;
  /** The chord's callback (the message's `chord` field). */
  chord: SignatureDict | null;
}

/** Celery's `_unpack_chord_result`: a header task's value, or a ChordError naming it. */
function unpack([, id, state, value]: ChordPart): unknown {
  if (!EXCEPTION_STATES.has(state)) return value;
  const error = decodeException(value, null);
  if (PROPAGATE_STATES.has(state))
    throw new ChordError(`Dependency ${id} raised ${exceptionRepr(error)}`);
  return error;
}

/**
 * Every header result in header order: through the saved header when there is one (joined with
 * Celery's `propagate=True`: a failure throws), else from the counter's parts. `saved` tells
 * whether a saved header was read (it is deleted with the chord's bookkeeping).
 */
async function headerResults(
  backend: ResultBackend & ChordCounter,
  groupId: string,
): Promise<{ values: unknown[]; saved: boolean }> {
  const meta = (await backend.restoreGroup?.(groupId)) ?? null;
  const header = meta ? fromTuple(meta.result, backend) : null;
  if (header instanceof GroupResult) {
    return { values: await header.join({ timeout: CHORD_JOIN_TIMEOUT }), saved: true };
  }
  return { values: (await backend.chordParts(groupId)).map(unpack), saved: meta !== null };
}

/** Count one finished header task; when it is the last, send the callback (or fail it). */
export async function countChordPart(
  app: App,
  member: ChordMember,
  state: string,
  result: unknown,
  logger: Logger,
): Promise<void> {
  const { groupId, chord: callback } = member;
  if (!groupId || !callback) return;
  const backend = app.connected.backend;
  if (!backend?.addChordPart || !backend.chordParts || !backend.clearChord) {
    logger.error(
      { taskId: member.id, groupId },
      "this task is part of a chord, but the result backend has no chord counter: its callback will never run",
    );
    return;
  }
  const counter = backend as ResultBackend & ChordCounter;
  const value = EXCEPTION_STATES.has(state) ? encodeException(result) : result;
  const count = await counter.addChordPart(groupId, member.groupIndex, [
    1,
    member.id,
    state,
    value,
  ]);
  if (count.size === null || count.readyCount !== count.size + count.extra) return;
  let saved = true;
  try {
    let values: unknown[];
    try {
      ({ values, saved } = await headerResults(counter, groupId));
    } catch (error) {
      // A failed header task (ChordError from its part, or its error from the saved header's
      // join), or the results could not be read.
      const chordError =
        error instanceof ChordError ? error : new ChordError(`Join error: ${exceptionRepr(error)}`);
      logger.error({ groupId, err: chordError }, `chord ${groupId} failed`);
      await failChord(app, callback, chordError, logger);
      return;
    }
    try {
      // Sent from the last header task: it is the callback's parent, as in Celery.
      await applySignature(
        app,
        callback,
        [values],
        {},
        {},
        {
          parentId: member.id,
          rootId: member.rootId,
        },
      );
    } catch (error) {
      logger.error({ err: error, groupId }, "could not send the chord's callback");
      await failChord(
        app,
        callback,
        new ChordError(`Callback error: ${exceptionRepr(error)}`),
        logger,
      );
    }
  } finally {
    // Whatever happened, the chord is over: its bookkeeping goes (and its saved header, if any).
    await counter
      .clearChord(groupId)
      .catch((error) => logger.warn({ err: error, groupId }, "could not clear a chord's counter"));
    if (saved)
      await counter
        .deleteGroup?.(groupId)
        .catch((error) =>
          logger.warn({ err: error, groupId }, "could not delete a chord's saved header"),
        );
  }
}

/**
 * Ids the user's result of a callback waits on: the task's; every member's for a group (its
 * GroupResult's); every step's for a chain; the body's for a chord.
 */
function callbackIds(callback: SignatureDict): string[] {
  switch (kind(callback)) {
    case "group":
    case "chain":
      return tasksOf(callback).flatMap(callbackIds);
    case "chord": {
      const body = callback.kwargs?.body as SignatureDict | undefined;
      return body ? callbackIds(body) : [];
    }
    default: {
      const own = callback.options?.task_id;
      return typeof own === "string" ? [own] : [];
    }
  }
}

/**
 * Celery's `chord_error_from_stack`: the callback's errbacks are sent with its id, and the
 * callback is stored as failed with the ChordError. Unlike Celery, a chain callback has each of
 * its steps failed, and a group callback each of its members (Celery stores the failure under
 * the chain's or group's own id, and their results would wait forever). Nothing here throws: a
 * failure is logged (it must not send the header task's message back to run again).
 */
async function failChord(
  app: App,
  callback: SignatureDict,
  error: ChordError,
  logger: Logger,
): Promise<void> {
  const ids = callbackIds(callback);
  const [first] = ids;
  const errbacks = callback.options?.link_error;
  if (first && Array.isArray(errbacks))
    await sendErrbacks(
      app,
      { id: first, rootId: (callback.options.root_id as string | undefined) ?? first },
      errbacks as SignatureDict[],
    ).catch((e: unknown) =>
      logger.error({ err: e, taskId: first }, "could not send the chord callback's errbacks"),
    );
  const backend = app.connected.backend;
  const traceback = `${error.name}: ${error.message}`;
  for (const id of ids)
    await backend
      ?.store(failureMeta(id, error, traceback))
      .catch((e: unknown) =>
        logger.error({ err: e, taskId: id }, "could not store a chord callback's failure"),
      );
}
