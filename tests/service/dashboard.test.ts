/**
 * The dashboard in a real headless Chromium (Debian's `chromium`, driven by playwright-core):
 * submit a job from the page, see the reward chart grow, kill an actor through the API, see
 * the death and the restart in the timeline and the actor table, and leave a screenshot in
 * docs/dashboard.png (shown by the README). Skips, saying why, when Chromium is absent.
 */
import { afterAll, expect, test } from "bun:test";
import { existsSync, mkdirSync, statSync } from "node:fs";
import { join } from "node:path";
import { runtime } from "../../runtime/core/adapter/index.ts";
import { createApp } from "../../runtime/service/server/app.ts";
import { quietManager, removeTempDirs, shortJob, tempDir } from "./helpers.ts";

/** Page-side predicates run in the browser; this suite's TypeScript has no DOM types. (Functions, not strings: the page's CSP forbids eval.) */
declare const document: { querySelector(selector: string): { textContent: string | null; getAttribute(name: string): string | null } | null };

const CHROMIUM = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";
const root = join(import.meta.dir, "..", "..");
const screenshot = join(root, "docs", "dashboard.png");
const haveChromium = existsSync(CHROMIUM);
if (!haveChromium) console.log(`skipping the browser test: no Chromium at ${CHROMIUM} (apt-get install -y chromium, or set CHROMIUM_PATH)`);

const jobs = quietManager(tempDir("dashboard")).start();
const server = await runtime.serve({ fetch: createApp({ jobs, chaos: true }).fetch, port: 0 });
const base = `http://127.0.0.1:${server.port}`;
afterAll(async () => {
  await jobs.close();
  await server.stop();
  removeTempDirs();
});

test.skipIf(!haveChromium)("submit a job, watch the chart, kill an actor, see the restart; screenshot", async () => {
  const { chromium } = await import("playwright-core");
  const context = await chromium.launchPersistentContext(tempDir("chromium-profile"), {
    executablePath: CHROMIUM,
    headless: true,
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
      "--disable-component-update", "--disable-sync"],
    viewport: { width: 1400, height: 920 },
  });
  try {
    const page = context.pages()[0] ?? await context.newPage();
    const pageErrors: string[] = [];
    page.on("pageerror", (e) => pageErrors.push(e.message));
    await page.goto(base);
    // The default data set and batch: long enough (~10 s) for the reward to visibly climb in the screenshot.
    const job = { ...shortJob(120), data: {}, worker: {}, trainer: { total_steps: 120, val_interval: 10 }, checkpoint: { interval: 20 } };
    await page.fill("#config", JSON.stringify(job, null, 1));
    await page.click("#submit-button");

    // The chart fills as steps stream in.
    await page.waitForFunction(() => Number(document.querySelector("#reward-chart")?.getAttribute("data-points")) >= 8, null, { timeout: 30_000 });
    expect(await page.locator('#reward-chart polyline[data-series="critic/score/mean"]').count()).toBe(1);
    expect(await page.locator('#loss-chart polyline[data-series="actor/pg_loss"]').count()).toBe(1);
    const id = (await page.textContent("#job-title"))!;
    expect(id).toMatch(/^digit_reversal-/);
    await page.waitForSelector('#actors-body tr[data-actor="critic"]');

    const kill = await fetch(`${base}/jobs/${id}/actors/critic/kill`, { method: "POST", body: '{"signal":"SIGKILL"}', headers: { "Content-Type": "application/json" } });
    expect(kill.status).toBe(202);

    // The death and the restart appear in the timeline and the table.
    await page.waitForSelector("#timeline-list .ev-restart", { timeout: 30_000 });
    expect(await page.locator("#timeline-list .ev-death").count()).toBeGreaterThanOrEqual(1);
    expect(await page.locator('#timeline circle[data-kind="restart"]').count()).toBeGreaterThanOrEqual(1);
    await page.waitForFunction(() => document.querySelector('#actors-body tr[data-actor="critic"] td.restarts')?.textContent === "1", null, { timeout: 10_000 });

    await page.waitForFunction(() => document.querySelector("#job-status")?.textContent === "succeeded", null, { timeout: 60_000 });
    expect(Number(await page.getAttribute("#reward-chart", "data-points"))).toBe(120);
    mkdirSync(join(root, "docs"), { recursive: true });
    await page.screenshot({ path: screenshot, fullPage: true });
    expect(statSync(screenshot).size).toBeGreaterThan(10_000);
    expect(pageErrors).toEqual([]);
  } finally {
    await context.close();
  }
}, 120_000);
