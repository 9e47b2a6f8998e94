/**
 * Retries as Celery defines them (celery-protocol.md §8): `autoretryFor`, exponential backoff
 * with its cap and jitter, `maxRetries` (the task's, and per call), and what `ctx.retry()` sends:
 * a new message with the same id, `retries + 1`, new arguments or time when asked, on the route
 * the task came from.
 */
import { describe, expect, it } from "vitest";
import type { Message, Route } from "../src/brokers/broker.js";
import { type App, createApp, RemoteTaskError, type TaskOptions } from "../src/index.js";
import { decodeTaskMessage } from "../src/protocol/message.js";
import { startTestWorker } from "../src/testing/index.js";
import { autoretryCountdown } from "../src/worker/retry.js";

/** The error a result re-throws; fails the test when it does not throw. */
async function failure(p: Promise<unknown>): Promise<RemoteTaskError> {
  try {
    await p;
  } catch (error) {
    return error as RemoteTaskError;
  }
  throw new Error("expected the task to fail");
}

/** Every task message the app publishes from now on, decoded, with its route and when it went. */
async function recordPublished(app: App) {
  const { broker } = await app.connect();
  const published: Array<{
    at: number;
    route: Route;
    properties: Message["properties"];
    message: ReturnType<typeof decodeTaskMessage>;
  }> = [];
  const publish = broker.publish.bind(broker);
  broker.publish = async (message: Message, route: Route) => {
    if (typeof message.headers.task === "string")
      published.push({
        at: Date.now(),
        route,
        properties: message.properties,
        message: decodeTaskMessage(message),
      });
    return publish(message, route);
  };
  return published;
}

class HttpError extends Error {
  constructor(readonly status: number) {
    super(`HTTP ${status}`);
    this.name = "HttpError";
  }
}
class NetworkError extends TypeError {
  override name = "NetworkError";
}

describe("retry countdowns (Celery's get_exponential_backoff_interval)", () => {
  const countdowns = (options: TaskOptions, retries: number[], random?: () => number) =>
    retries.map((r) => autoretryCountdown(options, r, random));

  it("uses the task's retry delay without backoff", () => {
    expect(autoretryCountdown({}, 0)).toBe(180);
    expect(countdowns({ defaultRetryDelay: 7 }, [0, 1, 5])).toEqual([7, 7, 7]);
  });

  it("doubles from the factor, capped by retryBackoffMax (600 by default)", () => {
    const exact = { retryJitter: false } as const;
    expect(countdowns({ ...exact, retryBackoff: true }, [0, 1, 2, 3, 9, 10, 20])).toEqual([
      1, 2, 4, 8, 512, 600, 600,
    ]);
    expect(countdowns({ ...exact, retryBackoff: 3 }, [0, 1, 2])).toEqual([3, 6, 12]);
    expect(countdowns({ ...exact, retryBackoff: 5, retryBackoffMax: 30 }, [0, 1, 2, 3, 4])).toEqual(
      [5, 10, 20, 30, 30],
    );
  });

  it("jitters by default to a whole number of seconds in [0, countdown], both ends reached", () => {
    const task: TaskOptions = { retryBackoff: 2, retryBackoffMax: 600 };
    expect(autoretryCountdown(task, 1, () => 0)).toBe(0);
    expect(autoretryCountdown(task, 1, () => 0.999_999)).toBe(4);
    const seen = new Set<number>();
    for (let i = 0; i < 2000; i++) {
      const c = autoretryCountdown(task, 1);
      expect(Number.isInteger(c)).toBe(true);
      expect(c).toBeGreaterThanOrEqual(0);
      expect(c).toBeLessThanOrEqual(4);
      seen.add(c);
    }
    expect([...seen].sort()).toEqual([0, 1, 2, 3, 4]);
  });

  it("never jitters past a cap or factor that is not a whole number", () => {
    const top = () => 0.999_999;
    expect(autoretryCountdown({ retryBackoff: true, retryBackoffMax: 2.5 }, 6, top)).toBe(2);
    expect(autoretryCountdown({ retryBackoff: 0.5 }, 0, top)).toBe(0);
    expect(autoretryCountdown({ retryBackoff: 1.5 }, 1, top)).toBe(3);
    for (let i = 0; i < 500; i++)
      expect(autoretryCountdown({ retryBackoff: 1, retryBackoffMax: 2.5 }, 4)).toBeLessThanOrEqual(
        2.5,
      );
  });
});

