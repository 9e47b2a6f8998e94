/** The dashboard's static files: the app's fallback, caching, compression, and nothing outside dist/. */
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { dashboardHandler } from "../src/http/dashboard.js";

let dir: string;
let server: Server;
let base: string;

const serve = (root: string) =>
  new Promise<{ server: Server; base: string }>((resolve) => {
    const handler = dashboardHandler(root);
    const s = createServer((req, res) => {
      void handler(req, res).then((handled) => {
        if (!handled) res.writeHead(418).end("not the dashboard's");
      });
    });
    s.listen(0, "127.0.0.1", () =>
      resolve({ server: s, base: `http://127.0.0.1:${(s.address() as AddressInfo).port}` }),
    );
  });

beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), "celeriac-dist-"));
  await mkdir(path.join(dir, "dist", "assets"), { recursive: true });
  await writeFile(path.join(dir, "dist", "index.html"), '<div id="root"></div>');
  await writeFile(
    path.join(dir, "dist", "assets", "app-1234.js"),
    `console.log(${"1".repeat(4000)});`,
  );
  await writeFile(path.join(dir, "secret.txt"), "outside dist");
  ({ server, base } = await serve(path.join(dir, "dist")));
});

afterAll(async () => {
  server?.close();
  await rm(dir, { recursive: true, force: true });
});

describe("the dashboard's files", () => {
  it("serves index.html at / and for any page of the app, never cached", async () => {
    for (const p of ["/", "/tasks", "/tasks/3f0c", "/schedules/new?x=1"]) {
      const r = await fetch(base + p);
      expect(r.status).toBe(200);
      expect(r.headers.get("content-type")).toContain("text/html");
      expect(r.headers.get("cache-control")).toBe("no-cache");
      expect(await r.text()).toContain('id="root"');
    }
  });

  it("serves hashed assets cached for good, gzipped when asked", async () => {
    const r = await fetch(`${base}/assets/app-1234.js`, { headers: { "accept-encoding": "gzip" } });
    expect(r.status).toBe(200);
    expect(r.headers.get("content-type")).toContain("text/javascript");
    expect(r.headers.get("cache-control")).toContain("immutable");
    expect(r.headers.get("content-encoding")).toBe("gzip");
    expect(await r.text()).toContain("console.log");
  });

  it("answers 404 for a missing file, and nothing outside dist/", async () => {
    expect((await fetch(`${base}/assets/gone.js`)).status).toBe(404);
    for (const p of ["/../secret.txt", "/%2e%2e/secret.txt", "/assets/..%2f..%2fsecret.txt"]) {
      const r = await fetch(base + p);
      expect(await r.text()).not.toContain("outside dist");
    }
  });

  it("leaves /graphql and other methods to the API", async () => {
    expect((await fetch(`${base}/graphql`)).status).toBe(418);
    expect((await fetch(`${base}/tasks`, { method: "POST" })).status).toBe(418);
  });

  it("says how to build it when it is not built", async () => {
    const other = await serve(path.join(dir, "nothing-here"));
    try {
      const r = await fetch(`${other.base}/`);
      expect(r.status).toBe(503);
      expect(await r.text()).toContain("npm run build -w @celeriac/dashboard");
    } finally {
      other.server.close();
    }
  });
});
