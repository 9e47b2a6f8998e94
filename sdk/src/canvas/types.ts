/**
 * Type-level helpers of the canvas: which arguments a partial signature still expects, what a
 * group returns, and whether each step of a chain accepts the result of the step before.
 */
import type { Canvas } from "./canvas.js";

// biome-ignore lint/suspicious/noExplicitAny: any canvas, whatever it returns or expects.
export type AnyCanvas = Canvas<any, any, any>;

/** Every suffix of an argument list: what `add.s(...)` may be given (the rest comes first, later). */
export type Suffixes<A extends unknown[]> = number extends A["length"]
  ? A
  : A extends []
    ? []
    : A | (A extends [unknown?, ...infer Rest] ? Suffixes<Rest> : never);

/** The arguments still expected before `G`, the suffix already given. */
export type Prefix<
  A extends unknown[],
  G extends unknown[],
  Acc extends unknown[] = [],
> = number extends A["length"]
  ? A
  : A["length"] extends G["length"]
    ? Acc
    : A extends [infer H, ...infer T]
      ? Prefix<T, G, [...Acc, H]>
      : Acc;

/** What a canvas returns when it succeeds. */
export type ResultOfCanvas<C> = C extends Canvas<infer R, infer _P, infer _H> ? R : never;

/** What a canvas expects prepended to its arguments (a previous step's result). */
export type ExpectsOf<C> = C extends Canvas<infer _R, infer P, infer _H> ? P : never;

/** What a group (or a chord's header) expects: its members' expectations; nothing when empty. */
export type MembersExpect<T extends readonly unknown[]> = [T[number]] extends [never]
  ? []
  : ExpectsOf<T[number]>;

/** A group's results: one per member, in order. */
export type ResultsOf<T extends readonly unknown[]> = {
  -readonly [K in keyof T]: ResultOfCanvas<T[K]>;
};

/** The result of a chain: its last step's. */
export type LastResult<T extends readonly unknown[]> = T extends readonly [...unknown[], infer L]
  ? ResultOfCanvas<L>
  : T extends readonly (infer E)[]
    ? ResultOfCanvas<E>
    : never;

/** What a chain expects: its first step's expectations. */
export type FirstExpects<T extends readonly unknown[]> = T extends readonly [infer F, ...unknown[]]
  ? ExpectsOf<F>
  : unknown[];

/**
 * A chain's steps, each checked against the result of the one before: a step that cannot take
 * that result (a full signature, or one expecting another type) is replaced by what was expected,
 * so the compiler points at it. Immutable signatures (`.si()`) accept anything.
 */
export type CheckChain<
  T extends readonly unknown[],
  Prev = never,
  First = true,
> = T extends readonly [infer H, ...infer Rest]
  ? [
      First extends true
        ? H
        : H extends Canvas<infer _R, infer P, infer _H>
          ? [Prev] extends P
            ? H
            : Canvas<unknown, [Prev], unknown>
          : H,
      ...CheckChain<Rest, ResultOfCanvas<H>, false>,
    ]
  : T;
