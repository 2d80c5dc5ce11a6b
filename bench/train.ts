/**
 * Training benchmark: the cost of fault tolerance and of recovering from faults, side by side
 * in one run (runs interleaved A B C A B C ..., medians reported).
 *
 *   A  fault tolerance on, no faults
 *   B  fault tolerance off (enable_fault_tolerance: false), no faults
 *   C  fault tolerance on, one SIGKILL every 20 steps (rotating over the roles)
 *
 * Targets: step time A/B ≤ 1.03; wall time C/A ≤ 1.10. Also: checkpoint save time.
 * Run: bun bench/train.ts [--steps 60] [--rounds 3]
 */
import { mkdtempSync } from "node:fs";
import { availableParallelism, loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { resolveConfig } from "../config/index.ts";
import { runtime } from "../runtime/core/adapter/index.ts";
import { killActor } from "../runtime/core/chaos.ts";
import { createJob, MetricsFile } from "../runtime/rl/trainer/job.ts";
import { fit } from "../runtime/rl/trainer/trainer.ts";
import type { Supervisor } from "../runtime/core/supervisor/supervisor.ts";

const { values } = parseArgs({ options: { steps: { type: "string", default: "60" }, rounds: { type: "string", default: "3" } } });
const steps = Number(values.steps);
const rounds = Number(values.rounds);
const runDir = mkdtempSync(join(tmpdir(), "revenant-bench-train-"));

function config(ft: boolean) {
  return resolveConfig({
    file: null, env: {},
    args: [
      `trainer.run_dir=${runDir}`, `trainer.total_steps=${steps}`, "trainer.val_interval=0", "checkpoint.interval=10",
      "algorithm.kl_coef=0.001", `fault_tolerance.enable_fault_tolerance=${ft}`, "fault_tolerance.max_restarts=-1",
      "fault_tolerance.max_task_retries=-1", "fault_tolerance.health_check_interval=10",
    ],
  }).config;
}

interface Run { wallS: number; stepS: number; saveS: number; faults: number }

async function one(kind: "A" | "B" | "C", i: number): Promise<Run> {
  const cfg = config(kind !== "B");
  const job = createJob(cfg, `${kind}${i}`);
  let sup: Supervisor | undefined;
  const roles = ["actor_rollout", "critic", "ref_policy"];
  let faults = 0;
  const t = performance.now();
  await fit({
    config: cfg, job, output: () => {}, onNote: () => {},
    onSupervisor: (s) => (sup = s),
    onStep: (step) => {
      if (kind === "C" && step % 20 === 0 && sup) {
        killActor(sup.actor(roles[faults % roles.length]!));
        faults++;
      }
    },
  });
  const wallS = (performance.now() - t) / 1000;
  const rows = new MetricsFile(job.metrics).read();
  const median = (xs: number[]) => xs.sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? NaN;
  return {
    wallS,
    stepS: median(rows.slice(1).map((r) => r["timing_s/step"]!)),
    saveS: median(rows.filter((r) => r["timing_s/save_checkpoint"] !== undefined).map((r) => r["timing_s/save_checkpoint"]!)),
    faults,
  };
}

// Step times on a shared machine follow what else runs there: the load is printed beside them.
const loadBefore = loadavg()[0]!;
const results: Record<"A" | "B" | "C", Run[]> = { A: [], B: [], C: [] };
for (let i = 0; i < rounds; i++) {
  for (const kind of ["A", "B", "C"] as const) results[kind].push(await one(kind, i));
}
const med = (runs: Run[], k: keyof Run) => runs.map((r) => r[k]).sort((a, b) => a - b)[Math.floor(runs.length / 2)]!;

console.log(`\nRevenant training benchmark: ${runtime.name} ${runtime.version}, ${steps} steps × ${rounds} rounds, default model, CPU`);
console.log(`machine: ${availableParallelism()} cores, load average ${loadBefore.toFixed(2)} at start, ${loadavg()[0]!.toFixed(2)} at end; ` +
  `model actors' threads: ${process.env.REVENANT_NUM_THREADS ? `REVENANT_NUM_THREADS=${process.env.REVENANT_NUM_THREADS}` : "the trainer's share"}\n`);
console.log("| measure | value | target |");
console.log("|---|---:|---|");
console.log(`| step time, fault tolerance on (A), median ms | ${(med(results.A, "stepS") * 1000).toFixed(1)} | |`);
console.log(`| step time, fault tolerance off (B), median ms | ${(med(results.B, "stepS") * 1000).toFixed(1)} | |`);
console.log(`| overhead A / B | ${(med(results.A, "stepS") / med(results.B, "stepS")).toFixed(3)}× | ≤ 1.03× |`);
console.log(`| wall time, no faults (A), median s | ${med(results.A, "wallS").toFixed(2)} | |`);
console.log(`| wall time, a SIGKILL every 20 steps (C, ${results.C[0]!.faults} faults), median s | ${med(results.C, "wallS").toFixed(2)} | |`);
console.log(`| slowdown C / A | ${(med(results.C, "wallS") / med(results.A, "wallS")).toFixed(3)}× | ≤ 1.10× |`);
console.log(`| checkpoint save (2 actors' weights and Adam state), median ms | ${(med(results.A, "saveS") * 1000).toFixed(1)} | |`);
