/**
 * Streams that subscriptions are made of. Async generators cannot be stopped while they wait
 * (their `return()` is queued until the awaited value arrives, which for a quiet filter may be
 * never), so each stream here is wrapped: leaving ends the wait at once and frees what it holds.
 */

/** An async generator whose `return()` first calls `stop()`, which must end whatever it awaits. */
function stoppable<T>(generator: AsyncGenerator<T>, stop: () => unknown): AsyncIterableIterator<T> {
  const iterator: AsyncIterableIterator<T> = {
    next: () => generator.next(),
    async return() {
      await stop();
      return generator.return(undefined);
    },
    [Symbol.asyncIterator]: () => iterator,
  };
  return iterator;
}

/**
 * Gathers a stream into batches: what arrived within `maxDelayMs` of the first item, at most
 * `maxSize`. A busy stream costs one GraphQL execution and one socket message per batch instead
 * of per item, which is what lets hundreds of dashboards follow thousands of events a second.
 */
export function batches<T>(
  source: AsyncIterableIterator<T>,
  maxDelayMs: number,
  maxSize: number,
): AsyncIterableIterator<T[]> {
  async function* run(): AsyncGenerator<T[]> {
    let pending: Promise<IteratorResult<T>> | undefined;
    for (;;) {
      const first = await (pending ?? source.next());
      pending = undefined;
      if (first.done) return;
      const batch = [first.value];
      const deadline = Date.now() + maxDelayMs;
      while (batch.length < maxSize) {
        const left = deadline - Date.now();
        if (left <= 0) break;
        pending = source.next();
        let timer: NodeJS.Timeout | undefined;
        const next = await Promise.race([
          pending,
          new Promise<"late">((resolve) => {
            timer = setTimeout(() => resolve("late"), left);
          }),
        ]);
        clearTimeout(timer);
        if (next === "late") break;
        pending = undefined;
        if (next.done) {
          yield batch;
          return;
        }
        batch.push(next.value);
      }
      yield batch;
    }
  }
  return stoppable(run(), () => source.return?.());
}

/** `read()` now, then every `ms`, until the subscriber leaves; a failed read is retried next time. */
export function every<T>(
  ms: number,
  read: () => Promise<T>,
  onError: (error: unknown) => void,
): AsyncIterableIterator<T> {
  let stopped = false;
  let wake: (() => void) | undefined;
  async function* run(): AsyncGenerator<T> {
    while (!stopped) {
      try {
        yield await read();
      } catch (error) {
        onError(error);
      }
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, ms);
        wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
    }
  }
  return stoppable(run(), () => {
    stopped = true;
    wake?.();
  });
}
