/**
 * Type tests of the canvas: partial signatures know which arguments they still expect, a chain
 * rejects a step that cannot take the previous result, and results are typed to get().
 */
import { describe, expectTypeOf, it } from "vitest";
import {
  type AsyncResult,
  chain,
  chord,
  chunks,
  createApp,
  type GroupResult,
  group,
} from "../../sdk/src/index.js";

const app = createApp({ broker: "memory://types-canvas" });
const add = app.task("types.canvas.add", (_ctx, x: number, y: number) => x + y);
const total = app.task("types.canvas.total", (_ctx, xs: number[]) => xs.reduce((a, b) => a + b, 0));
const shout = app.task("types.canvas.shout", (_ctx, s: string) => s.toUpperCase());
const len = app.task("types.canvas.len", (_ctx, s: string) => s.length);

describe("signatures", () => {
  it("take the last arguments now and expect the first ones later", () => {
    expectTypeOf(add.s(1, 2).delay).parameters.toEqualTypeOf<[]>();
    expectTypeOf(add.s(2).delay).parameters.toEqualTypeOf<[x: number]>();
    expectTypeOf(add.s(2).delay(1)).resolves.toEqualTypeOf<AsyncResult<number>>();
    // @ts-expect-error a string is not a number
    void add.s("2");
    // @ts-expect-error too many arguments
    void add.s(1, 2, 3);
    // @ts-expect-error immutable signatures take every argument now
    void add.si(1);
  });
});

describe("chains", () => {
  it("are typed by their last step", () => {
    const c = chain(add.s(1, 2), add.s(10), add.si(100, 200));
    expectTypeOf(c.delay()).resolves.toEqualTypeOf<AsyncResult<number>>();
    const piped = shout.s("a").pipe(len.s());
    expectTypeOf(piped.delay()).resolves.toEqualTypeOf<AsyncResult<number>>();
  });

  it("reject a step that cannot take the previous result", () => {
    // @ts-expect-error len takes a string, add returns a number
    void chain(add.s(1, 2), len.s());
    // @ts-expect-error a full signature has no room for the previous result
    void chain(add.s(1, 2), add.s(3, 4));
    // @ts-expect-error shout takes a string
    void add.s(1, 2).pipe(shout.s());
    // Python tasks by name take anything.
    void chain(add.s(1, 2), app.signature<string>("py.format"), len.s());
  });
});

describe("groups and chords", () => {
  it("give every member's result in order", () => {
    const g = group([add.s(1, 1), shout.s("a")]);
    expectTypeOf(g.delay()).resolves.toEqualTypeOf<GroupResult<[number, string]>>();
    const many = group([1, 2, 3].map((i) => add.s(i, i)));
    expectTypeOf(many.delay()).resolves.toEqualTypeOf<GroupResult<number[]>>();
  });

  it("type the callback by the header's results", () => {
    const c = chord([add.s(1, 1), add.s(2, 2)], total.s());
    expectTypeOf(c.delay()).resolves.toEqualTypeOf<AsyncResult<number>>();
    // @ts-expect-error the callback gets a list of numbers, not a string
    void chord([add.s(1, 1)], shout.s());
  });

  it("types chunks as lists of results", () => {
    expectTypeOf(chunks(add, [[1, 2]], 10).delay()).resolves.toEqualTypeOf<
      GroupResult<number[][]>
    >();
    // @ts-expect-error argument tuples are add's
    void chunks(add, [["1", 2]], 10);
  });
});
