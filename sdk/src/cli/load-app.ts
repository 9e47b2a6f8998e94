/** Load the app a CLI command works with, from a module path (`--app examples/tasks.ts`). */
import path from "node:path";
import { pathToFileURL } from "node:url";
import type { App } from "../app.js";
import { CeleriacError } from "../errors.js";

function looksLikeApp(v: unknown): v is App {
  return v !== null && typeof v === "object" && "registry" in v && "task" in v && "connect" in v;
}

/** Import the module and find its app: the export named `app`, else the default export. */
export async function loadApp(modulePath: string): Promise<App> {
  const url = pathToFileURL(path.resolve(modulePath)).href;
  const mod = (await import(url)) as Record<string, unknown>;
  const candidate = mod.app ?? mod.default;
  if (!looksLikeApp(candidate)) {
    throw new CeleriacError(
      "INVALID_OPTION",
      `${modulePath} must export its app as \`app\` or as the default export (createApp(...))`,
    );
  }
  return candidate;
}
