/**
 * Applying a signature of any kind — a task, a chain, a group, a chord, chunks — from its dict,
 * as Celery 5.2's canvas does (`celery/canvas.py`): the same ids frozen up front, the same
 * options on every message, the same reversed `chain` field, the same chord header fields. The
 * typed canvas objects, and the worker sending links and chain steps, all end here, so a
 * workflow built in Python and one built here are sent alike.
 *
 * Options are Celery's `apply_async` options (snake_case, as signature dicts carry them).
 */
import { randomUUID } from "node:crypto";
import type { App } from "../app.js";
import { CeleriacError } from "../errors.js";
import { AsyncResult, type BackendSource } from "../producer/async-result.js";
import { GroupResult, type ResultHandle } from "../producer/group-result.js";
import type { SignatureDict } from "../protocol/message.js";
import type { Kwargs } from "../task.js";
import { sendOptionsFromSignature } from "./signature-dict.js";

type Options = Record<string, unknown>;

/** Who sends: used for `parent_id`/`root_id` when the options do not set them (Celery's current task). */
export interface Lineage {
  parentId?: string | null;
  rootId?: string | null;
}

export const CHAIN = "celery.chain";
export const GROUP = "celery.group";
export const CHORD = "celery.chord";
export const CHUNKS = "celery.chunks";
export const STARMAP = "celery.starmap";
export const MAP = "celery.map";

/** A new signature dict with Celery's field order. */
export function signatureDict(
  task: string,
  args: unknown[] = [],
  kwargs: Kwargs = {},
  options: Options = {},
  subtaskType: SignatureDict["subtask_type"] = null,
  immutable = false,
): SignatureDict {
  return { task, args, kwargs, options, subtask_type: subtaskType, immutable };
}

/** A signature's kind: null for a task, else "chain", "group", "chord", "chunks" … */
export const kind = (sig: SignatureDict) => sig.subtask_type ?? null;

/** Options without the ones set to null or undefined, which Celery's `apply_async` drops. */
function defined(options: Options): Options {
  const out: Options = {};
  for (const [k, v] of Object.entries(options)) if (v !== null && v !== undefined) out[k] = v;
  return out;
}

/** Members of a group or chain dict (`kwargs.tasks`), the dict's own array. */
export function tasksOf(sig: SignatureDict): SignatureDict[] {
  const tasks = sig.kwargs?.tasks;
  return Array.isArray(tasks) ? (tasks as SignatureDict[]) : [];
}

/** A chord's header as a group dict (Celery wraps a list of signatures the same way). */
function headerOf(sig: SignatureDict): SignatureDict {
  const header = sig.kwargs?.header as SignatureDict | SignatureDict[] | undefined;
  if (Array.isArray(header)) return signatureDict(GROUP, [], { tasks: header }, {}, "group");
  if (header && kind(header) === "group") return header;
  return signatureDict(GROUP, [], { tasks: header ? [header] : [] }, {}, "group");
}

function bodyOf(sig: SignatureDict): SignatureDict {
  const body = sig.kwargs?.body as SignatureDict | undefined;
  if (!body) throw new CeleriacError("INVALID_ARGUMENTS", "a chord needs a callback (its body)");
  return body;
}

/**
 * Celery's `Signature.clone(args, kwargs, **options)`: a deep copy with partial args prepended,
 * kwargs and options merged, unless the signature is immutable (then only options merge). A
 * `group_id` already set is kept: changing it would stall the group it belongs to.
 */
export function cloneSignature(
  sig: SignatureDict,
  args: readonly unknown[] = [],
  kwargs: Kwargs = {},
  options: Options = {},
): SignatureDict {
  const copy = structuredClone(sig);
  copy.args ??= [];
  copy.kwargs ??= {};
  copy.options ??= {};
  for (const [k, v] of Object.entries(defined(options)))
    if (!(k === "group_id" && "group_id" in copy.options)) copy.options[k] = v;
  if (!copy.immutable) {
    if (args.length) copy.args = [...args, ...copy.args];
    if (Object.keys(kwargs).length) copy.kwargs = { ...copy.kwargs, ...kwargs };
  }
  return copy;
}

function appendToListOption(sig: SignatureDict, key: "link" | "link_error", value: SignatureDict) {
  const current = sig.options[key];
  const list = Array.isArray(current) ? current : current ? [current] : [];
  const text = JSON.stringify(value);
  if (!list.some((v) => JSON.stringify(v) === text)) list.push(value);
  sig.options[key] = list;
}

