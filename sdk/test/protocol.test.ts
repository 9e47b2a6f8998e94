import { describe, expect, it } from "vitest";
import { CeleriacError, TimeLimitExceeded } from "../src/errors.js";
import { buildTaskMessage, isoformat } from "../src/producer/message-builder.js";
import { decodeException, encodeException, exceptionRepr } from "../src/protocol/exceptions.js";
import { dumps, loads, untag } from "../src/protocol/json.js";
import { decodeTaskMessage, encodeTaskMessage } from "../src/protocol/message.js";
import { repr, reprArgs } from "../src/protocol/repr.js";
import { isStateAdvance } from "../src/protocol/states.js";

// Expected strings are what Python 3.11's json.dumps and repr print for the same values.
describe("kombu-compatible JSON", () => {
  it.each([
    [1.5, "1.5"],
    [0.1, "0.1"],
    [1e-5, "1e-05"],
    [0.0001, "0.0001"],
    [1.5e16, "1.5e+16"],
    [123456789.125, "123456789.125"],
    [1e22, "1e+22"],
    [-0.5, "-0.5"],
    [2.5e-7, "2.5e-07"],
    [3, "3"],
    ["é日本🎉", '"\\u00e9\\u65e5\\u672c\\ud83c\\udf89"'],
    ['a"b\\c\n\t\x01\x7f', '"a\\"b\\\\c\\n\\t\\u0001\\u007f"'],
    [{ k: [1, null, true, false, "x"] }, '{"k": [1, null, true, false, "x"]}'],
    [[], "[]"],
    // Separators inside strings, and keys, stay as they are; values nest.
    [
      { "a, b: c": ['x", "y: z', { "\\": '\\"' }] },
      '{"a, b: c": ["x\\", \\"y: z", {"\\\\": "\\\\\\""}]}',
    ],
    [
      { s: "\u2028", n: [-0, 1e15, 1.5, 5e-5], e: {}, u: undefined },
      '{"s": "\\u2028", "n": [0, 1000000000000000, 1.5, 5e-05], "e": {}}',
    ],
    [[undefined, null], "[null, null]"],
  ])("dumps(%j) as Python does", (value, expected) => {
    expect(dumps(value)).toBe(expected);
  });

  it("writes dates as kombu 5.2 does and refuses what Python would", () => {
    expect(dumps(new Date("2024-01-02T03:04:05Z"))).toBe('"2024-01-02T03:04:05Z"');
    expect(dumps(new Date("2024-01-02T03:04:05.123Z"))).toBe('"2024-01-02T03:04:05.123000Z"');
    expect(() => dumps(Number.NaN)).toThrow(CeleriacError);
    expect(() => dumps(Buffer.from("x"))).toThrow(/bytes/);
    expect(dumps({ a: undefined, b: 1 })).toBe('{"b": 1}');
  });

  it("reads Python's NaN and Infinity, and kombu 5.3's tagged values", () => {
    expect(loads("[NaN, Infinity, -Infinity, 1]")).toEqual([
      Number.NaN,
      Number.POSITIVE_INFINITY,
      Number.NEGATIVE_INFINITY,
      1,
    ]);
    expect(untag({ d: { __type__: "datetime", __value__: "2024-01-02T03:04:05+00:00" } })).toEqual({
      d: "2024-01-02T03:04:05+00:00",
    });
    expect(
      untag({
        __type__: "uuid",
        __value__: { hex: "0123456789abcdef0123456789abcdef", version: 4 },
      }),
    ).toBe("01234567-89ab-cdef-0123-456789abcdef");
  });
});

describe("Python repr", () => {
  it("prints argument tuples and values as Python does", () => {
    expect(reprArgs([2, 3])).toBe("(2, 3)");
    expect(reprArgs([2])).toBe("(2,)");
    expect(reprArgs([])).toBe("()");
    expect(repr({ z: 1, a: "it's" })).toBe(`{'z': 1, 'a': "it's"}`);
    expect(repr('x"y')).toBe(`'x"y'`);
    expect(repr(`x'y"z`)).toBe(`'x\\'y"z'`);
    expect(repr([1.5, null, true])).toBe("[1.5, None, True]");
  });
});

