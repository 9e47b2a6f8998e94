/**
 * Workflows shared with real Python Celery 5: chains and chords built in Python run on our
 * workers and ours on Python's, mixed chains hop between a Python task and ours, one chord
 * counter is shared by both kinds of workers, saved groups are read by both, and the same canvas
 * gives the same messages. Run for Redis and RabbitMQ (results in Redis) by the files beside it.
 */
import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  ChordError,
  chain,
  chord,
  createApp,
  defineTask,
  GroupResult,
  group,
  RemoteTaskError,
} from "../../sdk/src/index.js";
import {
  type PythonSide,
  py,
  type RunningWorker,
  requirePythonCelery,
  startCeleriacWorker,
  startPythonWorker,
} from "../helpers/python.js";
import { redisUrl, uniqueName } from "../helpers/services.js";

/** Results and chord counters, for Python and for us. */
export const BACKEND_URL = redisUrl(6);

export interface CanvasInteropFixture {
  name: string;
  broker: string;
  setup(): Promise<void>;
  /** The raw messages waiting in a queue, oldest first, when the broker lets us read them. */
  peek?(queue: string): Promise<Array<{ headers: Record<string, unknown>; body: string }>>;
}

/** A canvas as driver.py builds it with Celery's own `chain`, `group`, `chord` and `signature`. */
type Spec =
  | { task: string; args?: unknown[]; queue?: string; immutable?: boolean }
  | { chain: Spec[] }
  | { group: Spec[] }
  | { chord: { header: Spec[]; body: Spec } };

interface PyResult {
  id: string;
  result?: unknown;
  error?: { type: string; module: string; message: string };
}

