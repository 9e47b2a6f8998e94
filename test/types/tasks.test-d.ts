/**
 * Type tests: wrong argument types or counts are compile errors, and result types flow to get().
 * Checked by `tsc` (npm run typecheck) and by vitest's typecheck project.
 */
import { describe, expectTypeOf, it } from "vitest";
import { z } from "zod";
import { type AsyncResult, createApp, defineTask, type TaskContext } from "../../sdk/src/index.js";

const app = createApp({ broker: "memory://types" });

describe("inline tasks", () => {
  const add = app.task("types.add", (_ctx, x: number, y: number) => x + y);
  const greet = app.task(
    "types.greet",
    async (ctx: TaskContext<{ loud?: boolean }>, name: string) =>
      ctx.kwargs.loud ? name.toUpperCase() : name,
  );

  it("types delay and applyAsync from the handler", () => {
    expectTypeOf(add.delay).parameters.toEqualTypeOf<[x: number, y: number]>();
    expectTypeOf(add.delay(1, 2)).resolves.toEqualTypeOf<AsyncResult<number>>();
    // @ts-expect-error a string is not a number
    void add.delay("1", 2);
    // @ts-expect-error too few arguments
    void add.delay(1);
    // @ts-expect-error too many arguments
    void add.delay(1, 2, 3);
    // @ts-expect-error args must be a tuple of numbers
    void add.applyAsync(["1", 2]);
  });

  it("unwraps async results and types kwargs", async () => {
    const r = await greet.applyAsync(["ada"], { kwargs: { loud: true }, countdown: 5, queue: "q" });
    expectTypeOf(r.get()).resolves.toEqualTypeOf<string>();
    // @ts-expect-error loud is a boolean
    void greet.applyAsync(["ada"], { kwargs: { loud: "yes" } });
  });
});

describe("contract-first tasks", () => {
  const resize = defineTask<[url: string, width: number], { url: string }>("types.resize");
  const parse = defineTask("types.parse", {
    schemas: {
      args: z.tuple([z.string(), z.number().int()]),
      result: z.object({ ok: z.boolean() }),
    },
  });

  it("types a producer that imports only the contract", async () => {
    const client = app.client(resize);
    expectTypeOf(client.delay).parameters.toEqualTypeOf<[url: string, width: number]>();
    expectTypeOf((await client.delay("https://x", 10)).get()).resolves.toEqualTypeOf<{
      url: string;
    }>();
    // @ts-expect-error width is a number
    void client.delay("https://x", "10");
  });

  it("infers types from zod schemas", async () => {
    const client = app.client(parse);
    expectTypeOf(client.delay).parameters.toEqualTypeOf<[string, number]>();
    expectTypeOf((await client.delay("a", 1)).get()).resolves.toEqualTypeOf<{ ok: boolean }>();
  });

  it("makes the worker's implementation match the contract", () => {
    app.task(resize, (_ctx, url, width) => {
      expectTypeOf(url).toEqualTypeOf<string>();
      expectTypeOf(width).toEqualTypeOf<number>();
      return { url };
    });
    // @ts-expect-error the handler must return { url: string }
    app.task(resize, (_ctx, url: string) => url.length);
  });
});
