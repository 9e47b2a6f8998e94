/**
 * Rate limits on a real broker, to the figures of the issue: a task type held to its rate on one
 * worker (per worker, as Celery; or fleet-wide through Redis), other types going ahead while it
 * waits for tokens, and a per-worker limit changed at run time by Celery's `rate_limit` command.
 * Rates are measured from when each run started, with a tolerance: never a fixed duration.
 */
import { pino } from "pino";
import { afterEach, beforeAll, describe, expect, it } from "vitest";
import { type App, createApp, createWorker, type Worker } from "../../sdk/src/index.js";
import { uniqueName } from "../helpers/services.js";

export interface RateLimitFixture {
  name: string;
  broker: string;
  backend: string;
  setup(): Promise<void>;
}

/** Runs started per second, from the first start to the last. */
export const rateOf = (starts: number[]) =>
  (starts.length - 1) / ((Math.max(...starts) - Math.min(...starts)) / 1000);

export async function until(check: () => boolean, ms: number, what: string): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`${what} within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

export function rateLimitSuite(fixture: RateLimitFixture) {
  const cleanups: Array<() => Promise<void>> = [];
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c();
  });
  beforeAll(() => fixture.setup());

  /** An app on a queue of its own and one worker on it; `define` registers the tasks. */
  async function start(
    define: (app: App) => void,
    workerOptions: Parameters<typeof createWorker>[1] = {},
  ): Promise<{ app: App; worker: Worker }> {
    const app = createApp({
      broker: fixture.broker,
      resultBackend: fixture.backend,
      defaultQueue: uniqueName("rate"),
    });
    define(app);
    const worker = await createWorker(app, {
      concurrency: 4,
      hostname: `${uniqueName("rate")}@test`,
      logger: pino({ level: "silent" }),
      control: false,
      ...workerOptions,
    });
    await worker.start();
    cleanups.push(async () => {
      await worker.stop({ force: true });
      const { broker } = await app.connect();
      await broker.deleteQueue(app.options.defaultQueue).catch(() => {});
      await app.close();
    });
    return { app, worker };
  }

  describe(`rate limits on ${fixture.name}`, () => {
    it('holds 100 tasks at "20/s" to about 20 a second on one worker', async () => {
      const name = uniqueName("t.rate");
      const starts: number[] = [];
      const { app } = await start((app) => {
        app.task(name, () => void starts.push(Date.now()), {
          rateLimit: "20/s",
          ignoreResult: true,
        });
      });
      for (let i = 0; i < 100; i++) await app.sendTask(name);
      await until(() => starts.length === 100, 15_000, "100 tasks did not start");
      // A one-token bucket: the first run at once, then one every 50 ms (about 5 s in all).
      const rate = rateOf(starts);
      expect(rate).toBeGreaterThan(16);
      expect(rate).toBeLessThan(22);
    }, 30_000);

    /**
     * 30 limited tasks are sent first, then 10 of another type. The other type must run at once,
     * while most limited ones still wait for their tokens: waiting ones hold no pool slot, and
     * the worker fetches past them.
     */
    const notHeldUp = (limit: "rateLimit" | "globalRateLimit") => async () => {
      const limitedName = uniqueName("t.limited");
      const freeName = uniqueName("t.free");
      const limited: number[] = [];
      const free: number[] = [];
      const { app } = await start(
        (app) => {
          app.task(limitedName, () => void limited.push(Date.now()), {
            [limit]: "10/s",
            ignoreResult: true,
          });
          app.task(freeName, () => void free.push(Date.now()), { ignoreResult: true });
        },
        { concurrency: 2 },
      );
      for (let i = 0; i < 30; i++) await app.sendTask(limitedName);
      const sentAt = Date.now();
      for (let i = 0; i < 10; i++) await app.sendTask(freeName);
      await until(() => free.length === 10, 5_000, "the other type did not run");
      expect(Math.max(...free) - sentAt).toBeLessThan(1_500);
      // At 10/s the limited type needs about 3 s for its 30: most were still waiting.
      expect(limited.length).toBeLessThan(25);
      await until(() => limited.length === 30, 10_000, "the limited type did not finish");
      const rate = rateOf(limited);
      expect(rate).toBeGreaterThan(8);
      expect(rate).toBeLessThan(11);
    };

    it(
      "runs other task types while one waits for its per-worker tokens",
      notHeldUp("rateLimit"),
      30_000,
    );

    it(
      "runs other task types while one waits for its fleet-wide tokens",
      notHeldUp("globalRateLimit"),
      30_000,
    );

    it("changes a per-worker limit at run time with Celery's rate_limit command", async () => {
      const name = uniqueName("t.tuned");
      const starts: number[] = [];
      const { app, worker } = await start(
        (app) => {
          app.task(name, () => void starts.push(Date.now()), {
            rateLimit: "2/s",
            ignoreResult: true,
          });
        },
        { control: true },
      );
      for (let i = 0; i < 40; i++) await app.sendTask(name);
      await until(() => starts.length >= 3, 5_000, "the first tasks did not start");
      expect(rateOf(starts)).toBeLessThan(2.5);
      const replies = await app.control.rateLimit(name, "40/s", {
        destination: [worker.hostname],
        reply: true,
        timeout: 2,
      });
      expect(replies).toEqual([{ [worker.hostname]: { ok: "new rate limit set successfully" } }]);
      const changedAt = Date.now();
      await until(() => starts.length === 40, 10_000, "the tasks did not finish");
      const after = starts.filter((t) => t > changedAt + 100);
      const rate = rateOf(after);
      expect(rate).toBeGreaterThan(30);
      expect(rate).toBeLessThan(44);
      expect(worker.rateLimitOf(name)).toBe("40/s");
    }, 30_000);
  });
}