/** `link_error` on any kind: a group's members each get it, a chord's body gets it. */
export function addErrback(sig: SignatureDict, errback: SignatureDict): void {
  if (kind(sig) === "group") for (const t of tasksOf(sig)) addErrback(t, errback);
  else if (kind(sig) === "chord") addErrback(bodyOf(sig), errback);
  else appendToListOption(sig, "link_error", errback);
}

/** `link` on any kind: a chord's body gets it; a group's first member gets it, made immutable. */
export function addCallback(sig: SignatureDict, callback: SignatureDict): void {
  if (kind(sig) === "group") {
    const first = tasksOf(sig)[0];
    if (first) addCallback(first, { ...structuredClone(callback), immutable: true });
  } else if (kind(sig) === "chord") addCallback(bodyOf(sig), callback);
  else appendToListOption(sig, "link", callback);
}

/** How many completions a signature contributes to a chord it is in the header of (`_descend`). */
export function chordSize(sig: SignatureDict): number {
  switch (kind(sig)) {
    case "group":
      return tasksOf(sig).reduce((n, t) => n + chordSize(t), 0);
    case "chain":
      for (const step of [...tasksOf(sig)].reverse()) {
        const n = chordSize(step);
        if (n > 0) return n;
      }
      return 0;
    case "chord":
      return chordSize(bodyOf(sig));
    default:
      return 1;
  }
}

interface Freeze {
  id?: string | null;
  groupId?: string | null;
  chord?: SignatureDict | null;
  rootId?: string | null;
  parentId?: string | null;
  groupIndex?: number | null;
}

/**
 * The engine: one app, turning dicts into messages. Created per apply; cheap.
 */
export class Applier {
  constructor(
    private readonly app: App,
    private readonly lineage: Lineage = {},
  ) {}

  private get source(): BackendSource {
    return async () => (await this.app.connect()).backend;
  }

  /** Apply `sig` with partial args and kwargs (prepended / merged) and extra options. */
  async apply(
    sig: SignatureDict,
    args: readonly unknown[] = [],
    kwargs: Kwargs = {},
    options: Options = {},
  ): Promise<ResultHandle> {
    switch (kind(sig)) {
      case "chain":
        return this.applyChain(sig, args, kwargs, defined(options));
      case "group":
        return this.applyGroup(sig, args, kwargs, defined(options));
      case "chord":
        return this.applyChord(sig, args, kwargs, defined(options));
      case "chunks":
        return this.applyGroup(chunksGroup(sig), args, kwargs, defined(options));
      case "xmap":
      case "xstarmap":
        return this.applyMap(sig, options);
      default:
        return this.applyTask(sig, args, kwargs, options);
    }
  }

  private async applyTask(
    sig: SignatureDict,
    args: readonly unknown[],
    kwargs: Kwargs,
    options: Options,
  ): Promise<AsyncResult> {
    const merged = cloneSignature(sig, args, kwargs, options);
    const definition = this.app.registry.get(merged.task)?.definition ?? {
      name: merged.task,
      options: {},
      schemas: {},
    };
    const send = sendOptionsFromSignature(merged);
    return this.app.send(definition, merged.args, {
      ...(this.lineage.parentId ? { parentId: this.lineage.parentId } : {}),
      ...(this.lineage.rootId ? { rootId: this.lineage.rootId } : {}),
      ...send,
    });
  }

  /** `celery.starmap`/`celery.map` with `{task, it}`: routed like the task it maps (Celery's route_name). */
  private applyMap(sig: SignatureDict, options: Options): Promise<AsyncResult> {
    const inner = (sig.kwargs?.task as SignatureDict | undefined)?.task;
    const queue = inner ? this.app.registry.get(inner)?.options.queue : undefined;
    const plain = { ...sig, subtask_type: null, immutable: true };
    return this.applyTask(plain, [], {}, { ...(queue ? { queue } : {}), ...options });
  }

  /** Celery's `Signature.freeze`: give the signature its ids now; return its result handle. */
  freeze(sig: SignatureDict, f: Freeze = {}): ResultHandle {
    switch (kind(sig)) {
      case "group":
        return this.freezeGroup(sig, f);
      case "chain":
        return this.freezeChain(sig, f);
      case "chord":
        return this.freezeChord(sig, f);
      case "chunks":
        throw new CeleriacError(
          "INVALID_ARGUMENTS",
          "chunks cannot be part of a chain or chord as is: use chunks(...).group()",
        );
      default: {
        sig.options ??= {};
        const o = sig.options;
        o.task_id ??= f.id || randomUUID();
        if (f.rootId) o.root_id = f.rootId;
        if (f.parentId) o.parent_id = f.parentId;
        if (!("reply_to" in o)) o.reply_to = this.app.oid;
        if (f.groupId && !("group_id" in o)) o.group_id = f.groupId;
        if (f.chord) o.chord = f.chord;
        if (f.groupIndex !== null && f.groupIndex !== undefined) o.group_index = f.groupIndex;
        return new AsyncResult(o.task_id as string, this.source);
      }
    }
  }