describe("autoretryFor", () => {
  it("retries errors of the listed classes and their subclasses, and fails others at once", async () => {
    const app = createApp();
    const runs: Record<string, number> = {};
    const task = app.task(
      "t.auto.classes",
      (ctx, kind: "http" | "network" | "range", failures: number) => {
        runs[kind] = (runs[kind] ?? 0) + 1;
        if (ctx.retries < failures) {
          if (kind === "http") throw new HttpError(503);
          if (kind === "network") throw new NetworkError("socket hang up");
          throw new RangeError("not retried");
        }
        return `${kind} ok after ${ctx.retries}`;
      },
      { autoretryFor: [HttpError, TypeError], defaultRetryDelay: 0 },
    );
    const { stop } = await startTestWorker(app);
    expect(await (await task.delay("http", 2)).get({ timeout: 5 })).toBe("http ok after 2");
    expect(await (await task.delay("network", 3)).get({ timeout: 5 })).toBe("network ok after 3");
    const error = await failure((await task.delay("range", 1)).get({ timeout: 5 }));
    expect(error.name).toBe("RangeError");
    expect(runs).toEqual({ http: 3, network: 4, range: 1 });
    await stop();
  });

  it("retries what a predicate accepts", async () => {
    const app = createApp();
    let runs = 0;
    const task = app.task(
      "t.auto.predicate",
      (ctx, status: number) => {
        runs++;
        if (ctx.retries === 0) throw new HttpError(status);
        return status;
      },
      {
        autoretryFor: (error) => error instanceof HttpError && error.status >= 500,
        defaultRetryDelay: 0,
      },
    );
    const { stop } = await startTestWorker(app);
    expect(await (await task.delay(503)).get({ timeout: 5 })).toBe(503);
    expect(runs).toBe(2);
    const error = await failure((await task.delay(404)).get({ timeout: 5 }));
    expect([error.name, error.message]).toEqual(["HttpError", "HTTP 404"]);
    expect(runs).toBe(3);
    await stop();
  });

  it("fails with the original error once maxRetries is used up", async () => {
    const app = createApp();
    let runs = 0;
    const task = app.task(
      "t.auto.exhausted",
      () => {
        runs++;
        throw new HttpError(502);
      },
      { autoretryFor: [HttpError], maxRetries: 2, defaultRetryDelay: 0 },
    );
    const { stop } = await startTestWorker(app);
    const error = await failure((await task.delay()).get({ timeout: 5 }));
    expect(error).toBeInstanceOf(RemoteTaskError);
    expect([error.name, error.message]).toEqual(["HttpError", "HTTP 502"]);
    expect(runs).toBe(3);
    await stop();
  });

  it("waits the backoff's countdowns between runs, capped by retryBackoffMax", async () => {
    const app = createApp();
    const starts: number[] = [];
    const task = app.task(
      "t.auto.backoff",
      (ctx) => {
        starts.push(Date.now());
        if (ctx.retries < 3) throw new HttpError(503);
        return ctx.retries;
      },
      // 0.25 s, 0.5 s, then 1 s capped to 0.6 s; no jitter, so the waits are exact.
      {
        autoretryFor: [HttpError],
        retryBackoff: 0.25,
        retryBackoffMax: 0.6,
        retryJitter: false,
      },
    );
    const { stop } = await startTestWorker(app);
    const published = await recordPublished(app);
    expect(await (await task.delay()).get({ timeout: 10 })).toBe(3);
    const retries = published.filter((p) => p.message.headers.retries > 0);
    expect(retries.map((p) => (Date.parse(`${p.message.headers.eta}`) - p.at) / 1000)).toEqual([
      expect.closeTo(0.25, 1),
      expect.closeTo(0.5, 1),
      expect.closeTo(0.6, 1),
    ]);
    const gaps = starts.slice(1).map((t, i) => (t - starts[i]!) / 1000);
    for (const [gap, want] of gaps.map((g, i) => [g, [0.25, 0.5, 0.6][i]!] as const)) {
      expect(gap).toBeGreaterThanOrEqual(want - 0.02);
      expect(gap).toBeLessThan(want + 0.4);
    }
    await stop();
  });

  it("stores RETRY with the error while the retry waits", async () => {
    const app = createApp();
    const task = app.task(
      "t.auto.state",
      (ctx) => {
        if (ctx.retries === 0) throw new HttpError(503);
        return "done";
      },
      { autoretryFor: [HttpError], defaultRetryDelay: 0.5 },
    );
    const { stop } = await startTestWorker(app);
    const r = await task.delay();
    const deadline = Date.now() + 2000;
    while ((await r.state()) !== "RETRY" && Date.now() < deadline)
      await new Promise((resolve) => setTimeout(resolve, 10));
    const meta = await r.meta();
    expect(meta?.status).toBe("RETRY");
    expect(meta?.result).toMatchObject({ exc_type: "HttpError", exc_message: ["HTTP 503"] });
    expect(await r.get({ timeout: 5 })).toBe("done");
    await stop();
  });
});

