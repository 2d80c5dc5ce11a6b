/**
 * /healthz latency while the worst job body the schema allows (bench/worst_job_body.ts
 * WORST_BODY: the largest data set of 64-digit additions) is POSTed back to back, over real
 * HTTP on this runtime. A job holds the only training slot, so the submitted jobs queue and
 * only their checks run. Also: what the check used to cost on the event loop (the trainer's
 * `checkJobConfig`, which generates the data set), and /healthz while such a job *starts*
 * (the trainer still generates its data set on the coordinator's thread then).
 *
 * The same load with the smallest body ({}) shows what every POST costs regardless of the
 * sizes it asks for: parsing, the check, and the job's folder and fsynced record.
 *
 * Run: bun bench/server_healthz.ts [--posts 200] [--clients 4] [--probes 300]
 *      deno run -A bench/server_healthz.ts [...]
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { resolveConfig } from "../config/index.ts";
import { runtime } from "../runtime/core/adapter/index.ts";
import { createApp } from "../runtime/service/server/app.ts";
import { checkJobFits } from "../runtime/service/server/job_check.ts";
import { JobManager } from "../runtime/service/server/job_manager.ts";
import { checkTaskJobConfig } from "../runtime/rl/trainer/trainer.ts";
import { WORST_BODY } from "./worst_job_body.ts";

const { values } = parseArgs({
  options: { posts: { type: "string", default: "200" }, clients: { type: "string", default: "4" }, probes: { type: "string", default: "300" } },
});
const POSTS = Number(values.posts);
const CLIENTS = Number(values.clients);
const PROBES = Number(values.probes);
const JSON_TYPE = { "Content-Type": "application/json" };

const runDir = mkdtempSync(join(tmpdir(), "revenant-bench-healthz-"));
const jobs = new JobManager({ runDir, maxQueuedJobs: POSTS + 1, log: () => {}, actorOutput: () => {} }).start();
const server = await runtime.serve({ fetch: createApp({ jobs }).fetch, port: 0 });
const base = `http://127.0.0.1:${server.port}`;

const quantile = (xs: number[], q: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(q * xs.length))] ?? NaN;
const ms = (x: number) => x.toFixed(2);
const rows: string[][] = [];
const row = (what: string, lat: number[]) => rows.push([what, String(lat.length), ms(quantile(lat, 0.5)), ms(quantile(lat, 0.99)), ms(Math.max(...lat))]);

async function timed(f: () => Promise<Response>): Promise<number> {
  const t = performance.now();
  const res = await f();
  await res.arrayBuffer();
  if (!res.ok) throw new Error(`HTTP ${res.status}`);
  return performance.now() - t;
}
const healthz = () => timed(() => fetch(`${base}/healthz`));

/** /healthz back to back while `busy()` says so (at least once). */
async function probeWhile(busy: () => boolean): Promise<number[]> {
  const lat: number[] = [];
  do lat.push(await healthz());
  while (busy());
  return lat;
}

const worstConfig = resolveConfig({ file: null, env: {}, values: { ...WORST_BODY, trainer: { run_dir: runDir } } as never }).config;
const checkMs = (check: () => void) => {
  const lat: number[] = [];
  for (let i = 0; i < 3; i++) {
    const t = performance.now();
    check();
    lat.push(performance.now() - t);
  }
  return quantile(lat, 0.5);
};
const oldCheckMs = checkMs(() => checkTaskJobConfig(worstConfig));
const newCheckMs = checkMs(() => checkJobFits(worstConfig));

// Idle baseline, after a warm-up.
for (let i = 0; i < 50; i++) await healthz();
const idle: number[] = [];
for (let i = 0; i < PROBES; i++) idle.push(await healthz());
row("GET /healthz, idle", idle);

/** POSTs `body` POSTS times from CLIENTS clients while /healthz is probed back to back; both latencies become rows. */
async function postLoad(label: string, body: unknown): Promise<void> {
  let posting = true;
  const postLat: number[] = [];
  let sent = 0;
  const posters = Promise.all(Array.from({ length: CLIENTS }, async () => {
    while (sent++ < POSTS) postLat.push(await timed(() => fetch(`${base}/jobs`, { method: "POST", body: JSON.stringify(body), headers: JSON_TYPE })));
  })).then(() => void (posting = false));
  const during = await probeWhile(() => posting);
  await posters;
  row(`POST /jobs, ${label}, ${CLIENTS} clients`, postLat);
  row(`GET /healthz meanwhile`, during);
}

// A long job holds the slot; the submitted jobs are checked, stored and queued, never run.
const blocker = await jobs.submit({ trainer: { total_steps: 100_000, val_interval: 0 }, checkpoint: { interval: 100_000 } });
await postLoad("smallest body ({})", {});
for (const j of jobs.list()) if (j.record.status === "queued") jobs.cancel(j);
await postLoad("worst body", WORST_BODY);

// One worst job starts: the trainer generates its data set on the coordinator's thread.
const queued = jobs.list().filter((j) => j.record.status === "queued");
for (const j of queued.slice(1)) jobs.cancel(j);
const starting = queued[0]!;
const t0 = performance.now();
jobs.cancel(blocker);
// The supervisor exists once the data set is made (fit generates it first).
const duringStart = await probeWhile(() => starting.supervisor === undefined && performance.now() - t0 < 30_000);
row("GET /healthz while a worst job starts (until its data set is made)", duringStart);
jobs.cancel(starting);

await jobs.close();
await server.stop();
rmSync(runDir, { recursive: true, force: true });

console.log(`\nRevenant coordinator /healthz under the worst POST on ${runtime.name} ${runtime.version} (ms)\n`);
console.log("| what | requests | p50 | p99 | max |");
console.log("| --- | ---: | ---: | ---: | ---: |");
for (const r of rows) console.log(`| ${r.join(" | ")} |`);
console.log(`\nThe fit check of the worst body: ${ms(newCheckMs)} ms now (job_check.ts, arithmetic); ` +
  `${ms(oldCheckMs)} ms when POST /jobs ran the trainer's checkJobConfig (it generates the data set), all of it on the event loop.`);
process.exit(0);