  /**
   * Celery's `group._freeze_group_tasks` and `_freeze_unroll`: nested groups unrolled, members
   * indexed in the order they are unrolled. Celery unrolls with `deque.extendleft`, which puts a
   * nested group's members back in reverse: `group(a, group(b, c), d)` gives a, c, b, d. That
   * order is kept, so `group_index` and a chord callback's results are what Python gives.
   */
  private freezeGroup(sig: SignatureDict, f: Freeze): GroupResult {
    sig.options ??= {};
    const o = sig.options;
    o.task_id ??= f.groupId || randomUUID();
    const gid = o.task_id as string;
    if (f.groupId) o.group_id = f.groupId;
    if (f.chord) o.chord = f.chord;
    if (f.groupIndex !== null && f.groupIndex !== undefined) o.group_index = f.groupIndex;
    if (!("root_id" in o)) o.root_id = f.rootId ?? null;
    if (!("parent_id" in o)) o.parent_id = f.parentId ?? null;
    const members: SignatureDict[] = [];
    const results: ResultHandle[] = [];
    const stack = [...tasksOf(sig)];
    while (stack.length) {
      const task = cloneSignature(stack.shift()!);
      if (kind(task) === "group") {
        stack.unshift(...[...tasksOf(task)].reverse());
        continue;
      }
      members.push(task);
      results.push(
        this.freeze(task, {
          groupId: f.groupId ?? null,
          chord: f.chord ?? null,
          rootId: (o.root_id as string | null) ?? null,
          parentId: (o.parent_id as string | null) ?? null,
          groupIndex: members.length - 1,
        }),
      );
    }
    sig.kwargs = { ...sig.kwargs, tasks: members };
    return new GroupResult(gid, results, this.source);
  }

  private freezeChain(sig: SignatureDict, f: Freeze): ResultHandle {
    const { tasks, results } = this.prepareSteps(sig.args ?? [], sig.kwargs ?? {}, tasksOf(sig), {
      rootId: f.rootId ?? null,
      parentId: f.parentId ?? null,
      lastTaskId: f.id ?? null,
      groupId: f.groupId ?? null,
      chord: f.chord ?? null,
      groupIndex: f.groupIndex ?? null,
      clone: false,
    });
    // Unlike Celery, the steps as prepared (a group followed by a task upgraded to a chord) are
    // kept, so applying the frozen chain later sends exactly what was frozen.
    sig.kwargs = { ...sig.kwargs, tasks: [...tasks].reverse() };
    sig.args = [];
    const last = results[0];
    if (!last) throw new CeleriacError("INVALID_ARGUMENTS", "a chain needs at least one step");
    return last;
  }

  /** Celery's `_chord.freeze`: the header knows the body; the body's result is the chord's. */
  private freezeChord(sig: SignatureDict, f: Freeze): ResultHandle {
    const header = headerOf(sig);
    const body = bodyOf(sig);
    sig.kwargs = { ...sig.kwargs, header };
    this.freezeGroup(header, {
      parentId: f.parentId ?? null,
      rootId: f.rootId ?? null,
      chord: body,
    });
    const result = this.freeze(body, {
      id: f.id ?? null,
      rootId: f.rootId ?? null,
      chord: f.chord ?? null,
      groupId: f.groupId ?? null,
      groupIndex: f.groupIndex ?? null,
    });
    sig.options.task_id = header.options.task_id;
    return result;
  }