describe("ctx.retry()", () => {
  it("fails with the error given, or MaxRetriesExceededError without one, past maxRetries", async () => {
    const app = createApp();
    const runs = { withError: 0, bare: 0 };
    const withError = app.task(
      "t.retry.with-error",
      (ctx) => {
        runs.withError++;
        ctx.retry({ countdown: 0, error: new RangeError("still broken") });
      },
      { maxRetries: 2 },
    );
    const bare = app.task(
      "t.retry.bare",
      (ctx) => {
        runs.bare++;
        ctx.retry({ countdown: 0 });
      },
      { maxRetries: 1 },
    );
    const { stop } = await startTestWorker(app);
    const e1 = await failure((await withError.delay()).get({ timeout: 5 }));
    expect([e1.name, e1.message]).toEqual(["RangeError", "still broken"]);
    const e2 = await failure((await bare.delay()).get({ timeout: 5 }));
    expect(e2.name).toBe("MaxRetriesExceededError");
    expect(e2.excModule).toBe("celery.exceptions");
    expect(e2.message).toMatch(
      /^Can't retry t\.retry\.bare\[[0-9a-f-]{36}\] args:\(\) kwargs:\{\}$/,
    );
    expect(runs).toEqual({ withError: 3, bare: 2 });
    await stop();
  });

  it("retries 3 times by default, never with maxRetries 0, forever with null", async () => {
    const app = createApp();
    const runs: Record<string, number> = {};
    const define = (name: string, options: TaskOptions) =>
      app.task(
        name,
        (ctx, succeedAt: number) => {
          runs[name] = (runs[name] ?? 0) + 1;
          if (ctx.retries < succeedAt) ctx.retry({ countdown: 0, error: new Error("again") });
          return ctx.retries;
        },
        options,
      );
    const byDefault = define("t.max.default", {});
    const never = define("t.max.zero", { maxRetries: 0 });
    const forever = define("t.max.null", { maxRetries: null });
    const { stop } = await startTestWorker(app);
    expect(await (await byDefault.delay(3)).get({ timeout: 5 })).toBe(3);
    await failure((await byDefault.delay(4)).get({ timeout: 5 }));
    await failure((await never.delay(1)).get({ timeout: 5 }));
    expect(await (await forever.delay(12)).get({ timeout: 5 })).toBe(12);
    expect(runs).toEqual({ "t.max.default": 4 + 4, "t.max.zero": 1, "t.max.null": 13 });
    await stop();
  });

  it("takes maxRetries per call, over the task's", async () => {
    const app = createApp();
    const runs: Record<string, number> = {};
    const task = app.task(
      "t.max.override",
      (ctx, key: string, maxRetries: number | null) => {
        runs[key] = (runs[key] ?? 0) + 1;
        ctx.retry({ countdown: 0, maxRetries, error: new Error(`gave up on ${key}`) });
      },
      { maxRetries: 1 },
    );
    const { stop } = await startTestWorker(app);
    expect((await failure((await task.delay("more", 4)).get({ timeout: 5 }))).message).toBe(
      "gave up on more",
    );
    await failure((await task.delay("none", 0)).get({ timeout: 5 }));
    expect(runs).toEqual({ more: 5, none: 1 });
    await stop();
  });

  it("runs the retry with the new args and kwargs, which later retries keep", async () => {
    const app = createApp();
    const calls: Array<{ args: unknown[]; kwargs: unknown }> = [];
    const task = app.task("t.retry.args", (ctx, page: number) => {
      calls.push({ args: [...ctx.args], kwargs: ctx.kwargs });
      if (ctx.retries === 0)
        ctx.retry({ countdown: 0, args: [page + 1], kwargs: { cursor: "abc" } });
      if (ctx.retries === 1) ctx.retry({ countdown: 0 });
      return { page, cursor: ctx.kwargs.cursor };
    });
    const { stop } = await startTestWorker(app);
    const r = await task.applyAsync([1], { kwargs: { cursor: null } });
    expect(await r.get({ timeout: 5 })).toEqual({ page: 2, cursor: "abc" });
    expect(calls).toEqual([
      { args: [1], kwargs: { cursor: null } },
      { args: [2], kwargs: { cursor: "abc" } },
      { args: [2], kwargs: { cursor: "abc" } },
    ]);
    await stop();
  });

  it("runs the retry at the eta given, not before", async () => {
    const app = createApp();
    const starts: number[] = [];
    let eta: Date | undefined;
    const task = app.task("t.retry.eta", (ctx) => {
      starts.push(Date.now());
      if (ctx.retries === 0) {
        eta = new Date(Date.now() + 400);
        ctx.retry({ eta });
      }
      return ctx.eta?.toISOString() ?? null;
    });
    const { stop } = await startTestWorker(app);
    const published = await recordPublished(app);
    const result = await (await task.delay()).get({ timeout: 5 });
    expect(result).toBe(eta!.toISOString());
    expect(Date.parse(`${published[1]?.message.headers.eta}`)).toBe(eta!.getTime());
    expect(starts[1]).toBeGreaterThanOrEqual(eta!.getTime() - 5);
    expect(starts[1]! - eta!.getTime()).toBeLessThan(300);
    await stop();
  });

  it("waits defaultRetryDelay when given no countdown", async () => {
    const app = createApp();
    const task = app.task("t.retry.delay", (ctx) => ctx.retry({ error: new Error("later") }), {
      defaultRetryDelay: 42,
    });
    const { stop } = await startTestWorker(app);
    const published = await recordPublished(app);
    await task.delay();
    const deadline = Date.now() + 2000;
    while (published.length < 2 && Date.now() < deadline)
      await new Promise((resolve) => setTimeout(resolve, 10));
    const retry = published[1]!;
    expect((Date.parse(`${retry.message.headers.eta}`) - retry.at) / 1000).toBeCloseTo(42, 1);
    await stop();
  });
});