describe("task messages", () => {
  const defaults = { origin: "gen1@host", replyTo: "oid-1" };
  const now = Date.parse("2026-11-24T01:59:36.499Z");

  it("builds Celery 5.2's header set, in order, with eta/expires and properties", () => {
    const m = buildTaskMessage(
      "tasks.add",
      [2, 3],
      {
        countdown: 10,
        expires: 60,
        priority: 7,
        taskId: "id-1",
        timeLimit: 30,
        softTimeLimit: 20,
        kwargs: { z: 1 },
      },
      defaults,
      now,
    );
    expect(Object.keys(m.headers)).toEqual([
      "lang",
      "task",
      "id",
      "shadow",
      "eta",
      "expires",
      "group",
      "group_index",
      "retries",
      "timelimit",
      "root_id",
      "parent_id",
      "argsrepr",
      "kwargsrepr",
      "origin",
      "ignore_result",
    ]);
    expect(m.headers).toMatchObject({
      task: "tasks.add",
      id: "id-1",
      eta: "2026-11-24T01:59:46.499000+00:00",
      expires: "2026-11-24T02:00:36.499000+00:00",
      timelimit: [30, 20],
      root_id: "id-1",
      argsrepr: "(2, 3)",
      kwargsrepr: "{'z': 1}",
      origin: "gen1@host",
      retries: 0,
    });
    expect(m.properties).toEqual({
      correlationId: "id-1",
      replyTo: "oid-1",
      deliveryMode: 2,
      priority: 7,
      expiration: "60000",
    });
    const encoded = encodeTaskMessage(m);
    expect(encoded.body.toString()).toBe(
      '[[2, 3], {"z": 1}, {"callbacks": null, "errbacks": null, "chain": null, "chord": null}]',
    );
    expect(encoded.contentType).toBe("application/json");
  });

  it("formats times as Python's isoformat", () => {
    expect(isoformat(new Date("2026-11-24T01:59:46Z"))).toBe("2026-11-24T01:59:46+00:00");
    expect(isoformat(new Date("2026-11-24T01:59:46.5Z"))).toBe("2026-11-24T01:59:46.500000+00:00");
  });

  it("round-trips through decode, and accepts naive times as UTC", () => {
    const m = buildTaskMessage("tasks.add", [1], { eta: "2026-11-24T01:59:46" }, defaults, now);
    const decoded = decodeTaskMessage(encodeTaskMessage(m));
    expect(decoded.args).toEqual([1]);
    expect(decoded.headers.eta).toBe("2026-11-24T01:59:46+00:00");
  });

  it("rejects malformed messages with a clear reason", () => {
    const msg = (body: string, headers: Record<string, unknown> = { task: "t", id: "1" }) => ({
      body: Buffer.from(body),
      contentType: "application/json",
      contentEncoding: "utf-8",
      headers,
      properties: {},
    });
    expect(() => decodeTaskMessage(msg("[1, {}, {}]"))).toThrow(/\(args\) must be an array/);
    expect(() => decodeTaskMessage(msg("[[], [], {}]"))).toThrow(/\(kwargs\) must be an object/);
    expect(() => decodeTaskMessage(msg("[[], {}, {}, 4]"))).toThrow(/3 elements/);
    expect(() => decodeTaskMessage(msg("{nope"))).toThrow(/not valid JSON/);
    expect(() =>
      decodeTaskMessage(msg("[[], {}, {}]", { task: "t", id: "1", eta: "tomorrow" })),
    ).toThrow(/eta/);
    expect(() =>
      decodeTaskMessage({ ...msg("x"), contentType: "application/x-python-serialize" }),
    ).toThrow(/not accepted/);
  });

  it("rejects a malformed embed (chain, callbacks, errbacks, chord) as a malformed message", () => {
    const msg = (embed: unknown) => ({
      body: Buffer.from(JSON.stringify([[], {}, embed])),
      contentType: "application/json",
      contentEncoding: "utf-8",
      headers: { task: "t", id: "1" },
      properties: {},
    });
    const sig = {
      task: "t.next",
      args: [],
      kwargs: {},
      options: {},
      subtask_type: null,
      immutable: false,
    };
    const bad = (embed: unknown) => {
      let error: unknown;
      try {
        decodeTaskMessage(msg(embed));
      } catch (e) {
        error = e;
      }
      return error as { code?: string; message?: string } | undefined;
    };
    expect(bad({ chain: "oops" })).toMatchObject({
      code: "INVALID_MESSAGE",
      message: expect.stringMatching(/chain/),
    });
    expect(bad({ chain: [{ args: [] }] })).toMatchObject({
      code: "INVALID_MESSAGE",
      message: expect.stringMatching(/chain\[0\]\.task/),
    });
    expect(bad({ callbacks: sig })).toMatchObject({
      code: "INVALID_MESSAGE",
      message: expect.stringMatching(/callbacks/),
    });
    expect(bad({ errbacks: [{ ...sig, args: {} }] })).toMatchObject({
      code: "INVALID_MESSAGE",
      message: expect.stringMatching(/errbacks\[0\]\.args/),
    });
    expect(bad({ chord: [sig] })).toMatchObject({
      code: "INVALID_MESSAGE",
      message: expect.stringMatching(/chord/),
    });
    expect(bad({ chord: { ...sig, options: [] } })).toMatchObject({ code: "INVALID_MESSAGE" });
    expect(
      bad({ chain: [{ ...sig, subtask_type: "group", kwargs: { tasks: [{ task: 3 }] } }] }),
    ).toMatchObject({ code: "INVALID_MESSAGE", message: expect.stringMatching(/tasks\[0\]/) });
    // What Celery writes passes: full signatures, nulls, and signatures with fields left out.
    expect(
      decodeTaskMessage(
        msg({ callbacks: null, errbacks: [sig], chain: [{ task: "t.x" }], chord: sig }),
      ).embed,
    ).toMatchObject({ errbacks: [sig], chain: [{ task: "t.x" }], chord: sig });
  });

  it("converts protocol v1 bodies", () => {
    const m = decodeTaskMessage({
      body: Buffer.from(
        '{"task": "tasks.add", "id": "v1", "args": [1, 2], "kwargs": {}, "retries": 1}',
      ),
      contentType: "application/json",
      contentEncoding: "utf-8",
      headers: {},
      properties: {},
    });
    expect(m.headers).toMatchObject({ task: "tasks.add", id: "v1", retries: 1, root_id: "v1" });
    expect(m.args).toEqual([1, 2]);
  });
});

