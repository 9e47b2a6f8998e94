/** Task states, as Celery names and orders them. */

export const TaskState = {
  PENDING: "PENDING",
  RECEIVED: "RECEIVED",
  STARTED: "STARTED",
  SUCCESS: "SUCCESS",
  FAILURE: "FAILURE",
  RETRY: "RETRY",
  REVOKED: "REVOKED",
  REJECTED: "REJECTED",
  IGNORED: "IGNORED",
} as const;

export type TaskState = (typeof TaskState)[keyof typeof TaskState];

/** States after which the task will not change again. */
export const READY_STATES: ReadonlySet<string> = new Set([
  TaskState.SUCCESS,
  TaskState.FAILURE,
  TaskState.REVOKED,
]);
/** States whose result is an exception. */
export const EXCEPTION_STATES: ReadonlySet<string> = new Set([
  TaskState.RETRY,
  TaskState.FAILURE,
  TaskState.REVOKED,
]);
/** States whose exception `get()` re-raises. */
export const PROPAGATE_STATES: ReadonlySet<string> = new Set([
  TaskState.FAILURE,
  TaskState.REVOKED,
]);

// Celery's precedence, highest first: SUCCESS > FAILURE > (custom) > REVOKED > STARTED > RECEIVED > REJECTED > RETRY > PENDING.
const PRECEDENCE = [
  "SUCCESS",
  "FAILURE",
  null,
  "REVOKED",
  "STARTED",
  "RECEIVED",
  "REJECTED",
  "RETRY",
  "PENDING",
];
const CUSTOM_RANK = PRECEDENCE.indexOf(null);

/** Lower is stronger; unknown (custom) states rank between FAILURE and REVOKED, as in Celery. */
export function precedence(state: string): number {
  const i = PRECEDENCE.indexOf(state);
  return i === -1 ? CUSTOM_RANK : i;
}

/**
 * True when an event in state `next` replaces a task's `current` state (Celery's merge rule in
 * `events.state.Task.event`): a stronger or equal state wins, and RETRY is outside the order
 * because a retried task runs again (RETRY -> RECEIVED -> STARTED …). Unlike Celery, a RETRY
 * that arrives after a ready state is taken as late and ignored: a finished task never moves back.
 */
export function isStateAdvance(current: string, next: string): boolean {
  if (next === TaskState.RETRY) return !READY_STATES.has(current);
  if (current === TaskState.RETRY) return true;
  return precedence(next) <= precedence(current);
}