  /**
   * Celery's `_chain.prepare_steps`: walk the steps from the last, freeze each (the last one
   * gets the chain's group and chord, so a chain inside a group or chord completes it), splice
   * nested chains, and upgrade a group followed by a step into a chord. Returns the steps
   * reversed, the order of the message's `chain` field.
   */
  private prepareSteps(
    args: readonly unknown[],
    kwargs: Kwargs,
    steps: SignatureDict[],
    p: {
      rootId: string | null;
      parentId: string | null;
      lastTaskId: string | null;
      groupId: string | null;
      chord: SignatureDict | null;
      groupIndex: number | null;
      clone: boolean;
      linkError?: SignatureDict[];
    },
  ): { tasks: SignatureDict[]; results: ResultHandle[] } {
    const pending = [...steps];
    const tasks: SignatureDict[] = [];
    const results: ResultHandle[] = [];
    let prevTask: SignatureDict | undefined;
    let prevRes: ResultHandle | undefined;
    let i = 0;
    while (pending.length) {
      let task = pending.pop()!;
      const isFirst = pending.length === 0;
      const isLast = i === 0;
      if (kind(task) === "group" && tasksOf(task).length === 1)
        task = cloneSignature(tasksOf(task)[0]!);
      if (p.clone) task = isFirst ? cloneSignature(task, args, kwargs) : cloneSignature(task);
      else if (isFirst && !task.immutable) task.args = [...args, ...(task.args ?? [])];
      if (kind(task) === "chain") {
        pending.push(...tasksOf(task));
        continue;
      }
      if (kind(task) === "group" && prevTask) {
        tasks.pop();
        results.pop();
        task = signatureDict(
          CHORD,
          [],
          { kwargs: {}, header: task, body: prevTask },
          {
            ...(prevRes instanceof AsyncResult ? { task_id: prevRes.id } : {}),
            ...(p.rootId ? { root_id: p.rootId } : {}),
          },
          "chord",
        );
      }
      const res = isLast
        ? this.freeze(task, {
            id: p.lastTaskId,
            rootId: p.rootId,
            groupId: p.groupId,
            chord: p.chord,
            groupIndex: p.groupIndex,
          })
        : this.freeze(task, { rootId: p.rootId });
      i++;
      for (const errback of p.linkError ?? []) addErrback(task, errback);
      tasks.push(task);
      results.push(res);
      prevTask = task;
      prevRes = res;
    }
    return { tasks, results };
  }

  /** Celery's `_chain.run`: send the first step with the rest, reversed, in its `chain` field. */
  private async applyChain(
    sig: SignatureDict,
    args: readonly unknown[],
    kwargs: Kwargs,
    options: Options,
  ): Promise<ResultHandle> {
    const { group_id, chord, task_id, link, link_error, root_id, parent_id, group_index, ...rest } =
      { ...sig.options, ...options };
    const own = sig.args ?? [];
    const chainArgs = args.length && !sig.immutable ? [...args, ...own] : own;
    const list = (v: unknown) => (Array.isArray(v) ? v : v ? [v] : []) as SignatureDict[];
    const { tasks, results } = this.prepareSteps(chainArgs, kwargs, tasksOf(sig), {
      rootId: (root_id as string) ?? null,
      parentId: (parent_id as string) ?? null,
      lastTaskId: (task_id as string) ?? null,
      groupId: (group_id as string) ?? null,
      chord: (chord as SignatureDict) ?? null,
      groupIndex: (group_index as number) ?? null,
      clone: true,
      linkError: list(link_error),
    });
    const first = tasks.pop();
    if (!first) throw new CeleriacError("INVALID_ARGUMENTS", "a chain needs at least one step");
    for (const callback of list(link)) addCallback(tasks[0] ?? first, callback);
    // Never mutate a `chain` given in the options: a group applies the same options to every
    // member (Celery issue #5354).
    const chain = Array.isArray(rest.chain)
      ? [...(rest.chain as SignatureDict[]), ...tasks]
      : tasks;
    const sent = await this.apply(
      first,
      [],
      {},
      {
        ...rest,
        chain,
        ...(parent_id ? { parent_id } : {}),
      },
    );
    return tasks.length === 0 ? sent : results[0]!;
  }

  /** Celery's `group.apply_async`: members sent with the group's id (and the chord, if any). */
  private async applyGroup(
    sig: SignatureDict,
    args: readonly unknown[],
    kwargs: Kwargs,
    options: Options,
  ): Promise<GroupResult> {
    if (options.link)
      throw new CeleriacError("INVALID_OPTION", "cannot link a group: use a chord instead");
    if (options.link_error)
      throw new CeleriacError("INVALID_OPTION", "cannot link_error a group: set it on its members");
    const { task_id, ...opts } = { ...sig.options, ...options };
    const groupId = (task_id as string | undefined) || randomUUID();
    opts.group_id = groupId;
    const rootId = (opts.root_id as string | null | undefined) ?? null;
    const members: SignatureDict[] = [];
    const results: ResultHandle[] = [];
    const unroll = (list: SignatureDict[]) => {
      for (const t of list) {
        const task = cloneSignature(t);
        if (kind(task) === "group") unroll(tasksOf(task));
        else {
          members.push(task);
          results.push(this.freeze(task, { groupId, rootId }));
        }
      }
    };
    unroll(tasksOf(sig));
    // The chord this group is the header of: given, or frozen into its members (a chain member
    // carries it on its last step).
    const chordOf = (sig: SignatureDict): SignatureDict | undefined =>
      kind(sig) === "chain"
        ? tasksOf(sig).map(chordOf).at(-1)
        : (sig.options?.chord as SignatureDict | undefined);
    const headerChord =
      (opts.chord as SignatureDict | undefined) ?? members.map(chordOf).find(Boolean);
    const counter = headerChord ? await this.requireChords() : undefined;
    let size = 0;
    for (const [i, member] of members.entries()) {
      size += chordSize(member);
      // Set before the last member is sent, as Celery does: the counter cannot complete before.
      if (counter && i === members.length - 1) await counter.setChordSize(groupId, size);
      const chord = (opts.chord as SignatureDict | undefined) ?? member.options.chord;
      await this.apply(member, args, kwargs, { ...opts, ...(chord ? { chord } : {}) });
    }
    return new GroupResult(groupId, results, this.source);
  }

