/**
 * The README's two commands on a fresh clone: `npm install`, then `npm start` with nothing else
 * installed or running; the dashboard it prints serves, and a task sent through it succeeds.
 *
 * It clones the repository's HEAD, so it tests what is committed: work not yet committed is not in
 * the clone (the test says so when the working tree differs).
 */
import { type ChildProcess, execFile, spawn } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import type { Browser } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { launchBrowser, pageErrors, screenshot } from "../helpers/browser.js";

const run = promisify(execFile);
const REPO = path.resolve(".");
/** What dev mode and the dashboard are made of: HEAD must have them for the clone to work. */
const NEEDED = [
  "server/src/dev/dev.ts",
  "server/dashboard/src/main.tsx",
  "server/dashboard/package.json",
];

let dir: string;
let clone: string;
let browser: Browser | undefined;
let start: ChildProcess | undefined;
let output = "";

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

/** Stop `npm start` and everything it started (it runs in its own process group). */
async function stopStart() {
  const p = start;
  if (!p || p.exitCode !== null || p.signalCode !== null || !p.pid) return;
  const exited = new Promise((resolve) => p.once("exit", resolve));
  process.kill(-p.pid, "SIGINT");
  const timer = setTimeout(() => p.pid && process.kill(-p.pid, "SIGKILL"), 15_000);
  await exited;
  clearTimeout(timer);
}

beforeAll(async () => {
  const missing: string[] = [];
  for (const file of NEEDED) {
    await run("git", ["cat-file", "-e", `HEAD:${file}`], { cwd: REPO }).catch(() =>
      missing.push(file),
    );
  }
  if (missing.length)
    throw new Error(
      `HEAD does not contain ${missing.join(", ")}: this test clones HEAD, so it can pass only once dev mode and the dashboard are committed`,
    );
  const { stdout: status } = await run("git", ["status", "--porcelain"], { cwd: REPO });
  if (status.trim())
    console.warn(
      `fresh clone: the working tree has uncommitted changes; only HEAD is tested:\n${status}`,
    );
  dir = await mkdtemp(path.join(os.tmpdir(), "celeriac-clone-"));
  clone = path.join(dir, "celeriac");
  await run("git", ["clone", "--quiet", "--no-hardlinks", REPO, clone]);
}, 120_000);

afterAll(async () => {
  await stopStart();
  await browser?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe("the README's start command on a fresh clone", () => {
  it("installs, starts, serves the dashboard, and runs a task sent from it", {
    timeout: 900_000,
  }, async () => {
    // npm install, as a newcomer runs it (packages come from npm's cache when it has them).
    const env: NodeJS.ProcessEnv = {
      ...process.env,
      npm_config_audit: "false",
      npm_config_fund: "false",
    };
    for (const k of ["DATABASE_URL", "BROKER_URL", "RESULT_BACKEND", "LOG_LEVEL"]) delete env[k];
    await run("npm", ["install", "--prefer-offline", "--no-audit", "--no-fund"], {
      cwd: clone,
      env,
      timeout: 600_000,
      maxBuffer: 64 * 1024 * 1024,
    });

    const port = await freePort();
    start = spawn("npm", ["start"], {
      cwd: clone,
      env: { ...env, PORT: String(port) },
      stdio: ["ignore", "pipe", "pipe"],
      detached: true,
    });
    const ready = new Promise<void>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`npm start not ready in 240 s:\n${output}`)),
        240_000,
      );
      const onData = (chunk: Buffer) => {
        output += chunk.toString();
        if (/Admin token:\s+cel_\S+/.test(output)) {
          clearTimeout(timer);
          resolve();
        }
      };
      start!.stdout!.on("data", onData);
      start!.stderr!.on("data", onData);
      start!.once("exit", (code) => {
        clearTimeout(timer);
        reject(new Error(`npm start exited (${code}) before it was ready:\n${output}`));
      });
    });
    await ready;
    const link = /Dashboard:\s+(\S+)/.exec(output)![1]!;
    expect(link).toMatch(new RegExp(`^http://127\\.0\\.0\\.1:${port}/#token=cel_`));

    browser = await launchBrowser();
    const page = await browser.newPage({ viewport: { width: 1280, height: 860 } });
    const errors = pageErrors(page);
    await page.goto(link);
    await page.getByRole("heading", { name: "Overview" }).waitFor({ timeout: 30_000 });
    await page.getByRole("link", { name: "Run a task" }).click();
    await page.getByRole("button", { name: "tasks.add", exact: true }).click();
    await page.locator("textarea[name=args]").fill("[19, 23]");
    await page.getByRole("button", { name: "Send" }).click();
    await page.waitForURL(/\/tasks\/[0-9a-f-]{36}$/);
    await expect
      .poll(
        () =>
          page
            .getByTestId("task-result")
            .textContent()
            .catch(() => ""),
        { timeout: 20_000 },
      )
      .toBe("42");
    await expect.poll(() => page.locator("h1 .state").textContent()).toBe("SUCCESS");
    await screenshot(page, "fresh-clone", "task-run-from-the-dashboard");
    expect(errors).toEqual([]);
  });
});
