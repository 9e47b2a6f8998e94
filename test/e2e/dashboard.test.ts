/**
 * The dashboard in a real headless Chromium, against dev mode (control plane, beat, a worker on
 * the example tasks) on a fresh database: signing in, the live task table, re-running a failed
 * task, sending a task from the form, schedules, shutting a worker down, and what a viewer sees
 * on a phone. Screenshots are saved under test/artifacts/e2e/.
 */
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { createWorker, type Worker } from "@celeriac/sdk";
import type { Browser, BrowserContext, Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type DevHandle, startDev } from "../../server/src/dev/dev.js";
import { launchBrowser, pageErrors, screenshot } from "../helpers/browser.js";
import { createTestDatabase, type TestDatabase } from "../helpers/postgres.js";

const SHOTS = "e2e";
let dev: DevHandle;
let database: TestDatabase;
let dataDir: string;
let browser: Browser;
let context: BrowserContext;
let page: Page;
let errors: string[];
let extra: Worker;
let viewerToken: string;

async function gql<T>(query: string, variables: Record<string, unknown> = {}): Promise<T> {
  const response = await fetch(`${dev.url}/graphql`, {
    method: "POST",
    headers: { "content-type": "application/json", authorization: `Bearer ${dev.token}` },
    body: JSON.stringify({ query, variables }),
  });
  const body = (await response.json()) as { data: T; errors?: unknown[] };
  if (body.errors) throw new Error(JSON.stringify(body.errors));
  return body.data;
}

async function send(name: string, args: unknown[]): Promise<string> {
  const data = await gql<{ sendTask: { id: string } }>(
    "mutation ($input: SendTaskInput!) { sendTask(input: $input) { ... on Task { id } } }",
    { input: { name, args } },
  );
  return data.sendTask.id;
}

/** The dialog of a ConfirmButton: click its confirming button. */
async function confirm(p: Page, label: string) {
  await p.locator("dialog[open]").getByRole("button", { name: label, exact: true }).click();
}

beforeAll(async () => {
  database = await createTestDatabase("celeriac_e2e");
  dataDir = await mkdtemp(path.join(os.tmpdir(), "celeriac-e2e-"));
  dev = await startDev({
    dataDir,
    databaseUrl: database.url,
    brokerUrl: `memory://e2e-${process.pid}`,
    port: 0,
    demo: false,
    respawnWorker: false,
    logLevel: "warn",
    print: () => {},
  });
  // A second worker, to be shut down from the Workers page.
  extra = await createWorker(dev.app, {
    hostname: "e2e-extra@test",
    concurrency: 2,
    taskEvents: true,
    logLevel: "silent",
  });
  await extra.start();
  viewerToken = (await dev.server.services.tokens.create("e2e viewer", "viewer")).token;
  browser = await launchBrowser();
  context = await browser.newContext({ viewport: { width: 1280, height: 860 } });
  page = await context.newPage();
  errors = pageErrors(page);
}, 180_000);

afterAll(async () => {
  await browser?.close();
  await extra?.stop({ force: true }).catch(() => {});
  await dev?.stop();
  await database?.drop();
  if (dataDir) await rm(dataDir, { recursive: true, force: true });
});

