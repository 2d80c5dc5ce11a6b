/**
 * The Deno suite's chaos check: a job run calm, then again with a seeded fault plan (scheduled by
 * step and call, so every machine injects them), must end with the same weights. CHAOS_SEED=<n>
 * reproduces a run; a failure names the seed.
 */
import assert from "node:assert/strict";
import { resolveConfig } from "../../config/index.ts";
import { randomPlan, type RandomPlanOptions } from "../../runtime/core/chaos.ts";
import { createJob, type JobPaths } from "../../runtime/rl/trainer/job.ts";
import { fit, type FitResult } from "../../runtime/rl/trainer/trainer.ts";
import { tempDir } from "../helpers/tmp.ts";

/** Restart and retry without limit, and find a hang within half a second. */
export const CHAOS_FAULT_TOLERANCE = [
  "fault_tolerance.max_restarts=-1", "fault_tolerance.max_task_retries=-1", "fault_tolerance.ping_interval_s=0.1",
  "fault_tolerance.ping_timeout_s=0.5", "fault_tolerance.restart_intensity=1000",
];

type PlanShape = Omit<RandomPlanOptions, "seed">;

/** Runs the job of `args` calm and with the plan; asserts every fault landed and the weights agree. */
export async function calmAndFaulty(tag: string, args: string[], plan: PlanShape): Promise<{ calm: FitResult; faulty: FitResult; calmJob: JobPaths }> {
  const seed = Number(Deno.env.get("CHAOS_SEED") ?? 3);
  const runDir = tempDir(`revenant-deno-${tag}-`);
  const config = resolveConfig({ file: null, env: {}, args: [`trainer.run_dir=${runDir}`, ...args, ...CHAOS_FAULT_TOLERANCE] }).config;
  const quiet = () => {};
  const calmJob = createJob(config, "calm");
  const calm = await fit({ config, job: calmJob, output: quiet, onNote: quiet });
  const faultPlan = randomPlan({ seed, ...plan });
  const faulty = await fit({ config, job: createJob(config, "faulty"), output: quiet, onNote: quiet, faultPlan });
  assert.equal(faulty.chaosFaults, plan.count, `seed ${seed}: planned faults not all injected (${JSON.stringify(faultPlan.remaining)})`);
  assert.equal(faulty.weightsSha256, calm.weightsSha256, `weights differ after ${faulty.chaosFaults} faults (CHAOS_SEED=${seed})`);
  return { calm, faulty, calmJob };
}
