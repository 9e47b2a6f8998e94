/**
 * Every GraphQL document the dashboard sends is valid against the server's schema, so a change
 * to the API that would break a page fails here rather than in a browser.
 */
import { stringifyDocument } from "@urql/core";
import { parse, validate } from "graphql";
import { describe, expect, it } from "vitest";
import * as documents from "../../server/dashboard/src/graphql.js";
import { schema } from "../../server/src/schema/index.js";

const all = Object.entries(documents).filter(
  ([, value]) =>
    typeof value === "object" && value !== null && (value as { kind?: string }).kind === "Document",
);

describe("the dashboard's GraphQL documents", () => {
  it("are all found", () => {
    expect(all.length).toBeGreaterThan(20);
  });

  it.each(all)("%s is valid against the schema", (_name, document) => {
    const text = stringifyDocument(document as Parameters<typeof stringifyDocument>[0]);
    const errors = validate(schema, parse(text)).map((e) => e.message);
    expect(errors).toEqual([]);
  });
});