describe("exceptions and states", () => {
  it("encodes errors as Celery's exception dict and back", () => {
    expect(encodeException(new TypeError("bad"))).toEqual({
      exc_type: "TypeError",
      exc_message: ["bad"],
      exc_module: "builtins",
    });
    expect(encodeException(new TimeLimitExceeded(5))).toEqual({
      exc_type: "TimeLimitExceeded",
      exc_message: [5],
      exc_module: "billiard.exceptions",
    });
    expect(exceptionRepr(new Error("boom"))).toBe("Error('boom')");
    const e = decodeException(
      { exc_type: "ValueError", exc_message: ["boom"], exc_module: "builtins" },
      "Traceback...",
    );
    expect(e.name).toBe("ValueError");
    expect(e.message).toBe("boom");
    expect(
      decodeException(
        { exc_type: "TimeLimitExceeded", exc_message: [5], exc_module: "billiard.exceptions" },
        null,
      ),
    ).toBeInstanceOf(TimeLimitExceeded);
  });

  it("never moves a task backwards", () => {
    expect(isStateAdvance("SUCCESS", "STARTED")).toBe(false);
    expect(isStateAdvance("STARTED", "SUCCESS")).toBe(true);
    expect(isStateAdvance("RECEIVED", "STARTED")).toBe(true);
    expect(isStateAdvance("FAILURE", "RETRY")).toBe(false);
  });

  it("lets a retried task run again, as Celery's monitors do", () => {
    expect(isStateAdvance("STARTED", "RETRY")).toBe(true);
    expect(isStateAdvance("RETRY", "RECEIVED")).toBe(true);
    expect(isStateAdvance("RETRY", "STARTED")).toBe(true);
  });
});
