/** `celeriac-server` as operators run it: migrate, tokens, serve, and the committed schema. */
import { execFile } from "node:child_process";
import { readFile } from "node:fs/promises";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { redactUrl } from "../../server/src/db/database.js";
import { printedSchema } from "../../server/src/schema/index.js";
import { createTestDatabase, type TestDatabase } from "../helpers/postgres.js";
import { kill, startUntil } from "../helpers/processes.js";
import { redisUrl, requireRedis } from "../helpers/services.js";

const run = promisify(execFile);
const CLI = "server/bin/celeriac-server.mjs";
let database: TestDatabase;

beforeAll(async () => {
  database = await createTestDatabase();
});
afterAll(async () => {
  await database?.drop();
});

const cli = (args: string[], env: NodeJS.ProcessEnv = {}) =>
  run("node", [CLI, ...args], { env: { ...process.env, DATABASE_URL: database.url, ...env } });

describe("celeriac-server", () => {
  it("applies migrations, then finds nothing left to apply", async () => {
    const first = await cli(["migrate"]);
    expect(first.stdout).toMatch(/[1-9]\d* migration\(s\) applied/);
    const again = await cli(["migrate"]);
    expect(again.stdout).toMatch(/0 migration\(s\) applied, [1-9]\d* already applied/);
  });

  it("creates a token once, which the running server accepts, and refuses a bad role", {
    timeout: 90_000,
  }, async () => {
    await requireRedis();
    const created = await cli(["token", "create", "--role", "operator", "--name", "deploy bot"]);
    const token = created.stdout.trim();
    expect(token).toMatch(/^cel_[A-Za-z0-9_-]{43}$/);
    expect(created.stderr).toMatch(/operator token "deploy bot"/);
    const listed = await cli(["token", "list"]);
    expect(listed.stdout).toMatch(/operator\tdeploy bot\tactive/);
    expect(listed.stdout).not.toContain(token);
    await expect(cli(["token", "create", "--role", "root", "--name", "x"])).rejects.toMatchObject({
      stderr: expect.stringMatching(/--role must be one of: viewer, operator, admin/),
    });

    const server = await startUntil(
      "node",
      [CLI, "--port", "0", "--no-beat"],
      /control plane ready/,
      {
        env: { DATABASE_URL: database.url, BROKER_URL: redisUrl(1), LOG_LEVEL: "info" },
        timeoutMs: 60_000,
      },
    );
    try {
      const url = /"url":"(http:\/\/[^"]+)"/.exec(server.output())![1]!;
      const ask = (auth?: string) =>
        fetch(url, {
          method: "POST",
          headers: { "content-type": "application/json", ...(auth ? { authorization: auth } : {}) },
          body: JSON.stringify({ query: "{ me { name role } }" }),
        });
      expect((await ask()).status).toBe(401);
      const ok = await ask(`Bearer ${token}`);
      expect(await ok.json()).toEqual({ data: { me: { name: "deploy bot", role: "operator" } } });
      // The token never reaches the logs.
      expect(server.output()).not.toContain(token);
    } finally {
      await kill(server.proc, "SIGTERM");
    }
  });

  it("says what is missing instead of starting without a database", async () => {
    await expect(cli(["migrate"], { DATABASE_URL: "" })).rejects.toMatchObject({
      stderr: expect.stringMatching(/DATABASE_URL is not set/),
    });
  });

  it("has its printed schema committed and current (server/schema.graphql)", async () => {
    const committed = await readFile("server/schema.graphql", "utf8");
    expect(committed.trim(), "run: npm run schema:print -w server").toBe(printedSchema().trim());
  });

  it("never prints a database password", async () => {
    expect(redactUrl("postgresql://app:s3cret@db.internal:5432/celeriac")).toBe(
      "postgresql://app:***@db.internal:5432/celeriac",
    );
    // The CLI says where it migrated with the password hidden.
    const url = new URL(database.url);
    url.username = "postgres";
    url.password = "not-needed-with-trust";
    const out = await cli(["migrate"], { DATABASE_URL: url.toString() });
    expect(out.stdout).toContain("postgres:***@");
    expect(out.stdout).not.toContain("not-needed-with-trust");
  });
});
