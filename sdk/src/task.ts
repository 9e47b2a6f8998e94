/**
 * Typed task definitions. A task's name is its identity on the wire; its argument, keyword and
 * result types are what producer and worker agree on. Two ways to define one:
 *
 * - inline, where the handler lives: `app.task("tasks.add", (ctx, x: number, y: number) => x + y)`;
 * - contract first, in a module both sides import: `defineTask<[x: number, y: number], number>("tasks.add")`
 *   (or with zod schemas), implemented by the worker with `app.task(def, handler)` and sent by a
 *   producer with `app.client(def)` without importing the worker's code.
 */
import type { z } from "zod";
import { type TaskOptions, validateTaskOptions } from "./options.js";
import type { TaskContext } from "./worker/context.js";

export type Kwargs = Record<string, unknown>;

/** The handler of a task: the context first (like Celery's bound `self`), then the positional args. */
export type TaskHandler<A extends unknown[], R, K extends Kwargs = Kwargs> = (
  ctx: TaskContext<K>,
  ...args: A
) => R | Promise<R>;

/** zod schemas of a task's arguments, keyword arguments and result. */
export interface TaskSchemas {
  args?: z.ZodType<unknown[]>;
  kwargs?: z.ZodType<Kwargs>;
  result?: z.ZodType;
}

/** A task's contract: its name, types and default options; shared by producer and worker. */
export interface TaskDefinition<
  A extends unknown[] = unknown[],
  R = unknown,
  K extends Kwargs = Kwargs,
> {
  readonly name: string;
  readonly options: Readonly<TaskOptions>;
  readonly schemas: Readonly<TaskSchemas>;
  /** Types only: never set at run time. */
  readonly __types?: { args: A; result: R; kwargs: K };
}

export type ArgsOf<D> = D extends TaskDefinition<infer A, unknown, Kwargs> ? A : never;
export type ResultOf<D> = D extends TaskDefinition<unknown[], infer R, Kwargs> ? R : never;
export type KwargsOf<D> = D extends TaskDefinition<unknown[], unknown, infer K> ? K : never;

export interface DefineTaskOptions<S extends TaskSchemas = TaskSchemas> extends TaskOptions {
  schemas?: S;
}

type InferArgs<S extends TaskSchemas> =
  S["args"] extends z.ZodType<infer A extends unknown[]> ? A : unknown[];
type InferKwargs<S extends TaskSchemas> =
  S["kwargs"] extends z.ZodType<infer K extends Kwargs> ? K : Kwargs;
type InferResult<S extends TaskSchemas> = S["result"] extends z.ZodType<infer R> ? R : unknown;

/**
 * Define a task's contract without its handler.
 *
 * @example
 * export const add = defineTask<[x: number, y: number], number>("tasks.add");
 * export const resize = defineTask("images.resize", {
 *   schemas: { args: z.tuple([z.string().url(), z.number().int()]), result: z.string() },
 * });
 */
export function defineTask<A extends unknown[], R = unknown, K extends Kwargs = Kwargs>(
  name: string,
  options?: TaskOptions,
): TaskDefinition<A, R, K>;
export function defineTask<S extends TaskSchemas>(
  name: string,
  options: DefineTaskOptions<S> & { schemas: S },
): TaskDefinition<InferArgs<S>, InferResult<S>, InferKwargs<S>>;
export function defineTask(name: string, options: DefineTaskOptions = {}): TaskDefinition {
  if (typeof name !== "string" || name.trim() === "")
    throw new TypeError("a task needs a non-empty name");
  const { schemas = {}, ...taskOptions } = options;
  return Object.freeze({
    name,
    options: Object.freeze(validateTaskOptions(name, taskOptions)),
    schemas: Object.freeze({ ...schemas }),
  });
}
