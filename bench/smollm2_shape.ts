/**
 * examples/smollm2_shape.yaml at its full size (SmolLM2-135M's shape, a 49,152-id tokenizer) for a
 * few GRPO steps on this machine: seconds per step and each actor's peak memory (VmHWM, read from
 * /proc after the last step), as a Markdown table.
 *
 *   bun bench/smollm2_shape.ts [--steps 3]
 */
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { cpus, loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { resolveConfig } from "../config/index.ts";
import type { Supervisor } from "../runtime/core/supervisor/supervisor.ts";
import { createJob, MetricsFile } from "../runtime/rl/trainer/job.ts";
import { fit } from "../runtime/rl/trainer/trainer.ts";

const { values } = parseArgs({ options: { steps: { type: "string", default: "3" } } });
const steps = Number(values.steps);
const root = join(import.meta.dir, "..");
const runDir = mkdtempSync(join(tmpdir(), "revenant-smol-bench-"));
process.on("exit", () => rmSync(runDir, { recursive: true, force: true }));

/** A process's peak resident memory in MiB (VmHWM), or undefined once it is gone. */
function peakMiB(pid: number): number | undefined {
  try {
    const kb = /^VmHWM:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, "utf8"))?.[1];
    return kb === undefined ? undefined : Number(kb) / 1024;
  } catch {
    return undefined;
  }
}

process.chdir(root); // the example's paths are relative to the repository root
const { config } = resolveConfig({
  file: join(root, "examples", "smollm2_shape.yaml"), env: {},
  args: [`trainer.run_dir=${runDir}`, `trainer.total_steps=${steps}`, `trainer.val_interval=0`, `checkpoint.interval=${steps}`, "checkpoint.save_hf_model=never"],
});
let sup: Supervisor | undefined;
const peaks = new Map<string, number>();
const load = [loadavg()[0]!];
const job = createJob(config, "smol");
const result = await fit({
  config, job, output: () => {}, onNote: () => {}, onSupervisor: (s) => (sup = s),
  onStep: () => {
    load.push(loadavg()[0]!);
    for (const a of sup!.actors()) {
      const pid = a.current?.pid;
      const mib = pid === undefined ? undefined : peakMiB(pid);
      if (mib !== undefined) peaks.set(a.id, Math.max(peaks.get(a.id) ?? 0, mib));
    }
  },
});
const stepS = new MetricsFile(job.metrics).read().map((m) => m["timing_s/step"]!);
const fmt = (x: number) => x.toFixed(1);
console.log(`SmolLM2-135M shape, ${steps} GRPO steps, ${cpus().length} cores, load average ${fmt(Math.min(...load))}-${fmt(Math.max(...load))}\n`);
console.log("| measure | value |\n| --- | ---: |");
console.log(`| seconds per step (each step) | ${stepS.map(fmt).join(", ")} |`);
console.log(`| seconds per step, after the first | ${fmt(stepS.slice(1).reduce((a, b) => a + b, 0) / Math.max(1, stepS.length - 1))} |`);
for (const [actor, mib] of [...peaks].sort()) console.log(`| peak memory of ${actor} (VmHWM) | ${Math.round(mib)} MiB |`);
console.log(`| wall time of the job | ${fmt(result.wallS)} s |`);
