/**
 * Training benchmark: the cost of fault tolerance and of recovering from faults, side by side
 * in one run (runs interleaved A B C A B C ..., medians reported).
 *
 *   A  fault tolerance on, no faults
 *   B  fault tolerance off (enable_fault_tolerance: false), no faults
 *   C  fault tolerance on, one SIGKILL every 20 steps (rotating over the roles)
 *
 * Targets: step time A/B ≤ 1.03; wall time C/A ≤ 1.10. Also: the checkpoint steps' wait (timing_s/save_checkpoint; the write runs behind the next step).
 *
 * Also, from the A runs: the split of step wall time into native compute and everything outside
 * it (coordinator, IPC, serialisation, waiting). Each model actor records when its native calls
 * ran (roles/compute_clock.ts). A step's window runs from the moment the bench's onStep returned
 * for the step before to the moment onStep is called for this one, so the windows tile the
 * training loop: everything the trainer does per step (metrics, logging, health probes,
 * checkpoints) is inside one, and nothing the bench does is. The bench takes the actors' intervals
 * once, after the last step (taking them between steps would add calls to the actors' queues),
 * merges them over all actors (calls that overlap count once) and clips them to each window.
 * Outside = window − that union; target ≤ 5% of step wall time. Per phase, the trainer's phase
 * time is printed beside the native seconds of the calls made in it.
 *
 * Run: bun bench/train.ts [--steps 60] [--rounds 3] [--split-only]
 *   --split-only: A runs alone (no B, C), for the split.
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
import type { ComputeInterval } from "../roles/compute_clock.ts";

const { values } = parseArgs({
  options: { steps: { type: "string", default: "60" }, rounds: { type: "string", default: "3" }, "split-only": { type: "boolean", default: false } },
});
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

interface Run { wallS: number; stepS: number; saveS: number; faults: number; split: StepSplit[] }

/** One step's window split: wall seconds, native seconds (union over actors), native seconds per method (summed). */
interface StepSplit { wallS: number; nativeS: number; byMethod: Record<string, number>; phases: Record<string, number> }

/** One step's window in epoch milliseconds (see the header), with the trainer's phase times. */
interface StepWindow { start: number; end: number; phases: Record<string, number> }

/** Seconds of the union of `intervals` (epoch ms) inside [from, to]. */
function unionSeconds(intervals: ComputeInterval[], from: number, to: number): number {
  const clipped = intervals.map((i) => [Math.max(i.start, from), Math.min(i.end, to)] as const).filter(([a, b]) => b > a).sort((x, y) => x[0] - y[0]);
  let total = 0, curA = -Infinity, curB = -Infinity;
  for (const [a, b] of clipped) {
    if (a > curB) {
      if (curB > curA) total += curB - curA;
      curA = a;
      curB = b;
    } else curB = Math.max(curB, b);
  }
  if (curB > curA) total += curB - curA;
  return total / 1000;
}

/** The native intervals every model actor recorded since the last take (actors without a clock give none). */
async function takeComputeLogs(sup: Supervisor): Promise<ComputeInterval[]> {
  const logs = await Promise.all(
    sup.actors().filter((a) => a.role !== "reward").map((a) => a.call<ComputeInterval[]>("computeLog").catch(() => [] as ComputeInterval[])),
  );
  return logs.flat();
}

/** Epoch milliseconds, comparable with the actors' intervals. */
const epochMs = () => performance.timeOrigin + performance.now();

/** Each window's split, from the intervals every actor logged over the whole run. */
function splitWindows(windows: StepWindow[], log: ComputeInterval[]): StepSplit[] {
  return windows.map(({ start, end, phases }) => {
    const byMethod: Record<string, number> = {};
    for (const i of log) {
      const s = unionSeconds([i], start, end);
      if (s > 0) byMethod[i.method] = (byMethod[i.method] ?? 0) + s;
    }
    return { wallS: (end - start) / 1000, nativeS: unionSeconds(log, start, end), byMethod, phases };
  });
}