  private async requireChords() {
    const backend = (await this.app.connect()).backend;
    if (!backend)
      throw new CeleriacError(
        "NO_BACKEND",
        "a chord needs a result backend: set resultBackend (redis:// or memory://)",
      );
    if (!backend.capabilities.chords || !backend.setChordSize || !backend.addChordPart)
      throw new CeleriacError(
        "CHORDS_UNSUPPORTED",
        `the result backend ${backend.displayUrl} does not support chords: use redis:// or memory://`,
      );
    return backend as typeof backend & Required<Pick<typeof backend, "setChordSize">>;
  }

  /** Celery's `_chord.apply_async` and `run`. */
  private async applyChord(
    sig: SignatureDict,
    args: readonly unknown[],
    _kwargs: Kwargs,
    options: Options,
  ): Promise<ResultHandle> {
    await this.requireChords();
    const own = sig.args ?? [];
    const partial = args.length && !sig.immutable ? [...args, ...own] : own;
    const { task_id: _t, ...bodyOptions } = options;
    const body = cloneSignature(bodyOf(sig), [], {}, bodyOptions);
    const header = cloneSignature(headerOf(sig));
    const { task_id, ...merged } = { ...sig.options, ...options };
    const groupId = (header.options.task_id as string | undefined) || randomUUID();
    const rootId = (body.options.root_id as string | undefined) ?? null;
    Object.assign(body.options, defined(merged));
    const result = this.freeze(body, { id: (task_id as string) ?? null, rootId });
    const { chain: _c, chord: _ch, ...headerOptions } = merged;
    const frozen = this.freezeGroup(header, { groupId, chord: body, rootId });
    if (tasksOf(header).length === 0) {
      await this.apply(body, [[]]);
      return result;
    }
    // A header holding group results (a chain ending in a group, a chord whose callback is a
    // group: nested groups themselves are unrolled) is saved, as Celery's `apply_chord` does, so
    // the counter gives the callback their results nested (see chord-counter.ts).
    if (frozen.results.some((r) => (r as unknown) instanceof GroupResult)) await frozen.save();
    await this.applyGroup(header, partial, {}, { ...headerOptions, task_id: groupId });
    return result;
  }
}

/** A chunk size must be a positive integer. */
export function checkChunkSize(n: unknown): asserts n is number {
  if (!(Number.isInteger(n) && (n as number) > 0))
    throw new CeleriacError("INVALID_ARGUMENTS", `chunks needs a positive chunk size, got ${n}`);
}

/** Celery's `chunks.group()`: the argument tuples cut into parts of `n`, one `celery.starmap` each. */
export function chunksGroup(sig: SignatureDict): SignatureDict {
  const { task, it, n } = sig.kwargs as { task: SignatureDict; it: unknown[][]; n: number };
  checkChunkSize(n);
  const parts: SignatureDict[] = [];
  for (let i = 0; i < it.length; i += n)
    parts.push(signatureDict(STARMAP, [], { task, it: it.slice(i, i + n) }, {}, "xstarmap", true));
  return signatureDict(GROUP, [], { tasks: parts }, { ...sig.options }, "group");
}

/** Apply a signature dict from anywhere (the canvas objects, the worker). */
export function applySignature(
  app: App,
  sig: SignatureDict,
  args: readonly unknown[] = [],
  kwargs: Kwargs = {},
  options: Options = {},
  lineage: Lineage = {},
): Promise<ResultHandle> {
  return new Applier(app, lineage).apply(sig, args, kwargs, options);
}
