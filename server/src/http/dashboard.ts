/**
 * The dashboard's static files (server/dashboard/dist, built by Vite) at `/`, with the single-page
 * app's fallback: any other path without a file extension gets index.html, and the app routes it.
 * Hashed assets are cached for good; index.html never is. Text files are gzipped once, in memory.
 */
import { createReadStream } from "node:fs";
import { readFile, stat } from "node:fs/promises";
import type { IncomingMessage, ServerResponse } from "node:http";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { gzipSync } from "node:zlib";

/** Where `npm run build -w @celeriac/dashboard` writes the app. */
export const DASHBOARD_DIST = fileURLToPath(new URL("../../dashboard/dist/", import.meta.url));

const TYPES: Record<string, string> = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".mjs": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".json": "application/json",
  ".map": "application/json",
  ".svg": "image/svg+xml",
  ".png": "image/png",
  ".jpg": "image/jpeg",
  ".ico": "image/x-icon",
  ".webp": "image/webp",
  ".woff2": "font/woff2",
  ".txt": "text/plain; charset=utf-8",
};

const COMPRESSIBLE = new Set([".html", ".js", ".mjs", ".css", ".json", ".svg", ".map", ".txt"]);

const NOT_BUILT = `<!doctype html>
<meta charset="utf-8"><title>Celeriac</title>
<body style="font-family: system-ui, sans-serif; max-width: 40rem; margin: 4rem auto; padding: 0 1rem">
<h1>The dashboard is not built</h1>
<p>Build it with <code>npm run build -w @celeriac/dashboard</code> and reload this page
(<code>npm start</code>, dev mode, builds it by itself). The GraphQL API is at
<a href="/graphql">/graphql</a>.</p>`;

export type DashboardHandler = (req: IncomingMessage, res: ServerResponse) => Promise<boolean>;

/** A handler that answers GET and HEAD for the dashboard; it returns false for what is not its own. */
export function dashboardHandler(dir: string = DASHBOARD_DIST): DashboardHandler {
  const root = path.resolve(dir);
  const gzipped = new Map<string, { mtime: number; body: Buffer }>();

  const send = async (
    req: IncomingMessage,
    res: ServerResponse,
    file: string,
    size: number,
    mtime: number,
    cache: string,
  ) => {
    const ext = path.extname(file).toLowerCase();
    const headers: Record<string, string | number> = {
      "content-type": TYPES[ext] ?? "application/octet-stream",
      "cache-control": cache,
      "x-content-type-options": "nosniff",
    };
    if (ext === ".html") {
      headers["x-frame-options"] = "DENY";
      headers["referrer-policy"] = "no-referrer";
    }
    const acceptsGzip = /\bgzip\b/.test(String(req.headers["accept-encoding"] ?? ""));
    if (acceptsGzip && COMPRESSIBLE.has(ext) && size > 1024) {
      let cached = gzipped.get(file);
      if (!cached || cached.mtime !== mtime) {
        cached = { mtime, body: gzipSync(await readFile(file)) };
        gzipped.set(file, cached);
      }
      res.writeHead(200, {
        ...headers,
        "content-encoding": "gzip",
        vary: "accept-encoding",
        "content-length": cached.body.length,
      });
      res.end(req.method === "HEAD" ? undefined : cached.body);
      return;
    }
    res.writeHead(200, { ...headers, "content-length": size });
    if (req.method === "HEAD") {
      res.end();
      return;
    }
    await new Promise<void>((resolve, reject) => {
      createReadStream(file).on("error", reject).on("end", resolve).pipe(res);
    });
  };

  const fileAt = async (file: string) => {
    try {
      const s = await stat(file);
      return s.isFile() ? s : null;
    } catch {
      return null;
    }
  };

  return async (req, res) => {
    if (req.method !== "GET" && req.method !== "HEAD") return false;
    let pathname: string;
    try {
      pathname = decodeURIComponent(new URL(req.url ?? "/", "http://x").pathname);
    } catch {
      return false;
    }
    if (pathname === "/graphql" || pathname.startsWith("/graphql/")) return false;
    const file = path.resolve(root, `.${path.posix.normalize(pathname)}`);
    if (file !== root && !file.startsWith(root + path.sep)) return false;
    const found = pathname.endsWith("/") ? null : await fileAt(file);
    if (found) {
      const immutable = pathname.startsWith("/assets/");
      await send(
        req,
        res,
        file,
        found.size,
        found.mtimeMs,
        immutable ? "public, max-age=31536000, immutable" : "no-cache",
      );
      return true;
    }
    // A missing file (with an extension) is a 404; any other path is one of the app's pages.
    if (path.posix.extname(pathname)) {
      res.writeHead(404, { "content-type": "text/plain" }).end("not found\n");
      return true;
    }
    const index = path.join(root, "index.html");
    const indexStat = await fileAt(index);
    if (!indexStat) {
      res.writeHead(503, {
        "content-type": "text/html; charset=utf-8",
        "cache-control": "no-cache",
      });
      res.end(req.method === "HEAD" ? undefined : NOT_BUILT);
      return true;
    }
    await send(req, res, index, indexStat.size, indexStat.mtimeMs, "no-cache");
    return true;
  };
}