async function one(kind: "A" | "B" | "C", i: number): Promise<Run> {
  const cfg = config(kind !== "B");
  const job = createJob(cfg, `${kind}${i}`);
  let sup: Supervisor | undefined;
  const roles = ["actor_rollout", "critic", "ref_policy"];
  let faults = 0;
  const windows: StepWindow[] = [];
  let log: ComputeInterval[] = [];
  let windowStart = 0;
  const t = performance.now();
  await fit({
    config: cfg, job, output: () => {}, onNote: () => {},
    onSupervisor: (s) => (sup = s),
    onStep: async (step, m) => {
      // Step 1 warms up; each later window ends here and the next starts when onStep returns.
      if (kind === "A") {
        const phases = Object.fromEntries(Object.entries(m).filter(([k]) => k.startsWith("timing_s/") && k !== "timing_s/step"));
        if (step > 1) windows.push({ start: windowStart, end: epochMs(), phases });
        if (step === steps && sup) log = await takeComputeLogs(sup);
      }
      if (kind === "C" && step % 20 === 0 && sup) {
        killActor(sup.actor(roles[faults % roles.length]!));
        faults++;
      }
      windowStart = epochMs();
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
    split: splitWindows(windows, log),
  };
}

// Step times on a shared machine follow what else runs there: the load is printed beside them.
const loadBefore = loadavg()[0]!;
const results: Record<"A" | "B" | "C", Run[]> = { A: [], B: [], C: [] };
const kinds = values["split-only"] ? (["A"] as const) : (["A", "B", "C"] as const);
for (let i = 0; i < rounds; i++) {
  for (const kind of kinds) results[kind].push(await one(kind, i));
}
const med = (runs: Run[], k: "wallS" | "stepS" | "saveS") => runs.map((r) => r[k]).sort((a, b) => a - b)[Math.floor(runs.length / 2)]!;

console.log(`\nRevenant training benchmark: ${runtime.name} ${runtime.version}, ${steps} steps × ${rounds} rounds, default model, CPU`);
console.log(`machine: ${availableParallelism()} cores, load average ${loadBefore.toFixed(2)} at start, ${loadavg()[0]!.toFixed(2)} at end; ` +
  `model actors' threads: ${process.env.REVENANT_NUM_THREADS ? `REVENANT_NUM_THREADS=${process.env.REVENANT_NUM_THREADS}` : "the trainer's share"}\n`);
console.log("| measure | value | target |");
console.log("|---|---:|---|");
printSplit(results.A.flatMap((r) => r.split));
if (values["split-only"]) process.exit(0);
console.log(`| step time, fault tolerance on (A), median ms | ${(med(results.A, "stepS") * 1000).toFixed(1)} | |`);
console.log(`| step time, fault tolerance off (B), median ms | ${(med(results.B, "stepS") * 1000).toFixed(1)} | |`);
console.log(`| overhead A / B | ${(med(results.A, "stepS") / med(results.B, "stepS")).toFixed(3)}× | ≤ 1.03× |`);
console.log(`| wall time, no faults (A), median s | ${med(results.A, "wallS").toFixed(2)} | |`);
console.log(`| wall time, a SIGKILL every 20 steps (C, ${results.C[0]!.faults} faults), median s | ${med(results.C, "wallS").toFixed(2)} | |`);
console.log(`| slowdown C / A | ${(med(results.C, "wallS") / med(results.A, "wallS")).toFixed(3)}× | ≤ 1.10× |`);
console.log(`| checkpoint step's wait to hand its checkpoint over (the write runs behind the next step), median ms | ${(med(results.A, "saveS") * 1000).toFixed(1)} | |`);

/** The split rows: outside native compute as a share of step wall time, and where it goes by phase. */
function printSplit(split: StepSplit[]): void {
  if (split.length === 0) return;
  const wall = split.reduce((a, x) => a + x.wallS, 0), native = split.reduce((a, x) => a + x.nativeS, 0);
  const shares = split.map((x) => 1 - x.nativeS / x.wallS).sort((a, b) => a - b);
  const pct = (x: number) => `${(100 * x).toFixed(1)}%`;
  console.log(`| step wall time (A, steps 2..${split.length / results.A.length + 1} of each run, the loop's windows), total s | ${wall.toFixed(2)} | |`);
  console.log(`| native compute (union over actors), total s | ${native.toFixed(2)} | |`);
  console.log(`| outside native compute / step wall time, over all steps | ${pct(1 - native / wall)} | ≤ 5% |`);
  console.log(`| outside native compute / step wall time, median step | ${pct(shares[Math.floor(shares.length / 2)]!)} | ≤ 5% |`);
  const sum = (f: (x: StepSplit) => Record<string, number>) => {
    const out: Record<string, number> = {};
    for (const x of split) for (const [k, v] of Object.entries(f(x))) out[k] = (out[k] ?? 0) + v;
    return out;
  };
  const phases = sum((x) => x.phases), methods = sum((x) => x.byMethod);
  for (const [k, v] of Object.entries(phases).sort()) console.log(`| phase ${k.slice("timing_s/".length)}, ms per step (coordinator's clock) | ${((1000 * v) / split.length).toFixed(1)} | |`);
  for (const [k, v] of Object.entries(methods).sort()) console.log(`| native ${k}, ms per step (summed over actors) | ${((1000 * v) / split.length).toFixed(1)} | |`);
}
