/**
 * Run a worker until a signal: the first SIGTERM or SIGINT starts a warm shutdown, a second one
 * forces it, as Celery does.
 */
import type { App } from "../app.js";
import type { WorkerOptions } from "../worker/options.js";
import { createWorker } from "../worker/worker.js";

export async function runWorker(app: App, options: WorkerOptions): Promise<void> {
  const worker = await createWorker(app, options);
  let signals = 0;
  const onSignal = (signal: NodeJS.Signals) => {
    signals++;
    const force = signals > 1;
    worker.logger.info(
      { signal },
      force ? "forced shutdown" : "warm shutdown (send again to force)",
    );
    void worker.stop({ force });
  };
  process.on("SIGTERM", onSignal);
  process.on("SIGINT", onSignal);
  worker.once("stopped", () => {
    void app.close().finally(() => {
      worker.logger.flush?.();
      process.exit(0);
    });
  });
  await worker.start();
}
