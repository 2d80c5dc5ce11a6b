/**
 * Training under Deno: a short job with seeded faults (scheduled by step and call, so every
 * machine injects them) ends with the same weights as the same job without them.
 * Run with `deno test -A tests/deno/`.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { resolveConfig } from "../../config/index.ts";
import { randomPlan } from "../../runtime/core/chaos.ts";
import { createJob } from "../../runtime/rl/trainer/job.ts";
import { fit } from "../../runtime/rl/trainer/trainer.ts";
import { tempDir } from "../helpers/tmp.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };

Deno.test("a job with injected faults ends with the weights of the undisturbed job", opts, async () => {
  const seed = Number(Deno.env.get("CHAOS_SEED") ?? 3);
  const runDir = tempDir("revenant-deno-train-");
  const config = resolveConfig({
    file: null, env: {},
    args: [
      `trainer.run_dir=${runDir}`, "trainer.total_steps=12", "trainer.val_interval=6", "checkpoint.interval=4",
      "data.train_size=128", "data.val_size=16", "data.train_batch_size=8", "worker.actor.ppo_mini_batch_size=4",
      "worker.critic.ppo_mini_batch_size=4", "algorithm.kl_coef=0.01", "fault_tolerance.max_restarts=-1",
      "fault_tolerance.max_task_retries=-1", "fault_tolerance.ping_interval_s=0.1", "fault_tolerance.ping_timeout_s=0.5",
      "fault_tolerance.restart_intensity=1000",
    ],
  }).config;
  const quiet = () => {};
  const clean = await fit({ config, job: createJob(config, "clean"), output: quiet, onNote: quiet });
  const plan = randomPlan({ seed, steps: [1, 12], calls: { actor_rollout: 3, ref_policy: 1 }, count: 4 });
  const faulty = await fit({ config, job: createJob(config, "faulty"), output: quiet, onNote: quiet, faultPlan: plan });
  assert.equal(faulty.chaosFaults, 4, `seed ${seed}: planned faults not all injected (${JSON.stringify(plan.remaining)})`);
  assert.equal(faulty.weightsSha256, clean.weightsSha256, `weights differ after ${faulty.chaosFaults} faults (CHAOS_SEED=${seed})`);
  assert.equal(faulty.failures, faulty.chaosFaults);
});

Deno.test("rollout ranks killed mid-run: the group's job ends with the calm run's weights", opts, async () => {
  const seed = Number(Deno.env.get("CHAOS_SEED") ?? 3);
  const runDir = tempDir("revenant-deno-rollout-");
  const config = resolveConfig({
    file: null, env: {},
    args: [
      `trainer.run_dir=${runDir}`, "trainer.total_steps=6", "trainer.val_interval=3", "data.train_size=64", "data.val_size=8",
      "data.train_batch_size=6", "algorithm.adv_estimator=grpo", "worker.actor.rollout_n=2", "worker.actor.ppo_mini_batch_size=6",
      "worker.rollout.ranks=2", "fault_tolerance.max_restarts=-1", "fault_tolerance.max_task_retries=-1",
      "fault_tolerance.ping_interval_s=0.1", "fault_tolerance.ping_timeout_s=0.5", "fault_tolerance.restart_intensity=1000",
    ],
  }).config;
  const quiet = () => {};
  const calm = await fit({ config, job: createJob(config, "calm"), output: quiet, onNote: quiet });
  const plan = randomPlan({ seed, steps: [1, 6], calls: { "rollout/0": 2, "rollout/1": 2 }, count: 2, actions: ["kill"] });
  const faulty = await fit({ config, job: createJob(config, "faulty"), output: quiet, onNote: quiet, faultPlan: plan });
  assert.equal(faulty.chaosFaults, 2, `seed ${seed}: planned faults not all injected (${JSON.stringify(plan.remaining)})`);
  assert.equal(faulty.weightsSha256, calm.weightsSha256, `weights differ after ${faulty.chaosFaults} rank kills (CHAOS_SEED=${seed})`);
});