const UUID = /[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/g;

/** The same text with every distinct id replaced by its rank of first appearance. */
function normalizeIds(text: string): string {
  const seen = new Map<string, string>();
  return text.replace(UUID, (id) => {
    if (!seen.has(id)) seen.set(id, `<id${seen.size}>`);
    return seen.get(id)!;
  });
}

export function canvasInteropSuite(fixture: CanvasInteropFixture) {
  describe(`workflows with Python Celery 5 on ${fixture.name}`, () => {
    const tsQueue = uniqueName("canvas-ts");
    const pyQueue = uniqueName("canvas-py");
    const side: PythonSide = { broker: fixture.broker, backend: BACKEND_URL };
    const app = createApp({ broker: fixture.broker, resultBackend: BACKEND_URL });
    const add = app.client(defineTask<[x: number, y: number], number>("tasks.add"));
    const tsum = app.client(defineTask<[numbers: number[]], number>("tasks.tsum"));
    const fail = app.client(defineTask<[message: string], number>("tasks.fail"));
    const triple = app.client(defineTask<[x: number], number>("ts.triple"));
    const double = app.client(defineTask<[x: number], number>("py.double"));
    const echo = app.client(
      defineTask<unknown[], { args: unknown[]; kwargs: Record<string, unknown> }>("tasks.echo"),
    );
    const onTs = { queue: tsQueue };
    const onPy = { queue: pyQueue };
    let ours: RunningWorker;
    let theirs: RunningWorker;

    const pyCanvas = (canvas: Spec, extra: Record<string, unknown> = {}) =>
      py<PyResult>(side, { op: "canvas", canvas, wait: true, ...extra });

    beforeAll(async () => {
      await fixture.setup();
      await requirePythonCelery();
      [ours, theirs] = await Promise.all([
        startCeleriacWorker(side, uniqueName("ts-canvas"), [tsQueue]),
        startPythonWorker(side, uniqueName("py-canvas"), [pyQueue]),
      ]);
    }, 60_000);

    afterAll(async () => {
      await Promise.all([ours?.stop(), theirs?.stop()]);
      const { broker } = await app.connect();
      for (const q of [tsQueue, pyQueue]) await broker.deleteQueue(q).catch(() => {});
      await app.close();
    }, 60_000);

    describe("built in Python, run by our workers", () => {
      it("runs a chain, and Python reads its result", async () => {
        const sent = await pyCanvas({
          chain: [
            { task: "tasks.add", args: [1, 2], queue: tsQueue },
            { task: "tasks.add", args: [10], queue: tsQueue },
            { task: "tasks.add", args: [100, 200], queue: tsQueue, immutable: true },
            { task: "tasks.add", args: [1], queue: tsQueue },
          ],
        });
        expect(sent).toMatchObject({ result: 301 });
      });

      it("runs a chain holding a chord (a group followed by a task), and one ending in a group", async () => {
        const withChord = await pyCanvas({
          chain: [
            { task: "tasks.add", args: [1, 2], queue: tsQueue },
            {
              group: [
                { task: "tasks.add", args: [1], queue: tsQueue },
                { task: "tasks.add", args: [2], queue: tsQueue },
              ],
            },
            { task: "tasks.tsum", queue: tsQueue },
            { task: "tasks.add", args: [100], queue: tsQueue },
          ],
        });
        expect(withChord).toMatchObject({ result: 109 });
        const endingInGroup = await pyCanvas({
          chain: [
            { task: "tasks.add", args: [1, 2], queue: tsQueue },
            {
              group: [
                { task: "tasks.add", args: [1], queue: tsQueue },
                { task: "tasks.add", args: [2], queue: tsQueue },
              ],
            },
          ],
        });
        expect(endingInGroup).toMatchObject({ result: [4, 5] });
      });

      it("runs a chord with our chord counter, and Python reads the callback's result", async () => {
        const sent = await pyCanvas({
          chord: {
            header: [0, 1, 2, 3, 4, 5].map((i) => ({
              task: "tasks.add",
              args: [i, i],
              queue: tsQueue,
            })),
            body: { task: "tasks.echo", queue: tsQueue },
          },
        });
        expect(sent.result).toEqual({ args: [[0, 2, 4, 6, 8, 10]], kwargs: {} });
      });

      it("fails the chord's callback with Celery's ChordError when a header task fails", async () => {
        const sent = await pyCanvas({
          chord: {
            header: [
              { task: "tasks.add", args: [1, 1], queue: tsQueue },
              { task: "tasks.fail", args: ["header broke"], queue: tsQueue },
            ],
            body: { task: "tasks.tsum", queue: tsQueue },
          },
        });
        // Python's get() on a chord re-raises the failed header task's error first…
        expect(sent.error).toMatchObject({ message: "header broke" });
        // … and the callback itself is stored as failed with a ChordError naming it.
        const callback = await py<{ error?: PyResult["error"] }>(side, { op: "get", id: sent.id });
        expect(callback.error).toMatchObject({ type: "ChordError", module: "celery.exceptions" });
        expect(callback.error?.message).toMatch(/^Dependency .+ raised Error\('header broke'\)$/);
      });
    });

    describe("chord headers holding groups", () => {
      const nested = (queue: string): Spec => ({
        chord: {
          header: [
            { task: "tasks.add", args: [1, 1], queue },
            {
              group: [
                { task: "tasks.add", args: [2, 2], queue },
                {
                  group: [
                    { task: "tasks.add", args: [3, 3], queue },
                    { task: "tasks.add", args: [5, 5], queue },
                  ],
                },
                { task: "tasks.add", args: [6, 6], queue },
              ],
            },
            { task: "tasks.add", args: [4, 4], queue },
          ],
          body: { task: "tasks.echo", queue },
        },
      });

      it("unroll nested groups in Celery's order, on Python's workers and ours", async () => {
        // Celery's group._freeze_unroll flattens nested groups with deque.extendleft, which
        // reverses each nested group: this is what Python gives for the same canvas.
        const expected = { args: [[2, 12, 10, 6, 4, 8]], kwargs: {} };
        expect((await pyCanvas(nested(pyQueue))).result).toEqual(expected);
        for (const on of [onPy, onTs]) {
          const r = await chord(
            [
              add.s(1, 1).set(on),
              group([
                add.s(2, 2).set(on),
                group([add.s(3, 3).set(on), add.s(5, 5).set(on)]),
                add.s(6, 6).set(on),
              ]),
              add.s(4, 4).set(on),
            ],
            echo.s().set(on),
          ).delay();
          expect(await r.get({ timeout: 20 }), on.queue).toEqual(expected);
        }
      });

      it("give the callback a header member's group results nested, from Celery's saved header", async () => {
        // Celery 5.2.6 saves a header holding a GroupResult (RedisBackend.apply_chord) and the
        // counter joins it (on_chord_part_return): our counter reads Python's saved header.
        const sent = await pyCanvas({
          chord: {
            header: [
              {
                chain: [
                  { task: "tasks.add", args: [1, 1], queue: tsQueue },
                  {
                    group: [
                      { task: "tasks.add", args: [1], queue: tsQueue },
                      { task: "tasks.add", args: [2], queue: tsQueue },
                    ],
                  },
                ],
              },
            ],
            body: { task: "tasks.echo", queue: tsQueue },
          },
        });
        expect(sent.result).toEqual({ args: [[[3, 4]]], kwargs: {} });
      });
    });

    describe("built here, run by Python's workers", () => {
      it("runs a chain", async () => {
        const r = await chain(
          add.s(1, 2).set(onPy),
          add.s(10).set(onPy),
          add.si(100, 200).set(onPy),
          add.s(1).set(onPy),
        ).delay();
        expect(await r.get({ timeout: 20 })).toBe(301);
      });

      it("runs a chord with Celery's chord counter", async () => {
        const r = await chord(
          [0, 1, 2, 3, 4, 5].map((i) => add.s(i, i).set(onPy)),
          tsum.s().set(onPy),
        ).delay();
        expect(await r.get({ timeout: 20 })).toBe(30);
      });

      it("gets Celery's ChordError when a header task fails", async () => {
        const r = await chord(
          [add.s(1, 1).set(onPy), fail.s("python header broke").set(onPy)],
          tsum.s().set(onPy),
        ).delay();
        const error = await r.get({ timeout: 20 }).catch((e: Error) => e);
        expect(error).toBeInstanceOf(ChordError);
        expect((error as Error).message).toMatch(
          /^Dependency .+ raised ValueError\('python header broke'\)$/,
        );
      });
    });

    describe("mixed", () => {
      it("runs a chain built in Python: a Python task, then ours, then Python's again", async () => {
        const sent = await pyCanvas({
          chain: [
            { task: "py.double", args: [7], queue: pyQueue },
            { task: "ts.triple", queue: tsQueue },
            { task: "py.double", queue: pyQueue },
          ],
        });
        expect(sent).toMatchObject({ result: 84 });
      });

      it("runs a chain built here: a Python task, then ours, then Python's again", async () => {
        const r = await chain(
          double.s(7).set(onPy),
          triple.s().set(onTs),
          app.signature<number>("py.double", [], onPy),
        ).delay();
        expect(await r.get({ timeout: 20 })).toBe(84);
      });

      it("shares one chord counter between Python's workers and ours", async () => {
        const header = [0, 1, 2, 3, 4, 5, 6, 7].map((i) => add.s(i, 1).set(i % 2 ? onPy : onTs));
        const fromHere = await chord(header, tsum.s().set(onPy)).delay();
        expect(await fromHere.get({ timeout: 20 })).toBe(36);
        const fromPython = await pyCanvas({
          chord: {
            header: [0, 1, 2, 3, 4, 5, 6, 7].map((i) => ({
              task: i % 2 ? "py.double" : "ts.triple",
              args: [i],
              queue: i % 2 ? pyQueue : tsQueue,
            })),
            body: { task: "tasks.echo", queue: tsQueue },
          },
        });
        expect(fromPython.result).toEqual({ args: [[0, 2, 6, 6, 12, 10, 18, 14]], kwargs: {} });
      });

      it("reads groups saved by the other side", async () => {
        const g = await group([add.s(1, 1).set(onTs), add.s(2, 2).set(onPy)]).delay();
        await g.save();
        const inPython = await py<{ found: boolean; ids: string[]; result: number[] }>(side, {
          op: "restore_group",
          id: g.id,
        });
        expect(inPython).toEqual({ found: true, ids: g.results.map((r) => r.id), result: [2, 4] });

        const saved = await py<PyResult>(side, {
          op: "canvas",
          canvas: {
            group: [
              { task: "tasks.add", args: [3, 3], queue: pyQueue },
              { task: "tasks.add", args: [4, 4], queue: tsQueue },
            ],
          },
          save: true,
        });
        const restored = await GroupResult.restore<number[]>(saved.id, app);
        expect(await restored?.get({ timeout: 20 })).toEqual([6, 8]);
      });

      it("re-throws a Python failure in the middle of a mixed chain at its end", async () => {
        const r = await chain(
          double.s(1).set(onPy),
          app.signature<number>("tasks.fail", ["mid-chain"], { immutable: true, ...onPy }),
          triple.s().set(onTs),
        ).delay();
        const error = await r.get({ timeout: 20 }).catch((e: Error) => e);
        expect(error).toBeInstanceOf(RemoteTaskError);
        expect((error as RemoteTaskError).name).toBe("ValueError");
      });
    });

    if (fixture.peek) {
      const peek = fixture.peek;
      it("sends the same messages as Celery for the same chain, group and chord", async () => {
        const queue = uniqueName("canvas-wire");
        const q = { queue };
        const redis = new Redis(BACKEND_URL);
        const cases: Array<[string, () => Promise<unknown>, Spec]> = [
          [
            "chain",
            () => chain(add.s(1, 2).set(q), add.s(10).set(q), add.si(100, 200).set(q)).delay(),
            {
              chain: [
                { task: "tasks.add", args: [1, 2], queue },
                { task: "tasks.add", args: [10], queue },
                { task: "tasks.add", args: [100, 200], queue, immutable: true },
              ],
            },
          ],
          [
            "group",
            () => group([add.s(1, 2).set(q), add.s(3, 4).set(q)]).delay(),
            {
              group: [
                { task: "tasks.add", args: [1, 2], queue },
                { task: "tasks.add", args: [3, 4], queue },
              ],
            },
          ],
          [
            "chord",
            () => chord([add.s(1, 1).set(q), add.s(2, 2).set(q)], tsum.s().set(q)).delay(),
            {
              chord: {
                header: [
                  { task: "tasks.add", args: [1, 1], queue },
                  { task: "tasks.add", args: [2, 2], queue },
                ],
                body: { task: "tasks.tsum", queue },
              },
            },
          ],
          [
            "chain with a group then a task (a chord inside)",
            () =>
              chain(
                add.s(1, 2).set(q),
                group([add.s(1).set(q), add.s(2).set(q)]),
                tsum.s().set(q),
              ).delay(),
            {
              chain: [
                { task: "tasks.add", args: [1, 2], queue },
                {
                  group: [
                    { task: "tasks.add", args: [1], queue },
                    { task: "tasks.add", args: [2], queue },
                  ],
                },
                { task: "tasks.tsum", queue },
              ],
            },
          ],
          [
            "chord with nested groups in its header",
            () =>
              chord(
                [
                  add.s(1, 1).set(q),
                  group([add.s(2, 2).set(q), group([add.s(3, 3).set(q), add.s(5, 5).set(q)])]),
                  add.s(4, 4).set(q),
                ],
                echo.s().set(q),
              ).delay(),
            {
              chord: {
                header: [
                  { task: "tasks.add", args: [1, 1], queue },
                  {
                    group: [
                      { task: "tasks.add", args: [2, 2], queue },
                      {
                        group: [
                          { task: "tasks.add", args: [3, 3], queue },
                          { task: "tasks.add", args: [5, 5], queue },
                        ],
                      },
                    ],
                  },
                  { task: "tasks.add", args: [4, 4], queue },
                ],
                body: { task: "tasks.echo", queue },
              },
            },
          ],
        ];
        const { broker } = await app.connect();
        try {
          for (const [label, ours, python] of cases) {
            await ours();
            const mine = await peek(queue);
            await broker.purge(queue);
            await py(side, { op: "canvas", canvas: python });
            const theirs = await peek(queue);
            await broker.purge(queue);
            expect(mine.length, label).toBe(theirs.length);
            for (const [i, m] of mine.entries()) {
              const p = theirs[i]!;
              expect(normalizeIds(m.body), label).toBe(normalizeIds(p.body));
              for (const key of ["task", "group", "group_index", "parent_id", "argsrepr"])
                expect(
                  normalizeIds(JSON.stringify(m.headers[key] ?? null)),
                  `${label}: ${key}`,
                ).toBe(normalizeIds(JSON.stringify(p.headers[key] ?? null)));
            }
            if (label === "chord") {
              // Both set the chord's size for the counter before the header runs.
              const sizeOf = (m: { headers: Record<string, unknown> }) =>
                redis.get(`celery-taskset-meta-${String(m.headers.group)}.s`);
              expect([await sizeOf(mine[0]!), await sizeOf(theirs[0]!)]).toEqual(["2", "2"]);
            }
          }
        } finally {
          await broker.deleteQueue(queue).catch(() => {});
          redis.disconnect();
        }
      }, 60_000);
    }
  });
}
