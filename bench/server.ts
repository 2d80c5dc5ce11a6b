/**
 * Coordinator service benchmark, over real HTTP on this runtime (Bun or Deno):
 *
 *   1. job submission throughput: POST /jobs with `--concurrency` clients while one job trains
 *      (each accepted job is durably written — folder, config.json, fsynced job.json — before
 *      the 202), then the cancel throughput of the queued ones (DELETE /jobs/:id);
 *   2. /metrics scrape latency, idle and while a job trains (scraped back to back for 30 of its
 *      steps), and the training step time with and without that scraper (does scraping slow
 *      training?).
 *
 * Run: bun bench/server.ts [--submissions 400] [--concurrency 16] [--scrapes 300]
 *      deno run -A bench/server.ts [...]
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { runtime } from "../runtime/core/adapter/index.ts";
import { createApp } from "../runtime/service/server/app.ts";
import { JobManager } from "../runtime/service/server/job_manager.ts";

const { values } = parseArgs({
  options: { submissions: { type: "string", default: "400" }, concurrency: { type: "string", default: "16" }, scrapes: { type: "string", default: "300" } },
});
const SUBMISSIONS = Number(values.submissions);
const CONCURRENCY = Number(values.concurrency);
const SCRAPES = Number(values.scrapes);
const JSON_TYPE = { "Content-Type": "application/json" };

// Room for every submission in the queue and every cancelled one in memory (the defaults are 100 each).
const runDir = mkdtempSync(join(tmpdir(), "revenant-bench-server-"));
const jobs = new JobManager({
  runDir, maxQueuedJobs: SUBMISSIONS, keepFinishedJobs: SUBMISSIONS + 1, log: () => {}, actorOutput: () => {},
}).start();
const server = await runtime.serve({ fetch: createApp({ jobs }).fetch, port: 0 });
const base = `http://127.0.0.1:${server.port}`;

/** A training job of the default size (about 0.1 s per step on two cores). */
const trainingJob = (steps: number) => ({ trainer: { total_steps: steps, val_interval: 0 }, checkpoint: { interval: 50 } });
const quantile = (xs: number[], q: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(q * xs.length))] ?? NaN;
const ms = (x: number) => x.toFixed(2);

async function submit(body: unknown): Promise<string> {
  const res = await fetch(`${base}/jobs`, { method: "POST", body: JSON.stringify(body), headers: JSON_TYPE });
  if (res.status !== 202) throw new Error(`POST /jobs: ${res.status} ${await res.text()}`);
  return ((await res.json()) as { id: string }).id;
}

/** Runs `n` requests with `concurrency` clients; returns per-request latencies (ms) and the wall time (s). */
async function load(n: number, concurrency: number, one: (i: number) => Promise<void>): Promise<{ lat: number[]; wallS: number }> {
  const lat: number[] = [];
  let next = 0;
  const t0 = performance.now();
  await Promise.all(Array.from({ length: concurrency }, async () => {
    for (let i = next++; i < n; i = next++) {
      const t = performance.now();
      await one(i);
      lat.push(performance.now() - t);
    }
  }));
  return { lat, wallS: (performance.now() - t0) / 1000 };
}

/** Scrapes /metrics back to back, `n` times or, with `more`, for as long as it says. */
async function scrape(n: number, more?: () => boolean): Promise<{ lat: number[]; bytes: number }> {
  const lat: number[] = [];
  let bytes = 0;
  for (let i = 0; more ? more() : i < n; i++) {
    const t = performance.now();
    const res = await fetch(`${base}/metrics`);
    bytes = (await res.text()).length;
    lat.push(performance.now() - t);
  }
  return { lat, bytes };
}

const waitStep = async (id: string, step: number) => {
  while (jobs.get(id).step < step) await new Promise((r) => setTimeout(r, 20));
};
const stepTimes = (id: string, from: number, to: number) =>
  jobs.history(jobs.get(id), from).filter((m) => m.step! <= to).map((m) => m["timing_s/step"]! * 1000);

const rows: string[][] = [];
const row = (what: string, n: number, p50: number, p99: number, extra: string) => rows.push([what, String(n), ms(p50), ms(p99), extra]);

// /metrics idle (no job has run yet), after a warm-up.
await scrape(50);
const idle = await scrape(Math.min(SCRAPES, 100));
row("GET /metrics, idle", idle.lat.length, quantile(idle.lat, 0.5), quantile(idle.lat, 0.99), `${idle.bytes} bytes`);

// One job trains; measure its step time undisturbed, then while /metrics is scraped back to back.
const trainer = await submit(trainingJob(1000));
await waitStep(trainer, 20);
const quietFrom = jobs.get(trainer).step;
await waitStep(trainer, quietFrom + 30);
const quietSteps = stepTimes(trainer, quietFrom, quietFrom + 30);
const busyFrom = jobs.get(trainer).step;
const busy = await scrape(0, () => jobs.get(trainer).step < busyFrom + 30);
const busyTo = jobs.get(trainer).step;
const busySteps = stepTimes(trainer, busyFrom, busyTo);
row("GET /metrics, back to back while a job trains", busy.lat.length, quantile(busy.lat, 0.5), quantile(busy.lat, 0.99), `${busy.bytes} bytes`);

// Submissions while it trains: each is queued behind it.
const ids: string[] = [];
const sub = await load(SUBMISSIONS, CONCURRENCY, async () => void ids.push(await submit(trainingJob(10))));
row(`POST /jobs (${CONCURRENCY} clients), while a job trains`, SUBMISSIONS, quantile(sub.lat, 0.5), quantile(sub.lat, 0.99), `${(SUBMISSIONS / sub.wallS).toFixed(0)} jobs/s`);
const can = await load(ids.length, CONCURRENCY, async (i) => {
  const res = await fetch(`${base}/jobs/${ids[i]}`, { method: "DELETE" });
  if (res.status !== 202) throw new Error(`DELETE: ${res.status}`);
  await res.arrayBuffer();
});
row(`DELETE /jobs/:id (queued, ${CONCURRENCY} clients)`, ids.length, quantile(can.lat, 0.5), quantile(can.lat, 0.99), `${(ids.length / can.wallS).toFixed(0)} jobs/s`);
const after = await scrape(Math.min(SCRAPES, 100));
row(`GET /metrics, ${jobs.size} jobs known`, after.lat.length, quantile(after.lat, 0.5), quantile(after.lat, 0.99), `${after.bytes} bytes`);

await jobs.close();
await server.stop();
rmSync(runDir, { recursive: true, force: true });

console.log(`\nRevenant coordinator service on ${runtime.name} ${runtime.version} (latencies in ms)\n`);
console.log("| what | requests | p50 | p99 | |");
console.log("| --- | ---: | ---: | ---: | --- |");
for (const r of rows) console.log(`| ${r.join(" | ")} |`);
console.log(`\ntraining step time: median ${ms(quantile(quietSteps, 0.5))} ms undisturbed (${quietSteps.length} steps), ` +
  `${ms(quantile(busySteps, 0.5))} ms while /metrics was scraped back to back (${busySteps.length} steps)`);
process.exit(0);
