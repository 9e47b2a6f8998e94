/**
 * Refreshes docs/dashboard.png, the screenshot in the README: dev mode with its demo load on a
 * fresh embedded database, left running for a while, then the overview in headless Chromium.
 *
 *   npx tsx test/e2e/screenshot.ts [seconds of demo load, default 240]
 */
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { startDev } from "../../server/src/dev/dev.js";
import { launchBrowser } from "../helpers/browser.js";

const seconds = Number(process.argv[2] ?? 240);
const dataDir = await mkdtemp(path.join(os.tmpdir(), "celeriac-shot-"));
const dev = await startDev({ dataDir, port: 0, print: () => {} });
const browser = await launchBrowser();
try {
  console.log(`demo load for ${seconds} s…`);
  await new Promise((r) => setTimeout(r, seconds * 1000));
  const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
  await page.goto(`${dev.url}/?window=300#token=${dev.token}`);
  await page.getByRole("heading", { name: "Overview" }).waitFor();
  await page.locator(".live-live").waitFor();
  await page.waitForTimeout(1500);
  const file = path.resolve("docs/dashboard.png");
  await page.screenshot({ path: file });
  console.log(`saved ${file}`);
} finally {
  await browser.close();
  await dev.stop();
  await rm(dataDir, { recursive: true, force: true });
}
process.exit(0);
