/**
 * The completer: given how a task ended, store its state, send what follows (retries, links,
 * the next chain step, errbacks), settle the message, and report the event. It is the only part
 * of the worker that writes results or acks after a run.
 *
 * Once a run's state is stored, nothing that follows sends the message back to run again (a
 * late-acked task would run, and send its links, forever): what cannot be sent is logged and
 * failed forward, as the rest of a chain, the chord count and errbacks of a failure.
 */
import type { Logger } from "pino";
import type { App, RegisteredTask } from "../app.js";
import { type ResultMeta, resultMeta } from "../backends/backend.js";
import { countChordPart } from "../canvas/chord-counter.js";
import { failRestOfChain, sendCallbacks, sendErrbacks, sendNextStep } from "../canvas/followers.js";
import { NotRegistered, TaskRevokedError, WorkerLostError } from "../errors.js";
import { encodeException, exceptionRepr, tracebackOf } from "../protocol/exceptions.js";
import type { SignatureDict } from "../protocol/message.js";
import { repr, truncate } from "../protocol/repr.js";
import { TaskState } from "../protocol/states.js";
import { noHooks, type Outcome, type RunHooks } from "./executor.js";
import type { Request } from "./request.js";

/** A task event as Celery names and shapes it (`type` plus the event's own fields). */
export type TaskEvent = { type: string; uuid: string } & Record<string, unknown>;

export interface CompleterEnv {
  app: App;
  hostname: string;
  logger: Logger;
  /** Whether anyone listens to task events: they are not built otherwise. */
  listening(): boolean;
  emit(event: TaskEvent): void;
}

/**
 * Whether a task's errors (FAILURE, RETRY, REVOKED) are stored: unless the task ignores its
 * results without `storeErrorsEvenIfIgnored`, as Celery's `Request.store_errors` and
 * `TraceInfo.handle_error_state` decide. A message's own `ignore_result` header only skips
 * storing a success (`Backend.mark_as_done`), never an error.
 */
export function storesErrors(task: RegisteredTask | undefined): boolean {
  return !task?.options.ignoreResult || task.options.storeErrorsEvenIfIgnored === true;
}

export class Completer {
  constructor(private readonly env: CompleterEnv) {}

  private emitEvent(event: TaskEvent): void {
    if (this.env.listening()) this.env.emit(event);
  }

  private get backend() {
    return this.env.app.connected.backend;
  }

  private meta(
    request: Request,
    status: string,
    result: unknown,
    traceback: string | null,
  ): ResultMeta {
    const h = request.headers;
    return resultMeta(request.id, status, result, traceback, {
      groupId: h.group,
      parentId: h.parent_id,
      ...(this.env.app.options.resultExtended
        ? {
            extended: {
              name: request.name,
              args: request.args,
              kwargs: request.kwargs,
              worker: this.env.hostname,
              retries: h.retries,
              queue: request.delivery.routingKey,
            },
          }
        : {}),
    });
  }

  /** A step after the state is stored: its failure is logged, never thrown (see the top). */
  private async guard(request: Request, what: string, step: () => Promise<unknown>) {
    try {
      await step();
    } catch (error) {
      this.env.logger.error(
        { err: error, taskId: request.id, task: request.displayName },
        `${what}: ${error instanceof Error ? error.message : String(error)}`,
      );
    }
  }

  /**
   * Results are stored unless the task or the message asks not to; errors (`error`) unless the
   * task ignores results without `storeErrorsEvenIfIgnored` (see {@link storesErrors}).
   */
  private async store(
    request: Request,
    task: RegisteredTask | undefined,
    status: string,
    result: unknown,
    traceback: string | null,
    error = false,
  ) {
    if (!this.backend) return;
    const stored = error
      ? storesErrors(task)
      : !(request.headers.ignore_result || task?.options.ignoreResult);
    if (!stored) return;
    await this.backend.store(this.meta(request, status, result, traceback));
  }

  /** STARTED, for tasks with `trackStarted`. */
  async started(request: Request, task: RegisteredTask) {
    if (task.options.trackStarted)
      await this.store(
        request,
        task,
        TaskState.STARTED,
        { pid: process.pid, hostname: this.env.hostname },
        null,
      );
  }

  /**
   * Settle a run. The task's `hooks` run once its state is stored and what follows is sent, before
   * a late ack, as Celery's tracer calls `on_success`/`on_failure`/`on_retry` and `after_return`
   * after `mark_as_done`/`mark_as_failure`/`mark_as_retry`.
   */
  async complete(
    request: Request,
    task: RegisteredTask,
    outcome: Outcome,
    hooks: RunHooks = noHooks,
  ): Promise<void> {
    switch (outcome.kind) {
      case "success":
        return this.succeeded(request, task, outcome.result, outcome.runtime, hooks);
      case "failure":
        return this.failed(request, task, outcome.error, hooks);
      case "retry":
        return this.retried(request, task, outcome, hooks);
      case "reject":
        if (request.acknowledged) {
          this.env.logger.warn(
            { taskId: request.id, task: request.name },
            "Reject after the message was acked does nothing: give the task acksLate",
          );
        } else {
          this.env.logger.info(
            { taskId: request.id, task: request.name, requeue: outcome.reject.requeue },
            `task rejected: ${outcome.reject.message}`,
          );
        }
        await request.reject(outcome.reject.requeue);
        this.emitEvent({
          type: "task-rejected",
          uuid: request.id,
          requeue: outcome.reject.requeue,
        });
        return;
      case "ignore":
        await request.ack();
        return;
      case "revoked":
        return this.revoked(
          request,
          task,
          outcome.error.message === "terminated" ? "terminated" : "revoked",
          request.terminatedWith,
        );
    }
  }