describe("the retry message", () => {
  it("has the same id, retries + 1, the task's ids, options and route, as Celery sends it", async () => {
    const app = createApp();
    let parentRun: string | undefined;
    const child = app.task(
      "t.wire.child",
      (ctx, n: number) => {
        if (ctx.retries < 2) ctx.retry({ countdown: 0.05, error: new Error(`retry ${n}`) });
        return n;
      },
      { queue: "wire" },
    );
    const parent = app.task("t.wire.parent", async (ctx) => {
      parentRun = ctx.id;
      await child.applyAsync([7], {
        priority: 4,
        headers: { tenant: "acme" },
        timeLimit: 30,
        softTimeLimit: 20,
        expires: 60,
        link: app.signature("t.wire.link"),
      });
    });
    app.task("t.wire.link", () => null);
    const { stop, drain } = await startTestWorker(app, { queues: ["celery", "wire"] });
    const published = await recordPublished(app);
    await parent.delay();
    await drain();
    const sends = published.filter((p) => p.message.headers.task === "t.wire.child");
    expect(sends).toHaveLength(3);
    const [first, ...retries] = sends;
    const h0 = first!.message.headers;
    expect(first!.message.embed.callbacks).toHaveLength(1);
    for (const [i, { message, route, properties }] of retries.entries()) {
      const h = message.headers;
      expect(h).toMatchObject({
        id: h0.id,
        task: "t.wire.child",
        retries: i + 1,
        root_id: h0.root_id,
        // Celery keeps the request's parent; only a task without one becomes its own parent.
        parent_id: parentRun,
        expires: h0.expires,
        timelimit: [30, 20],
        tenant: "acme",
      });
      expect(h.eta).toEqual(expect.any(String));
      expect(message.args).toEqual([7]);
      expect(message.embed.callbacks).toEqual(first!.message.embed.callbacks);
      expect(properties.priority).toBe(4);
      expect(route).toEqual(first!.route);
    }
    expect(h0.parent_id).toBe(parentRun);
    await stop();
  });

  it("names the task itself as parent when it has none", async () => {
    const app = createApp();
    const task = app.task("t.wire.top", (ctx) => {
      if (ctx.retries === 0) ctx.retry({ countdown: 0 });
    });
    const { stop, drain } = await startTestWorker(app);
    const published = await recordPublished(app);
    const r = await task.delay();
    await drain();
    expect(published.map((p) => p.message.headers.parent_id)).toEqual([null, r.id]);
    expect(published.map((p) => p.message.headers.root_id)).toEqual([r.id, r.id]);
    await stop();
  });
});
