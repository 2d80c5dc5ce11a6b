/**
 * The dashboard in a real headless Chromium (Debian's `chromium`, driven by playwright-core):
 * submit a job from the page, see the reward, validation, entropy and KL charts grow (with step
 * ticks and a tooltip on hover), kill an actor through the API, see the death and the restart in
 * the timeline and the actor table, the actors read "stopped" once the job ends, runs written by
 * `bun run train` into the same run dir are listed read-only, and take a screenshot: into a
 * temporary folder, or where DASHBOARD_SCREENSHOT says (`bun run screenshot` refreshes
 * docs/dashboard.png, shown by the README, on purpose; a test run leaves the tracked picture
 * alone). Skips, saying why, when Chromium is absent. Every wait is on the page's state, never on
 * a clock.
 */
import { expect, test } from "bun:test";
import { existsSync, mkdirSync, statSync, utimesSync, writeFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { runtime } from "../../runtime/core/adapter/index.ts";
import { quietManager, shortJob, tempDir } from "./helpers.ts";
import { serveTestApp } from "./serve_app.ts";

/** Page-side predicates run in the browser; this suite's TypeScript has no DOM types. (Functions, not strings: the page's CSP forbids eval.) */
declare const document: {
  querySelector(selector: string): { textContent: string | null; getAttribute(name: string): string | null } | null;
  querySelectorAll(selector: string): { length: number };
};

const CHROMIUM = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";
const root = join(import.meta.dir, "..", "..");
const screenshot = process.env.DASHBOARD_SCREENSHOT ? resolve(root, process.env.DASHBOARD_SCREENSHOT) : join(tempDir("dashboard-screenshot"), "dashboard.png");
const haveChromium = existsSync(CHROMIUM);
if (!haveChromium) console.log(`skipping the browser test: no Chromium at ${CHROMIUM} (apt-get install -y chromium, or set CHROMIUM_PATH)`);

const runDir = tempDir("dashboard");

/** A run as `bun run train --run-dir <runDir>` leaves it: config.json and metrics.jsonl, no job.json. */
function cliRun(name: string, steps: number, o: { summary?: boolean; mtime?: Date }): void {
  const dir = join(runDir, name);
  mkdirSync(dir);
  writeFileSync(join(dir, "config.json"), JSON.stringify({ data: { task: "addition" }, trainer: { total_steps: steps } }));
  const line = (s: number) => JSON.stringify({ step: s, "critic/score/mean": s / steps, "actor/entropy": 2.5 - s / steps, "actor/ppo_kl": s / 1000, ...(s % 4 === 0 ? { "val/score": s / steps } : {}) });
  writeFileSync(join(dir, "metrics.jsonl"), Array.from({ length: steps }, (_, i) => line(i + 1)).join("\n") + "\n");
  if (o.summary) writeFileSync(join(dir, "summary.json"), "{}\n");
  if (o.mtime) utimesSync(join(dir, "metrics.jsonl"), o.mtime, o.mtime);
}
cliRun("addition-20260101-000000-cafe", 16, { summary: true });
cliRun("addition-20000101-000000-dead", 8, { mtime: new Date("2000-01-01T00:00:00Z") }); // no step for years: stopped

const { jobs, base } = await serveTestApp(runDir);

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
    // The page shows the submitted job once the POST is answered; until then it may show one of the
    // finished CLI runs, whose charts are already full.
    await page.waitForFunction(() => /^digit_reversal-/.test(document.querySelector("#job-title")?.textContent ?? ""), null, { timeout: 30_000 });

    // The chart fills as steps stream in.
    // (Waited for together: the page redraws a chart whole on every step, so the two are read at once.)
    await page.waitForFunction(() => Number(document.querySelector("#reward-chart")?.getAttribute("data-points")) >= 8 &&
      document.querySelectorAll('#reward-chart polyline[data-series="critic/score/mean"]').length === 1, null, { timeout: 30_000 });
    // Entropy and KL charts, with data, and step ticks on the x axis.
    await page.waitForFunction(() => Number(document.querySelector("#entropy-chart")?.getAttribute("data-points")) >= 8 &&
      Number(document.querySelector("#kl-chart")?.getAttribute("data-points")) >= 8 &&
      document.querySelectorAll('#entropy-chart polyline[data-series="actor/entropy"]').length === 1 &&
      document.querySelectorAll('#kl-chart polyline[data-series="actor/ppo_kl"]').length === 1, null, { timeout: 30_000 });
    expect(await page.locator("#loss-chart").count()).toBe(0);
    expect(await page.locator("#entropy-chart .x-tick-label").allTextContents()).toEqual(["0", "20", "40", "60", "80", "100", "120"]);

    // The full job id, in the title and the list.
    const id = (await page.textContent("#job-title"))!;
    expect(id).toMatch(/^digit_reversal-\d{8}-\d{6}-[0-9a-f]{8}$/);
    expect(await page.textContent(`#jobs-body tr[data-job="${id}"] td.id`)).toBe(id);

    // Hovering a chart shows the step and the value there.
    const box = (await page.locator("#entropy-chart").boundingBox())!;
    await page.mouse.move(box.x + box.width * 0.3, box.y + box.height / 2);
    await page.waitForSelector("#entropy-chart-tip:not([hidden])");
    expect(await page.textContent("#entropy-chart-tip")).toMatch(/^step \d+\nactor\/entropy -?\d/);
    expect(await page.locator("#entropy-chart .hover circle").count()).toBe(1);
    await page.mouse.move(0, 0);
    await page.waitForSelector("#entropy-chart-tip", { state: "hidden" });

    // The latest val/score, in the job's summary and its row (val_interval 10: the first at step 10).
    await page.waitForFunction(() => Number(document.querySelector("#val-chart")?.getAttribute("data-points")) >= 1, null, { timeout: 30_000 });
    expect(await page.textContent("#job-facts")).toMatch(/val score \d\.\d{3} \(step \d+\)/);
    expect(await page.textContent(`#jobs-body tr[data-job="${id}"] td.val`)).toMatch(/^\d\.\d{3}$/);

    // The CLI runs in the same run dir: listed, read-only, with a status from their files.
    const done = page.locator('#jobs-body tr[data-job="addition-20260101-000000-cafe"][data-external="true"]');
    expect(await done.locator("td.status").textContent()).toBe("succeededcli");
    expect(await done.locator("td.val").textContent()).toBe("1.000");
    expect(await page.locator('#jobs-body tr[data-job="addition-20000101-000000-dead"] td.status').textContent()).toBe("stoppedcli");
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
    expect(Number(await page.getAttribute("#val-chart", "data-points"))).toBeGreaterThanOrEqual(12);
    // The job is over: its actors read "stopped" (not alive, not failed), with no health and no kill button.
    await page.waitForFunction(() => document.querySelector('#actors-body tr[data-actor="critic"] td.state')?.textContent === "stopped", null, { timeout: 10_000 });
    expect(await page.locator("#actors-body td.state").allTextContents()).toEqual(["stopped", "stopped", "stopped"]);
    expect(await page.locator("#actors-body td.health").allTextContents()).toEqual(["-", "-", "-"]);
    expect(await page.locator("#actors-body button").count()).toBe(0);
    // A chart point under the pointer, for the screenshot.
    const kl = (await page.locator("#kl-chart").boundingBox())!;
    await page.mouse.move(kl.x + kl.width * 0.55, kl.y + kl.height / 2);
    await page.waitForSelector("#kl-chart-tip:not([hidden])");
    mkdirSync(dirname(screenshot), { recursive: true });
    await page.screenshot({ path: screenshot, fullPage: true });
    expect(statSync(screenshot).size).toBeGreaterThan(10_000);

    // Selecting a CLI run draws its history; it has no actors or controls here.
    await done.click();
    await page.waitForFunction(() => Number(document.querySelector("#reward-chart")?.getAttribute("data-points")) === 16, null, { timeout: 10_000 });
    expect(await page.textContent("#job-title")).toBe("addition-20260101-000000-cafe");
    expect(Number(await page.getAttribute("#val-chart", "data-points"))).toBe(4);
    expect(Number(await page.getAttribute("#kl-chart", "data-points"))).toBe(16);
    expect(await page.textContent("#job-status")).toContain("read-only");
    expect(await page.locator("#actors-body tr").count()).toBe(0);
    expect(await page.isHidden("#cancel")).toBe(true);
    expect(pageErrors).toEqual([]);
  } finally {
    await context.close();
  }
}, 120_000);
