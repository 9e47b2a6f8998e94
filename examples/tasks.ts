/**
 * Example tasks, used by the README, dev mode and the interop suites.
 *
 * Run a worker on them:  npx celeriac worker --app examples/tasks.ts
 */
import { createApp } from "@celeriac/sdk";

export const app = createApp();

/** x + y */
export const add = app.task("tasks.add", (_ctx, x: number, y: number) => x + y);

/** x * y */
export const mul = app.task("tasks.mul", (_ctx, x: number, y: number) => x * y);

/** Sleeps for `seconds` (stopping early when revoked or past its soft time limit) and returns them. */
export const sleep = app.task("tasks.sleep", async (ctx, seconds: number) => {
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(resolve, seconds * 1000);
    ctx.signal.addEventListener(
      "abort",
      () => {
        clearTimeout(timer);
        reject(ctx.signal.reason);
      },
      { once: true },
    );
  });
  return seconds;
});

/** Always fails with `message`. */
export const fail = app.task("tasks.fail", (_ctx, message: string): never => {
  throw new Error(message);
});

/** Returns what it was called with. */
export const echo = app.task("tasks.echo", (ctx, ...args: unknown[]) => ({
  args,
  kwargs: ctx.kwargs,
}));

/** Fails `failures` times, retrying after 1 s each time, then succeeds. */
export const flaky = app.task(
  "tasks.flaky",
  (ctx, failures: number) => {
    if (ctx.retries < failures)
      ctx.retry({ countdown: 1, error: new Error(`failure ${ctx.retries + 1} of ${failures}`) });
    return `ok after ${ctx.retries} retries`;
  },
  { maxRetries: null },
);

/**
 * An album's statistics, as a music catalogue computes them after its tracks change: never
 * twice at once for one album, on any worker of the fleet (a unique task, locked by its
 * arguments). A request arriving while the album is being computed waits and runs after it, so
 * the latest change is always counted; other albums are computed meanwhile.
 */
export const albumStats = app.task(
  "stats.album",
  async (ctx, albumId: string) => {
    const startedAt = Date.now();
    ctx.logger.info({ albumId }, "computing album statistics");
    // Stands for reading every track's plays.
    await new Promise((resolve) => setTimeout(resolve, 200));
    return { albumId, startedAt, finishedAt: Date.now() };
  },
  { unique: { by: "args", ttl: 60, onConflict: "retry", retryCountdown: 1 } },
);
