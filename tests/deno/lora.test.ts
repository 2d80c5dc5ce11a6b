/**
 * LoRA under Deno: a GRPO job training rank-4 adapters on a new Llama-family policy (its
 * reference scored by the actor with the adapters off, rollout ranks fed the adapters alone),
 * hit by seeded kills of the actor, ends with the calm run's adapters and writes PEFT's files.
 * Run with `deno test -A tests/deno/`.
 */
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { resolveConfig } from "../../config/index.ts";
import { randomPlan } from "../../runtime/core/chaos.ts";
import { createJob } from "../../runtime/rl/trainer/job.ts";
import { fit } from "../../runtime/rl/trainer/trainer.ts";
import { tempDir } from "../helpers/tmp.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };

Deno.test("a LoRA job with the actor killed mid-run ends with the calm run's adapters and exports them", opts, async () => {
  const seed = Number(Deno.env.get("CHAOS_SEED") ?? 3);
  const runDir = tempDir("revenant-deno-lora-");
  const config = resolveConfig({
    file: null, env: {},
    args: [
      `trainer.run_dir=${runDir}`, "trainer.total_steps=6", "trainer.val_interval=0", "checkpoint.interval=2",
      "data.train_size=64", "data.val_size=8", "data.train_batch_size=6", "algorithm.adv_estimator=grpo",
      "worker.actor.rollout_n=2", "worker.actor.ppo_mini_batch_size=6", "algorithm.kl_coef=0.01",
      "worker.actor.model.arch=llama", "worker.actor.lora.rank=4", "worker.rollout.ranks=2",
      "fault_tolerance.max_restarts=-1", "fault_tolerance.max_task_retries=-1", "fault_tolerance.ping_interval_s=0.1",
      "fault_tolerance.ping_timeout_s=0.5", "fault_tolerance.restart_intensity=1000",
    ],
  }).config;
  const quiet = () => {};
  const calmJob = createJob(config, "calm");
  const calm = await fit({ config, job: calmJob, output: quiet, onNote: quiet });
  const plan = randomPlan({ seed, steps: [1, 6], calls: { actor_rollout: 3 }, count: 2, actions: ["kill"] });
  const faulty = await fit({ config, job: createJob(config, "faulty"), output: quiet, onNote: quiet, faultPlan: plan });
  assert.equal(faulty.chaosFaults, 2, `seed ${seed}: planned faults not all injected (${JSON.stringify(plan.remaining)})`);
  assert.equal(faulty.weightsSha256, calm.weightsSha256, `adapters differ after ${faulty.chaosFaults} kills (CHAOS_SEED=${seed})`);
  for (const f of ["adapter_config.json", "adapter_model.safetensors"]) assert.ok(existsSync(join(calmJob.dir, "hf_model", f)), f);
});
