/**
 * Coordinator memory over many jobs: a fresh JobManager and app served in this process; RSS
 * after a full garbage collection when fresh, after a few warm-up jobs, and after `--jobs` more
 * of the smallest job the schema allows (one step, one actor process, a 1-layer width-8 model,
 * three 1-digit prompts), submitted over HTTP, `--concurrency` at a time. A finished job keeps
 * only plain data and at most --keep-finished-jobs stay in memory, so the RSS after should stay
 * within the target of the fresh one.
 *
 * Run: bun bench/server_memory.ts [--jobs 1000] [--concurrency 2] [--warmup 20]
 *      deno run -A --v8-flags=--expose-gc bench/server_memory.ts [...]
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { runtime } from "../runtime/core/adapter/index.ts";
import { createApp } from "../runtime/service/server/app.ts";
import { JobManager, type ManagedJob } from "../runtime/service/server/job_manager.ts";

const { values } = parseArgs({
  options: { jobs: { type: "string", default: "1000" }, concurrency: { type: "string", default: "2" }, warmup: { type: "string", default: "20" } },
});
const JOBS = Number(values.jobs);
const CONCURRENCY = Number(values.concurrency);
const WARMUP = Number(values.warmup);
const TARGET_MB = 50;

/** The smallest job: GRPO without a reference (one actor), one step, tiny model and data. */
const TINY = {
  trainer: { total_steps: 1, val_interval: 0, logger: ["jsonl"], seed: 1 },
  algorithm: { adv_estimator: "grpo", kl_coef: 0 },
  data: { task: "digit_reversal", train_size: 2, val_size: 1, min_digits: 1, max_digits: 1, train_batch_size: 1 },
  worker: {
    actor: { max_new_tokens: 2, rollout_n: 2, ppo_mini_batch_size: 2, model: { context: 8, width: 8, heads: 1, layers: 1 } },
    critic: { ppo_mini_batch_size: 2, model: { context: 8, width: 8, heads: 1, layers: 1 } },
  },
  checkpoint: { interval: 1, keep: 1 },
};

const runDir = mkdtempSync(join(tmpdir(), "revenant-bench-memory-"));
const jobs = new JobManager({ runDir, maxConcurrentJobs: CONCURRENCY, log: () => {}, actorOutput: () => {} }).start();
const server = await runtime.serve({ fetch: createApp({ jobs }).fetch, port: 0 });
const base = `http://127.0.0.1:${server.port}`;

/** RSS in MB after a full collection (Bun.gc, or V8's memory-reducing gc under --expose-gc). */
function rssAfterGc(): number {
  const g = globalThis as { Bun?: { gc(force: boolean): void }; gc?: (o?: object) => void };
  if (g.Bun) g.Bun.gc(true);
  else if (g.gc) g.gc({ type: "major", execution: "sync", flavor: "last-resort" });
  else console.warn("no forced GC available (Deno: --v8-flags=--expose-gc); RSS measured as is");
  return process.memoryUsage().rss / 2 ** 20;
}

/** Submits one job over HTTP; resolves with its final status (and error) when its `end` event comes. */
async function runOne(): Promise<{ status: string; error: string | null }> {
  const res = await fetch(`${base}/jobs`, { method: "POST", body: JSON.stringify(TINY), headers: { "Content-Type": "application/json" } });
  if (res.status !== 202) throw new Error(`POST /jobs: ${res.status} ${await res.text()}`);
  const job: ManagedJob = jobs.get(((await res.json()) as { id: string }).id);
  return await new Promise((resolve) => {
    if (["succeeded", "failed", "cancelled"].includes(job.record.status)) return resolve({ status: job.record.status, error: job.record.error });
    jobs.subscribe(job, (e) => void (e.type === "end" && resolve({ status: e.job.status, error: e.job.error })));
  });
}

/** Runs `n` jobs, `CONCURRENCY` in flight; counts their outcomes (and prints why any failed). */
async function runMany(n: number): Promise<Record<string, number>> {
  const outcomes: Record<string, number> = {};
  let next = 0;
  await Promise.all(Array.from({ length: CONCURRENCY }, async () => {
    while (next++ < n) {
      const { status, error } = await runOne();
      outcomes[status] = (outcomes[status] ?? 0) + 1;
      if (error) console.error(`a job ${status}: ${error.split("\n")[0]}`);
    }
  }));
  return outcomes;
}

// Let startup settle (module loading, the first GC) before the fresh figure.
await new Promise((r) => setTimeout(r, 200));
const fresh = rssAfterGc();
await runMany(WARMUP);
const warm = rssAfterGc();
const t0 = performance.now();
const outcomes = await runMany(JOBS);
const wallS = (performance.now() - t0) / 1000;
const after = rssAfterGc();
const { heapUsed, heapTotal, external } = process.memoryUsage();

await jobs.close();
await server.stop();
const inMemory = jobs.size;
rmSync(runDir, { recursive: true, force: true });

const mb = (x: number) => x.toFixed(1);
console.log(`\nRevenant coordinator memory on ${runtime.name} ${runtime.version}: ${JOBS} jobs (+${WARMUP} warm-up), ${CONCURRENCY} at a time, ` +
  `${wallS.toFixed(0)} s (${((wallS * 1000) / JOBS).toFixed(0)} ms/job); outcomes ${JSON.stringify(outcomes)}; ${inMemory} jobs left in memory\n`);
console.log("| RSS after GC | MB |");
console.log("| --- | ---: |");
console.log(`| fresh (no job yet) | ${mb(fresh)} |`);
console.log(`| after ${WARMUP} warm-up jobs | ${mb(warm)} |`);
console.log(`| after ${JOBS} more jobs | ${mb(after)} |`);
console.log(`| delta, after − fresh | ${mb(after - fresh)} |`);
console.log(`| delta, after − warm | ${mb(after - warm)} |`);
console.log(`| target | ≤ ${TARGET_MB} |`);
console.log(`\nAt the end: JS heap ${mb(heapUsed / 2 ** 20)} MB used of ${mb(heapTotal / 2 ** 20)} MB, external ${mb(external / 2 ** 20)} MB. ` +
  `${after - fresh <= TARGET_MB ? "Within" : "OVER"} the target.`);
process.exit(after - fresh <= TARGET_MB ? 0 : 1);
