/**
 * Celery's `|` on signature dicts (`Signature.__or__` and its overrides in `canvas.py`), which
 * `chain(a, b, c)` folds over: task | task is a chain, a group followed by anything is a chord
 * whose callback is what follows, a chord followed by a task grows its callback into a chain.
 */

import type { SignatureDict } from "../protocol/message.js";
import { addErrback, CHAIN, CHORD, kind, signatureDict, tasksOf } from "./apply.js";

export function chainDict(
  tasks: SignatureDict[],
  options: Record<string, unknown> = {},
): SignatureDict {
  return signatureDict(CHAIN, [], { tasks }, options, "chain");
}

export function chordDict(header: SignatureDict, body: SignatureDict): SignatureDict {
  return signatureDict(CHORD, [], { kwargs: {}, header, body }, {}, "chord");
}

/** A group of one is just its member (Celery's `maybe_unroll_group`). */
function unrollGroup(group: SignatureDict): SignatureDict {
  const tasks = tasksOf(group);
  return tasks.length === 1 ? tasks[0]! : group;
}

/** A chain's steps, with the chain's own errbacks given to each (Celery's `unchain_tasks`). */
function unchain(chain: SignatureDict): SignatureDict[] {
  const tasks = tasksOf(chain);
  const errbacks = chain.options?.link_error;
  if (Array.isArray(errbacks))
    for (const e of errbacks as SignatureDict[]) for (const t of tasks) addErrback(t, e);
  return tasks;
}

/** `a | b`. Neither dict is changed. */
export function pipe(left: SignatureDict, right: SignatureDict): SignatureDict {
  // Copies: the members taken out of them below are changed (errbacks added, bodies grown).
  const a = structuredClone(left);
  const b = structuredClone(right);
  switch (kind(a)) {
    case "group":
      return chordDict(a, b);
    case "chain": {
      const tasks = unchain(a);
      if (kind(b) === "group") {
        const other = unrollGroup(b);
        return tasks.length ? chainDict([...tasks, other]) : other;
      }
      if (kind(b) === "chain") return chainDict([...tasks, ...unchain(b)]);
      const last = tasks[tasks.length - 1];
      if (last && kind(last) === "group") {
        tasks[tasks.length - 1] = chordDict(last, b);
        return chainDict(tasks, a.options);
      }
      if (last && kind(last) === "chord") {
        last.kwargs.body = pipe(last.kwargs.body as SignatureDict, b);
        return chainDict(tasks, a.options);
      }
      return chainDict([...tasks, b]);
    }
    case "chord":
      if (kind(b) !== "group" && kind(b) !== "chain") {
        a.kwargs.body = pipe(a.kwargs.body as SignatureDict, b);
        return a;
      }
      break;
  }
  if (kind(b) === "chain") return chainDict([a, ...unchain(b)]);
  if (kind(b) === "group") return chainDict([a, unrollGroup(b)]);
  return chainDict([a, b]);
}
