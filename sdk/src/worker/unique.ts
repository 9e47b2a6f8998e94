/**
 * Unique tasks in the worker: a run takes its lock before it starts, renews it while it runs and
 * releases it when it ends, whatever the outcome. A run that finds its lock held ends as its rule
 * says (drop, fail, or retry later) without running. The lock lives in the app's lock store, so
 * every worker of the fleet sees it.
 */
import type { Logger } from "pino";
import type { RegisteredTask } from "../app.js";
import { CeleriacError, Retry } from "../errors.js";
import { UniqueConflictError } from "../locks/errors.js";
import type { Locks } from "../locks/locks.js";
import { lockKey, ruleOfMessage, UNIQUE_HEADER, type UniqueRule } from "../locks/options.js";
import type { LockInfo, LockStore } from "../locks/store.js";
import type { Kwargs } from "../task.js";
import type { Outcome } from "./executor.js";
import type { Request } from "./request.js";

export interface HeldLock {
  readonly key: string;
  /** Stop renewing and free the lock; idempotent. */
  release(): Promise<void>;
}

/** What taking a run's lock gave: the lock to hold while it runs, or how the run ends without running. */
export type Taken = { held: HeldLock } | { ended: Outcome } | null;

export interface UniqueGuardEnv {
  locks: Locks;
  hostname: string;
  logger: Logger;
}

export class UniqueGuard {
  private readonly held = new Set<HeldLock>();

  constructor(private readonly env: UniqueGuardEnv) {}

  /** Take the lock of a run, if its message or task asks for one; null when neither does. */
  async take(request: Request, task: RegisteredTask): Promise<Taken> {
    let rule: UniqueRule | null;
    let key: string;
    let store: LockStore;
    try {
      rule = ruleOfMessage(request.headers[UNIQUE_HEADER], task.options.unique);
      if (!rule) return null;
      key = lockKey(rule, request.name, request.args, request.kwargs as Kwargs);
      store = await this.env.locks.store(this.env.logger);
    } catch (error) {
      // A bad rule or no lock store will not get better by requeueing: the run fails, saying why.
      if (error instanceof CeleriacError) return { ended: { kind: "failure", error, runtime: 0 } };
      throw error;
    }
    const ttlMs = Math.max(1, Math.round(rule.ttl * 1000));
    const taken = await store.acquire(
      key,
      { task: request.name, taskId: request.id, worker: this.env.hostname },
      ttlMs,
    );
    if (taken.acquired) return { held: this.hold(store, key, taken.token, ttlMs, request) };
    return { ended: this.conflict(rule, key, taken.holder, request) };
  }

  private conflict(
    rule: UniqueRule,
    key: string,
    holder: LockInfo | null,
    request: Request,
  ): Outcome {
    const error = new UniqueConflictError(key, holder);
    const { chord, chain } = request.message.embed;
    // Held by this very task id: an earlier delivery of the message, whose worker may have died
    // holding the lock (late acks). Dropping or failing would lose the task; it waits instead.
    // A chord's header task or a chain step is failed rather than dropped: a dropped run is
    // never counted for its chord nor continues its chain, so the workflow would wait forever.
    const onConflict =
      holder?.taskId === request.id
        ? "retry"
        : rule.onConflict === "drop" && (chord || chain)
          ? "fail"
          : rule.onConflict;
    this.env.logger.info(
      { taskId: request.id, task: request.displayName, key, holder: holder?.taskId, onConflict },
      `unique lock held: ${error.message}`,
    );
    switch (onConflict) {
      case "drop":
        return { kind: "ignore", runtime: 0 };
      case "fail":
        return { kind: "failure", error, runtime: 0 };
      case "retry": {
        // Spread the wake-ups, so duplicates waiting for one lock do not all try at the same instant.
        const when = Math.round(rule.retryCountdown * (1 + Math.random() / 4) * 1000) / 1000;
        return {
          kind: "retry",
          retry: new Retry({ when, countsAsRetry: false }, error),
          runtime: 0,
        };
      }
    }
  }

  private hold(
    store: LockStore,
    key: string,
    token: string,
    ttlMs: number,
    request: Request,
  ): HeldLock {
    let done = false;
    const renew = setInterval(
      () => {
        store.extend(key, token, ttlMs).then(
          (ours) => {
            if (ours || done) return;
            done = true;
            clearInterval(renew);
            this.env.logger.warn(
              { taskId: request.id, task: request.displayName, key },
              "unique lock lost while the task runs (released by hand, or it expired while the " +
                "event loop was blocked): another run of the same key may start",
            );
          },
          (error: unknown) =>
            this.env.logger.warn({ err: error, key }, "could not renew a unique lock"),
        );
      },
      Math.max(ttlMs / 3, 10),
    );
    renew.unref();
    const held: HeldLock = {
      key,
      release: async () => {
        clearInterval(renew);
        this.held.delete(held);
        if (done) return;
        done = true;
        await store.release(key, token);
      },
    };
    this.held.add(held);
    return held;
  }

  /** Release every lock still held (a worker stopping with tasks it gave up on). */
  async releaseAll(): Promise<void> {
    await Promise.allSettled([...this.held].map((h) => h.release()));
  }
}