  private async succeeded(
    request: Request,
    task: RegisteredTask,
    result: unknown,
    runtime: number,
    hooks: RunHooks,
  ) {
    await this.store(request, task, TaskState.SUCCESS, result, null);
    const { callbacks, chain, chord } = request.message.embed;
    try {
      if (callbacks?.length || chain?.length) await this.sendFollowers(request, result);
    } catch (error) {
      // Stored as SUCCESS, it ran for good: what follows it fails instead (Celery's tracer,
      // whose followers fail with mark_as_failure(request=...) of this task).
      this.env.logger.error(
        { err: error, taskId: request.id, task: request.displayName },
        "task succeeded, but could not send what follows it: the rest of its chain fails and its errbacks are sent",
      );
      await this.failForward(request, task, TaskState.FAILURE, error, tracebackOf(error), false);
    } finally {
      await this.guard(request, "could not count the task towards its chord", () =>
        this.countChordPart(request, chord, TaskState.SUCCESS, result),
      );
    }
    await hooks();
    await request.ack();
    this.env.logger.info(
      { taskId: request.id, task: request.displayName, runtime },
      "task succeeded",
    );
    // The result's repr is only worth building for someone who listens.
    if (this.env.listening())
      this.env.emit({
        type: "task-succeeded",
        uuid: request.id,
        result: truncate(repr(result)),
        runtime,
      });
  }

  /** Links get the result prepended; the next chain step gets it too, with the rest of the chain. */
  private async sendFollowers(request: Request, result: unknown) {
    const { callbacks, chain } = request.message.embed;
    const finished = { id: request.id, rootId: request.headers.root_id };
    if (callbacks?.length) await sendCallbacks(this.env.app, finished, callbacks, result);
    if (chain?.length) await sendNextStep(this.env.app, finished, chain, result);
  }

  /**
   * A chord's header task counts towards its chord once it has ended for good: succeeded,
   * failed (also lost, or in conflict for a unique lock) or revoked, as Celery's
   * `mark_as_done`/`mark_as_failure`/`mark_as_revoked` call `on_chord_part_return`. A retry, a
   * reject or an ignore does not count: the run is not over, or it never ran for the chord.
   * The last one counted sends the callback.
   */
  private async countChordPart(
    request: Request,
    chord: SignatureDict | null,
    state: string,
    result: unknown,
    step?: SignatureDict,
  ) {
    const h = request.headers;
    const o = step?.options;
    const member = o
      ? {
          id: String(o.task_id),
          rootId: typeof o.root_id === "string" ? o.root_id : h.root_id,
          groupId: typeof o.group_id === "string" ? o.group_id : null,
          groupIndex: typeof o.group_index === "number" ? o.group_index : null,
          chord,
        }
      : { id: request.id, rootId: h.root_id, groupId: h.group, groupIndex: h.group_index, chord };
    await countChordPart(this.env.app, member, state, result, this.env.logger);
  }

  async failed(
    request: Request,
    task: RegisteredTask | undefined,
    error: unknown,
    hooks: RunHooks = noHooks,
  ) {
    // A dead child with `rejectOnWorkerLost` (and late acks): the message goes back to run again.
    if (
      error instanceof WorkerLostError &&
      task?.options.acksLate &&
      task.options.rejectOnWorkerLost &&
      !request.acknowledged
    ) {
      this.env.logger.warn(
        { taskId: request.id, task: request.displayName },
        "worker lost while running the task: message requeued",
      );
      await request.reject(true);
      return;
    }
    const traceback = tracebackOf(error);
    await this.store(request, task, TaskState.FAILURE, encodeException(error), traceback, true);
    await this.failForward(request, task, TaskState.FAILURE, error, traceback, true);
    await hooks();
    await request.ack();
    this.env.logger.error(
      { taskId: request.id, task: request.displayName, err: error },
      "task failed",
    );
    this.emitEvent({
      type: "task-failed",
      uuid: request.id,
      exception: exceptionRepr(error),
      traceback,
    });
  }

