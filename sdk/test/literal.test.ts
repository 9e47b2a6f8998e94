import { describe, expect, it } from "vitest";
import { argsFromRepr, kwargsFromRepr, parsePythonLiteral } from "../src/protocol/literal.js";
import { repr, reprArgs } from "../src/protocol/repr.js";

describe("Python literals", () => {
  it("reads back what Python's repr prints for task arguments", () => {
    expect(argsFromRepr("(2, 3)")).toEqual([2, 3]);
    expect(argsFromRepr("(1,)")).toEqual([1]);
    expect(argsFromRepr("()")).toEqual([]);
    expect(argsFromRepr("[1, 2]")).toEqual([1, 2]);
    expect(kwargsFromRepr("{'z': 1, \"it's\": [None, True, False]}")).toEqual({
      z: 1,
      "it's": [null, true, false],
    });
    expect(parsePythonLiteral("{'a': (1.5, -2e-05, 'x\\ny\\u00e9\\x41')}")).toEqual({
      a: [1.5, -2e-5, "x\nyéA"],
    });
    expect(parsePythonLiteral("{1, 2}")).toEqual([1, 2]);
    expect(parsePythonLiteral("(3)")).toBe(3);
  });

  it("round-trips our own reprs", () => {
    const args = ["O'Reilly", { nested: [1, 2.5, null, "tab\there"] }, true];
    expect(argsFromRepr(reprArgs(args))).toEqual(args);
    expect(kwargsFromRepr(repr({ a: "é", b: [] }))).toEqual({ a: "é", b: [] });
  });

  it("gives up on truncated or non-literal reprs", () => {
    expect(argsFromRepr("(1, 2, 'abc...")).toBeUndefined();
    expect(argsFromRepr("(<object at 0x7f>,)")).toBeUndefined();
    expect(kwargsFromRepr("[1]")).toBeUndefined();
    expect(argsFromRepr(undefined)).toBeUndefined();
    expect(() => parsePythonLiteral("datetime.datetime(2020, 1, 1)")).toThrow(
      /not a Python literal/,
    );
  });

  /**
   * Texts below are what Celery 5.2.6 writes, from
   * `/usr/bin/python3 -c "from celery.utils.saferepr import saferepr; print(saferepr(args, 1024))"`.
   */
  describe("from Celery's saferepr", () => {
    it("refuses anything saferepr truncated: inside a string, a number, a nested level", () => {
      // saferepr(('x' * 2000,), 1024): cut inside the quotes, the tuple left open.
      expect(argsFromRepr(`('${"x".repeat(1023)}...', ...`)).toBeUndefined();
      // saferepr({'a': 'x' * 2000}, 1024)
      expect(kwargsFromRepr(`{'a': '${"x".repeat(1018)}...', ...`)).toBeUndefined();
      // saferepr((list(range(500)),), 1024): a number cut short, then the rest elided.
      const numbers = Array.from({ length: 226 }, (_, i) => i).join(", ");
      expect(argsFromRepr(`([${numbers}, 22..., ...],)`)).toBeUndefined();
      // saferepr(({'a': {'b': {'c': 1}}},), 1024): levels past the third elided.
      expect(argsFromRepr("({'a': {'b': {...}}},)")).toBeUndefined();
      // saferepr(('wait...',)): a string really ending in ... cannot be told from a cut one.
      expect(argsFromRepr("('wait...',)")).toBeUndefined();
      // Tokens cut short fail with a CeleriacError whatever the entry point.
      expect(() => parsePythonLiteral("[1, 22..., ...]")).toThrow(/truncated/);
      expect(() => parsePythonLiteral("[...]")).toThrow(/truncated/);
    });

    it("reads strings whose only escape is \\', as both writers mean the same", () => {
      // saferepr(("it's",)) escapes the quote; repr() would have written "it's".
      expect(argsFromRepr("('it\\'s',)")).toEqual(["it's"]);
      // saferepr(('line1\nline2',)) writes the newline itself.
      expect(argsFromRepr("('line1\nline2',)")).toEqual(["line1\nline2"]);
    });

    it("refuses backslashes saferepr leaves ambiguous, rather than returning wrong data", () => {
      // saferepr(('C:\\new\\table',)): a path to Python, a line break and a tab to repr().
      expect(argsFromRepr("('C:\\new\\table',)")).toBeUndefined();
      // saferepr(('a\\', 'b')): the backslash ending 'a\' swallows its closing quote.
      expect(argsFromRepr("('a\\', 'b')")).toBeUndefined();
      // saferepr(("a\\'b",)): a backslash then a quote.
      expect(argsFromRepr("('a\\\\'b',)")).toBeUndefined();
      // A "-quoted string shows the text came from repr() (saferepr never writes one): decoded.
      expect(argsFromRepr(`("O'Reilly", 'C:\\\\new\\ttab')`)).toEqual(["O'Reilly", "C:\\new\ttab"]);
      // parsePythonLiteral reads Python literal syntax, as Python would.
      expect(parsePythonLiteral("'C:\\new'")).toBe("C:\new");
    });

    it("keeps a __proto__ key as an ordinary key", () => {
      // saferepr(({'__proto__': {'x': 1}, 'a': 2},))
      const [kw] = argsFromRepr("({'__proto__': {'x': 1}, 'a': 2},)") as [Record<string, unknown>];
      expect(Object.getPrototypeOf(kw)).toBe(Object.prototype);
      expect(Object.keys(kw)).toEqual(["__proto__", "a"]);
      expect(Object.getOwnPropertyDescriptor(kw, "__proto__")?.value).toEqual({ x: 1 });
      expect(JSON.parse(JSON.stringify(kw))).toEqual(JSON.parse('{"__proto__": {"x": 1}, "a": 2}'));
      expect(({} as Record<string, unknown>).x).toBeUndefined();
    });
  });

  it("requires commas between items", () => {
    expect(kwargsFromRepr("{'a': 1 'b': 2}")).toBeUndefined();
    expect(() => parsePythonLiteral("{'a': 1 'b': 2}")).toThrow(/expected , or \}/);
    expect(() => parsePythonLiteral("{1 2}")).toThrow(/expected , or \}/);
    expect(() => parsePythonLiteral("[1 2]")).toThrow(/expected , or \]/);
    expect(parsePythonLiteral("{'a': 1, 'b': 2,}")).toEqual({ a: 1, b: 2 });
    expect(parsePythonLiteral("(1, )")).toEqual([1]);
  });

  it("fails with a CeleriacError, never a RangeError, on deep nesting or bad escapes", () => {
    const deep = `${"[".repeat(100_000)}${"]".repeat(100_000)}`;
    expect(() => parsePythonLiteral(deep)).toThrow(
      expect.objectContaining({ name: "CeleriacError", code: "INVALID_ARGUMENTS" }),
    );
    expect(() => parsePythonLiteral(deep)).toThrow(/nested deeper than 100 levels/);
    expect(() => parsePythonLiteral("'\\U00110000'")).toThrow(
      expect.objectContaining({ name: "CeleriacError", code: "INVALID_ARGUMENTS" }),
    );
    expect(argsFromRepr(deep)).toBeUndefined();
    expect(parsePythonLiteral(`${"[".repeat(100)}1${"]".repeat(100)}`)).toBeDefined();
  });
});