describe("the dashboard", () => {
  it("refuses a wrong token, then signs in and shows the overview", async () => {
    await page.goto(dev.url);
    await expect.poll(() => page.getByLabel("API token").isVisible()).toBe(true);
    await screenshot(page, SHOTS, "01-sign-in");
    await page.getByLabel("API token").fill("cel_not-a-token");
    await page.getByRole("button", { name: "Sign in" }).click();
    await page.getByText("This token is not valid").waitFor();
    await page.getByLabel("API token").fill(dev.token);
    await page.getByRole("button", { name: "Sign in" }).click();
    await page.getByRole("heading", { name: "Overview" }).waitFor();
    await expect.poll(() => page.getByTestId("whoami").textContent()).toContain("admin");
    // The token stays in this browser: a reload does not ask again.
    await page.reload();
    await page.getByRole("heading", { name: "Overview" }).waitFor();
    await page.locator(".live-live").waitFor();
    await screenshot(page, SHOTS, "02-overview");
  });

  it("shows a task appear and finish live in the task table", async () => {
    await page.getByRole("link", { name: "Tasks", exact: true }).click();
    await page.getByRole("heading", { name: "Tasks" }).waitFor();
    await page.locator(".live-live").waitFor();
    await page.waitForTimeout(500); // the subscription is registered once the socket is up
    const id = await send("tasks.sleep", [1.5]);
    const row = page.locator(`tr[data-task-id="${id}"]`);
    await row.waitFor({ timeout: 10_000 });
    await expect
      .poll(() => row.getAttribute("data-state"), { timeout: 5_000 })
      .toMatch(/RECEIVED|STARTED|SUCCESS/);
    await screenshot(page, SHOTS, "03-task-running");
    await expect.poll(() => row.getAttribute("data-state"), { timeout: 15_000 }).toBe("SUCCESS");
    await expect.poll(() => row.textContent()).toContain("tasks.sleep");
    await screenshot(page, SHOTS, "04-task-finished");
  });

  it("re-runs a failed task from its page, landing on the new task", async () => {
    const id = await send("tasks.fail", ["e2e boom"]);
    await page.goto(`${dev.url}/tasks/${id}`);
    await page.getByTestId("task-exception").waitFor({ timeout: 15_000 });
    await expect.poll(() => page.getByTestId("task-exception").textContent()).toContain("e2e boom");
    await expect.poll(() => page.locator(".traceback").textContent()).toContain("tasks.ts");
    await expect.poll(() => page.locator(".timeline").textContent()).toContain("task-failed");
    await screenshot(page, SHOTS, "05-failed-task", true);
    await page.getByRole("button", { name: "Re-run", exact: true }).click();
    await confirm(page, "Re-run");
    await expect.poll(() => page.url(), { timeout: 10_000 }).not.toContain(id);
    const rerun = page.url().split("/tasks/")[1]!;
    expect(rerun).toMatch(/^[0-9a-f-]{36}$/);
    await page.getByText("Re-run of").waitFor();
    await expect
      .poll(() => page.locator("h1 .state").textContent(), { timeout: 15_000 })
      .toBe("FAILURE");
    // The original lists its re-run.
    await page
      .getByRole("link", { name: id.slice(0, 8), exact: false })
      .first()
      .click();
    await page.getByText("Re-runs (1)").waitFor();
  });

  it("re-runs a selection of failed tasks from the table", async () => {
    await page.goto(`${dev.url}/tasks?state=FAILURE&name=tasks.fail`);
    await page.locator("tr[data-task-id]").first().waitFor();
    const before = await page.locator("tr[data-task-id]").count();
    await page.getByLabel("Select all on this page").check();
    await page.getByRole("button", { name: "Re-run selected" }).click();
    await confirm(page, "Re-run");
    await page.getByText(`Re-ran ${before} task`).waitFor();
  });

  it("sends a task from the form generated from its schema, and from the JSON editor", async () => {
    await page.goto(`${dev.url}/run`);
    await page.getByRole("button", { name: /reports\.render/ }).click();
    await page.getByLabel("Title").waitFor();
    // Nothing filled: the form says what is missing, and nothing is sent.
    await page.getByRole("button", { name: "Send" }).click();
    await page.getByText("Some arguments are not valid").waitFor();
    await page.getByLabel("Title").fill("Quarterly numbers");
    await page.getByLabel("Format").selectOption("pdf");
    await page.getByLabel("Pages").fill("3");
    await page.getByLabel("Draft").check();
    await screenshot(page, SHOTS, "06-run-form", true);
    await page.getByRole("button", { name: "Send" }).click();
    await page.waitForURL(/\/tasks\/[0-9a-f-]{36}$/);
    await expect
      .poll(
        () =>
          page
            .getByTestId("task-result")
            .textContent()
            .catch(() => ""),
        {
          timeout: 15_000,
        },
      )
      .toContain("quarterly-numbers.pdf");
    await expect
      .poll(() => page.locator(".logs").textContent(), { timeout: 10_000 })
      .toContain("rendering report");
    await screenshot(page, SHOTS, "07-form-task-done", true);

    // A typed error from the server, shown as such: arguments that break the schema.
    await page.goto(`${dev.url}/run?name=reports.render`);
    await page.getByRole("button", { name: "edit as JSON" }).click();
    await page.locator("textarea[name=args]").fill('["", "doc", 0, false]');
    await page.getByRole("button", { name: "Send" }).click();
    const problem = page.locator(".problem");
    await problem.waitFor();
    await expect.poll(() => problem.textContent()).toContain("INVALID_INPUT");
    await expect.poll(() => problem.textContent()).toContain("args.2");
    await screenshot(page, SHOTS, "08-typed-error");

    // No schema: the JSON editor.
    await page.goto(`${dev.url}/run`);
    await page.getByRole("button", { name: "tasks.add", exact: true }).click();
    await page.locator("textarea[name=args]").fill("[20, 22]");
    await page.getByRole("button", { name: "Send" }).click();
    await page.waitForURL(/\/tasks\/[0-9a-f-]{36}$/);
    await expect
      .poll(
        () =>
          page
            .getByTestId("task-result")
            .textContent()
            .catch(() => ""),
        {
          timeout: 15_000,
        },
      )
      .toBe("42");
  });

  it("creates, edits, runs and disables a schedule", async () => {
    await page.goto(`${dev.url}/schedules`);
    await page.getByRole("link", { name: "New schedule" }).click();
    await page.getByLabel("Name").fill("e2e sums");
    await page.getByLabel("Task", { exact: true }).fill("tasks.add");
    await page.getByLabel("Positional (a JSON array)").fill("[1, 1]");
    await page.locator("input[name=every]").fill("5");
    await page.locator("select[name=period]").selectOption("MINUTES");
    await page.getByRole("button", { name: "Create" }).click();
    await page.waitForURL(/\/schedules\/[0-9a-f-]+$/);
    await expect
      .poll(() => page.getByTestId("schedule-description").textContent())
      .toMatch(/5 minutes/);

    await page.getByRole("link", { name: "Edit" }).click();
    await page.getByText("Crontab", { exact: true }).click();
    await page.getByRole("button", { name: "daily 09:00" }).click();
    await page.getByLabel("Time zone").fill("Mars/Olympus");
    await page.getByRole("button", { name: "Save" }).click();
    await page.getByText('unknown zone "Mars/Olympus"').first().waitFor();
    await page.getByLabel("Time zone").fill("Asia/Tokyo");
    await screenshot(page, SHOTS, "09-schedule-form", true);
    await page.getByRole("button", { name: "Save" }).click();
    await page.waitForURL(/\/schedules\/[0-9a-f-]+$/);
    await expect
      .poll(() => page.getByTestId("schedule-description").textContent())
      .toContain("Asia/Tokyo");

    await page.getByRole("button", { name: "Run now" }).click();
    await page.getByText("e2e sums: sent").waitFor();
    await expect
      .poll(() => page.locator("table").last().textContent(), { timeout: 10_000 })
      .toContain("manual");
    await page.getByRole("button", { name: "Disable" }).click();
    await page.locator("h1 .badge", { hasText: "disabled" }).waitFor();
    await screenshot(page, SHOTS, "10-schedule", true);
    await page.getByRole("link", { name: "Schedules" }).click();
    await page.locator('tr[data-schedule="e2e sums"]').waitFor();
  });

  it("shuts a worker down from the Workers page", async () => {
    await page.goto(`${dev.url}/workers`);
    const card = page.locator('[data-worker="e2e-extra@test"]');
    await card.waitFor();
    await expect.poll(() => card.getByTestId("worker-status").textContent()).toBe("online");
    await screenshot(page, SHOTS, "11-workers");
    await card.getByRole("button", { name: "Shut down" }).click();
    await confirm(page, "Shut down");
    await page.getByText("e2e-extra@test is shutting down").waitFor();
    await expect
      .poll(() => card.getByTestId("worker-status").textContent(), { timeout: 15_000 })
      .toBe("offline");
    await screenshot(page, SHOTS, "12-worker-offline");
  });

  it("shows who holds a unique task's lock, and releases it", async () => {
    // tasks.sleep has no unique rule of its own: this call brings one.
    await dev.app.sendTask("tasks.sleep", [5], {}, { unique: { by: "name", ttl: 30 } });
    await page.goto(`${dev.url}/locks`);
    const row = page.locator('tr[data-lock="tasks.sleep"]');
    await row.waitFor();
    expect(await row.textContent()).toMatch(/tasks\.sleep.*dev@/);
    await screenshot(page, SHOTS, "12b-locks");
    await row.getByRole("button", { name: "Release" }).click();
    await confirm(page, "Release");
    await page.getByText("Released tasks.sleep").waitFor();
    await row.waitFor({ state: "detached" });
  });

  it("gives a viewer no controls, and fits a phone's width", async () => {
    const phone = await browser.newContext({
      viewport: { width: 390, height: 844 },
      deviceScaleFactor: 2,
      isMobile: true,
      hasTouch: true,
    });
    const p = await phone.newPage();
    const phoneErrors = pageErrors(p);
    await p.goto(`${dev.url}/tasks#token=${viewerToken}`);
    await p.locator("tr[data-task-id]").first().waitFor();
    expect(await p.getByLabel("Select all on this page").count()).toBe(0);
    const width = await p.evaluate(() => document.documentElement.scrollWidth);
    expect(width).toBeLessThanOrEqual(392);
    await screenshot(p, SHOTS, "13-phone-tasks");
    await p.locator("tr[data-task-id] a").first().click();
    await p.getByTestId("task-id").waitFor();
    expect(await p.getByRole("button", { name: "Re-run" }).count()).toBe(0);
    await screenshot(p, SHOTS, "14-phone-task", true);
    await p.goto(`${dev.url}/workers`);
    await p.locator("[data-worker]").first().waitFor();
    expect(await p.getByRole("button", { name: "Shut down" }).count()).toBe(0);
    await p.goto(`${dev.url}/`);
    await p.getByRole("heading", { name: "Overview" }).waitFor();
    await screenshot(p, SHOTS, "15-phone-overview", true);
    expect(phoneErrors).toEqual([]);
    await phone.close();
  });

  it("raised no error in the page", () => {
    expect(errors).toEqual([]);
  });
});