  /**
   * What follows a failure, as Celery's `mark_as_failure(request=...)` does it: the chord part
   * counted (`countPart`), every later chain step failed too (and counted for its chord), then
   * the errbacks sent with the failed task's id. Each step is tried whatever the one before did.
   */
  private async failForward(
    request: Request,
    task: RegisteredTask | undefined,
    state: string,
    error: unknown,
    traceback: string | null,
    countPart: boolean,
  ): Promise<void> {
    const { chord, chain, errbacks } = request.message.embed;
    if (countPart)
      await this.guard(request, "could not count the task towards its chord", () =>
        this.countChordPart(request, chord, state, error),
      );
    if (chain?.length)
      await this.guard(request, "could not fail the rest of the task's chain", () =>
        failRestOfChain(
          this.env.app,
          chain,
          state,
          error,
          traceback,
          (step) =>
            this.guard(request, "could not count a chain step towards its chord", () =>
              this.countChordPart(request, step.options.chord as SignatureDict, state, error, step),
            ),
          storesErrors(task),
        ),
      );
    if (errbacks?.length)
      await this.guard(request, "could not send the task's errbacks", () =>
        sendErrbacks(this.env.app, { id: request.id, rootId: request.headers.root_id }, errbacks),
      );
  }

  private async retried(
    request: Request,
    task: RegisteredTask,
    outcome: Extract<Outcome, { kind: "retry" }>,
    hooks: RunHooks,
  ) {
    const { plan, reason } = outcome.retry;
    const h = request.headers;
    const when = plan.when;
    const [hard, soft] = h.timelimit;
    const {
      lang: _l,
      task: _t,
      id: _i,
      shadow,
      eta: _e,
      expires,
      group,
      group_index,
      retries,
      timelimit: _tl,
      root_id,
      parent_id: _p,
      argsrepr: _a,
      kwargsrepr: _k,
      origin: _o,
      ignore_result,
      redelivered: _r,
      ...custom
    } = h;
    const nextRetries = plan.countsAsRetry === false ? retries : retries + 1;
    await this.env.app.send(
      { name: request.name, options: {}, schemas: {} },
      plan.args ?? request.args,
      {
        kwargs: plan.kwargs ?? request.kwargs,
        taskId: request.id,
        retries: nextRetries,
        ...(when instanceof Date ? { eta: when } : { countdown: when }),
        ...(expires ? { expires } : {}),
        // As Celery's `signature_from_request`: the request's parent is kept, and a task sent
        // by no other task becomes its own (`send_task` names the running task as parent).
        parentId: h.parent_id || request.id,
        rootId: root_id,
        groupId: group,
        groupIndex: group_index,
        ...(shadow ? { shadow } : {}),
        ...(hard !== null ? { timeLimit: hard } : {}),
        ...(soft !== null ? { softTimeLimit: soft } : {}),
        ignoreResult: ignore_result,
        headers: custom,
        priority: plan.priority ?? request.message.properties.priority ?? 0,
        chain: request.message.embed.chain,
        chord: request.message.embed.chord,
        ...(request.message.embed.callbacks ? { link: request.message.embed.callbacks } : {}),
        ...(request.message.embed.errbacks ? { linkError: request.message.embed.errbacks } : {}),
        ...(plan.queue
          ? { queue: plan.queue }
          : {
              exchange: request.delivery.exchange,
              routingKey: request.delivery.routingKey,
              queue: request.delivery.queue,
            }),
      },
    );
    const exc = reason ?? outcome.retry;
    const traceback = tracebackOf(exc);
    await this.store(request, task, TaskState.RETRY, encodeException(exc), traceback, true);
    await hooks();
    await request.ack();
    this.env.logger.info(
      { taskId: request.id, task: request.displayName, retries: nextRetries },
      outcome.retry.message,
    );
    this.emitEvent({
      type: "task-retried",
      uuid: request.id,
      exception: exceptionRepr(exc),
      traceback,
    });
  }

  /** A revoked, terminated or expired task: REVOKED stored, message acked. */
  async revoked(
    request: Request,
    task: RegisteredTask | undefined,
    reason: "revoked" | "terminated" | "expired",
    signum: number | null = null,
  ) {
    await this.store(
      request,
      task,
      TaskState.REVOKED,
      encodeException(new TaskRevokedError(reason)),
      null,
      true,
    );
    await this.guard(request, "could not count the task towards its chord", () =>
      this.countChordPart(
        request,
        request.message.embed.chord,
        TaskState.REVOKED,
        new TaskRevokedError(reason),
      ),
    );
    await request.ack();
    this.env.logger.info(
      { taskId: request.id, task: request.displayName, reason },
      `task ${reason}`,
    );
    this.emitEvent({
      type: "task-revoked",
      uuid: request.id,
      terminated: reason === "terminated",
      signum,
      expired: reason === "expired",
    });
  }

  /** A message naming a task this worker does not know: FAILURE stored, message rejected (as Celery). */
  async notRegistered(request: Request) {
    const error = new NotRegistered(request.name);
    this.env.logger.error(
      { taskId: request.id, task: request.name },
      `received unregistered task of type ${JSON.stringify(request.name)}: message rejected`,
    );
    if (this.backend)
      await this.backend.store(this.meta(request, TaskState.FAILURE, encodeException(error), null));
    await request.reject(false);
    this.emitEvent({
      type: "task-failed",
      uuid: request.id,
      exception: exceptionRepr(error),
      traceback: null,
    });
  }
}
