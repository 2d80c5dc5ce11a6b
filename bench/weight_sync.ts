/**
 * Weight broadcast in training: the time `publish` takes to push the policy to every rollout
 * rank after an update (`timing_s/weight_sync`), through the shared segment and over the
 * sockets, for N = 1, 2, 4 ranks, measured in real jobs side by side (runs interleaved).
 * The policy is a 4-layer, width-256 model (about 3.2 M parameters, 12 MiB).
 *
 * Run: bun bench/weight_sync.ts [--steps 12] [--rounds 2]   (BENCH_QUICK=1: one round of 6 steps)
 */
import { mkdtempSync, rmSync } from "node:fs";
import { availableParallelism, loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { resolveConfig } from "../config/index.ts";
import { runtime } from "../runtime/core/adapter/index.ts";
import { createJob, MetricsFile } from "../runtime/rl/trainer/job.ts";
import { fit } from "../runtime/rl/trainer/trainer.ts";
import { checkTaskJobConfig } from "../runtime/rl/trainer/plan.ts";
import { PolicyModel } from "../native/policy_model.ts";

const quick = process.env.BENCH_QUICK === "1";
const { values } = parseArgs({ options: { steps: { type: "string", default: quick ? "6" : "12" }, rounds: { type: "string", default: quick ? "1" : "2" } } });
const steps = Number(values.steps);
const rounds = Number(values.rounds);
const runDir = mkdtempSync(join(tmpdir(), "revenant-bench-weight-sync-"));

type Transfer = "shared_memory" | "socket";

function config(ranks: number, transfer: Transfer) {
  return resolveConfig({
    file: null, env: {},
    args: [
      `trainer.run_dir=${runDir}`, `trainer.total_steps=${steps}`, "trainer.val_interval=0", `checkpoint.interval=${steps}`,
      "data.train_size=256", "data.val_size=16", "data.train_batch_size=8", "worker.actor.ppo_mini_batch_size=8",
      "algorithm.adv_estimator=grpo", "worker.actor.rollout_n=2", "algorithm.kl_coef=0",
      "worker.actor.model.width=256", "worker.actor.model.layers=4", "worker.actor.model.heads=4",
      `worker.rollout.ranks=${ranks}`, `worker.rollout.weight_transfer=${transfer}`,
    ],
  }).config;
}

/** Every step's weight_sync seconds of one job. */
async function syncTimes(ranks: number, transfer: Transfer, round: number): Promise<number[]> {
  const cfg = config(ranks, transfer);
  const job = createJob(cfg, `n${ranks}-${transfer}-${round}`);
  await fit({ config: cfg, job, output: () => {}, onNote: () => {} });
  return new MetricsFile(job.metrics).read().map((r) => r["timing_s/weight_sync"]!);
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? NaN;

const results = new Map<string, number[]>();
for (let r = 0; r < rounds; r++) {
  for (const ranks of [1, 2, 4]) {
    for (const transfer of ["shared_memory", "socket"] as const) {
      const times = await syncTimes(ranks, transfer, r);
      // The first push of each job maps the segment and faults its pages in: reported apart.
      const key = `${ranks}/${transfer}`;
      results.set(key, [...(results.get(key) ?? []), ...times.slice(1)]);
    }
  }
}
rmSync(runDir, { recursive: true, force: true });

const bytes = 4 * paramCount();
console.log(`Weight broadcast in training: ${runtime.name} ${runtime.version}, ${availableParallelism()} cores, load ${loadavg()[0]!.toFixed(1)}; ` +
  `${(bytes / 2 ** 20).toFixed(1)} MiB of weights, ${rounds} round(s) of ${steps} steps, median of the pushes after each job's first`);
console.log("| ranks | shared segment, ms | sockets, ms | speed-up (socket ÷ segment) | segment: GB/s delivered (N × bytes ÷ time) |");
console.log("|---:|---:|---:|---:|---:|");
for (const ranks of [1, 2, 4]) {
  const shm = median(results.get(`${ranks}/shared_memory`)!) * 1000;
  const sock = median(results.get(`${ranks}/socket`)!) * 1000;
  console.log(`| ${ranks} | ${shm.toFixed(2)} | ${sock.toFixed(2)} | ${(sock / shm).toFixed(2)}× | ${((ranks * bytes) / (shm / 1000) / 1e9).toFixed(2)} |`);
}

/** The policy's parameter count, from the same config the jobs ran. */
function paramCount(): number {
  const model = new PolicyModel({ ...checkTaskJobConfig(config(1, "socket")).roleOptions("actor").model, valueHead: false }, { device: "cpu" });
  const n = model.numParams;
  void model.dispose();
  return n;
}
