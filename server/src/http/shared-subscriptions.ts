/**
 * Dashboards open the same subscriptions: one operation, same variables, same role. Executing it
 * once and handing each result to every such subscriber makes the cost of a stream independent
 * of how many watch it. Each subscriber still has its own bounded queue, so a slow socket loses
 * its own oldest results without holding up the others.
 */
import { randomBytes } from "node:crypto";
import { type ExecutionResult, GraphQLError } from "graphql";

type Results = AsyncIterableIterator<ExecutionResult>;

interface Shared {
  subscribers: Set<(result: ExecutionResult) => void>;
  source: Results;
}

const QUEUE = 1000;

export class SharedSubscriptions {
  private readonly running = new Map<string, Promise<Shared | ExecutionResult>>();

  /** Subscribe under `key`, starting the execution with `start` only for the first subscriber. */
  async subscribe(
    key: string,
    start: () => Promise<Results | ExecutionResult> | Results | ExecutionResult,
  ): Promise<Results | ExecutionResult> {
    let entry = this.running.get(key);
    if (!entry) {
      entry = Promise.resolve(start()).then((source) => {
        if (!(Symbol.asyncIterator in source)) return source;
        const shared: Shared = { subscribers: new Set(), source };
        void this.pump(key, shared);
        return shared;
      });
      this.running.set(key, entry);
      // An execution that ended in errors is not kept for later subscribers.
      void entry.then((e) => {
        if (!("subscribers" in e)) this.running.delete(key);
      });
    }
    const shared = await entry;
    if (!("subscribers" in shared)) return shared;
    return this.join(key, shared);
  }

  private async pump(key: string, shared: Shared): Promise<void> {
    try {
      for await (const result of shared.source) {
        shareable.add(result);
        for (const deliver of shared.subscribers) deliver(result);
      }
    } catch (error) {
      // A stream that fails ends with an error for its subscribers, never for the process.
      const failed: ExecutionResult = {
        errors: [
          new GraphQLError("the subscription ended unexpectedly", {
            originalError: error as Error,
          }),
        ],
      };
      for (const deliver of shared.subscribers) deliver(failed);
    } finally {
      this.running.delete(key);
      for (const deliver of shared.subscribers) deliver(END);
    }
  }

  private join(key: string, shared: Shared): Results {
    const queue: ExecutionResult[] = [];
    let wake: (() => void) | undefined;
    let ended = false;
    const deliver = (result: ExecutionResult) => {
      if (result === END) ended = true;
      else {
        if (queue.length >= QUEUE) queue.shift();
        queue.push(result);
      }
      wake?.();
    };
    shared.subscribers.add(deliver);
    const leave = async () => {
      shared.subscribers.delete(deliver);
      if (shared.subscribers.size === 0) {
        this.running.delete(key);
        await shared.source.return?.();
      }
    };
    const iterator: Results = {
      async next() {
        for (;;) {
          if (queue.length > 0) return { value: queue.shift()!, done: false };
          if (ended) return { value: undefined, done: true };
          await new Promise<void>((resolve) => {
            wake = resolve;
          });
          wake = undefined;
        }
      },
      async return() {
        ended = true;
        wake?.();
        await leave();
        return { value: undefined, done: true };
      },
      [Symbol.asyncIterator]() {
        return iterator;
      },
    };
    return iterator;
  }
}

const END: ExecutionResult = Object.freeze({});

/**
 * Serializing a result once for all its subscribers: graphql-ws serializes each message per
 * socket, so a shared result is handed to it as a tiny placeholder (`onNext`), and the socket's
 * send puts the JSON, serialized once, in its place. The placeholder's key is random per process,
 * so no task's data can pass for one; the JSON lives as long as the result object does.
 */
const PLACEHOLDER = `__celeriacShared_${randomBytes(8).toString("hex")}`;
const PLACEHOLDER_PATTERN = new RegExp(`\\{"${PLACEHOLDER}":(\\d+)\\}`);
const ids = new WeakMap<ExecutionResult, number>();
const byId = new Map<number, WeakRef<ExecutionResult>>();
const serialized = new WeakMap<ExecutionResult, string>();
const forget = new FinalizationRegistry<number>((id) => byId.delete(id));
let nextId = 0;

export function sharedPlaceholder(result: ExecutionResult): Record<string, number> | undefined {
  if (!shareable.has(result)) return undefined;
  let id = ids.get(result);
  if (id === undefined) {
    id = nextId++;
    ids.set(result, id);
    byId.set(id, new WeakRef(result));
    forget.register(result, id);
  }
  return { [PLACEHOLDER]: id };
}

/** The message with its placeholder replaced by the shared result's JSON. */
export function expandPlaceholder(data: string): string {
  if (!data.includes(PLACEHOLDER)) return data;
  return data.replace(PLACEHOLDER_PATTERN, (whole, id: string) => {
    const result = byId.get(Number(id))?.deref();
    if (!result) return whole;
    let json = serialized.get(result);
    if (json === undefined) {
      const { errors, ...rest } = result;
      json = JSON.stringify(errors ? { ...rest, errors: errors.map((e) => e.toJSON()) } : rest);
      serialized.set(result, json);
    }
    return json;
  });
}

const shareable = new WeakSet<ExecutionResult>();
