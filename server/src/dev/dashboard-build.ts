/**
 * Building the dashboard when it is missing or older than its sources, so that a fresh clone
 * serves it after `npm install && npm start` with no other step. Vite builds into a folder of its
 * own, which then replaces dist/ at once: a server serving the old build never sees half of one.
 */
import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdir, readdir, rename, rm, stat } from "node:fs/promises";
import path from "node:path";
import { fileURLToPath } from "node:url";

export const DASHBOARD_ROOT = fileURLToPath(new URL("../../dashboard/", import.meta.url));

/** Inputs of the build: a change to any of them makes dist/ stale. */
const INPUTS = ["src", "index.html", "vite.config.ts", "package.json", "tsconfig.json"];

async function newestMtime(target: string): Promise<number> {
  let s: Awaited<ReturnType<typeof stat>>;
  try {
    s = await stat(target);
  } catch {
    return 0;
  }
  if (!s.isDirectory()) return s.mtimeMs;
  let newest = s.mtimeMs;
  for (const entry of await readdir(target)) {
    newest = Math.max(newest, await newestMtime(path.join(target, entry)));
  }
  return newest;
}

/** Whether dist/ is missing or older than a source of the dashboard. */
export async function dashboardStale(root = DASHBOARD_ROOT): Promise<boolean> {
  const built = await stat(path.join(root, "dist", "index.html")).catch(() => null);
  if (!built) return true;
  let newest = 0;
  for (const input of INPUTS) newest = Math.max(newest, await newestMtime(path.join(root, input)));
  return newest > built.mtimeMs;
}

/** Vite's command-line entry, found as Node would resolve the package from the dashboard. */
function viteBin(root: string): string {
  for (let dir = root; ; dir = path.dirname(dir)) {
    const bin = path.join(dir, "node_modules", "vite", "bin", "vite.js");
    if (existsSync(bin)) return bin;
    if (path.dirname(dir) === dir) break;
  }
  throw new Error(
    "Vite is not installed, so the dashboard cannot be built: run `npm install` at the repository's root",
  );
}

export interface BuildResult {
  built: boolean;
  ms: number;
}

/** Build the dashboard if it is stale (or always, with `force`). */
export async function ensureDashboardBuilt(
  options: { root?: string; force?: boolean; onStart?: () => void } = {},
): Promise<BuildResult> {
  const root = options.root ?? DASHBOARD_ROOT;
  if (!options.force && !(await dashboardStale(root))) return { built: false, ms: 0 };
  options.onStart?.();
  const t0 = performance.now();
  const bin = viteBin(root);
  // node_modules is ignored by git and the linter, and on the same disk as dist/.
  const scratch = path.join(
    path.dirname(path.dirname(path.dirname(bin))),
    ".cache",
    "celeriac-dashboard",
  );
  await mkdir(scratch, { recursive: true });
  const out = path.join(scratch, `build-${process.pid}-${Date.now()}`);
  let output = "";
  const code = await new Promise<number | null>((resolve, reject) => {
    const child = spawn(
      process.execPath,
      [bin, "build", "--outDir", out, "--emptyOutDir", "--logLevel", "warn"],
      {
        cwd: root,
        stdio: ["ignore", "pipe", "pipe"],
        env: { ...process.env, NODE_ENV: "production" },
      },
    );
    child.stdout.on("data", (d: Buffer) => (output += d.toString()));
    child.stderr.on("data", (d: Buffer) => (output += d.toString()));
    child.once("error", reject);
    child.once("exit", (c) => resolve(c));
  });
  if (code !== 0) {
    await rm(out, { recursive: true, force: true });
    throw new Error(`the dashboard's build failed (exit ${code}):\n${output.slice(-4000)}`);
  }
  const dist = path.join(root, "dist");
  const old = `${out}-old`;
  await rename(dist, old).catch(() => {});
  try {
    await rename(out, dist);
  } catch (error) {
    // Another process built it at the same moment: its build is as good as ours.
    if (!existsSync(path.join(dist, "index.html"))) throw error;
    await rm(out, { recursive: true, force: true });
  }
  await rm(old, { recursive: true, force: true });
  return { built: true, ms: Math.round(performance.now() - t0) };
}
