/**
 * LoRA under Deno: a GRPO job training rank-4 adapters on a new Llama-family policy (its
 * reference scored by the actor with the adapters off, rollout ranks fed the adapters alone),
 * hit by seeded kills of the actor, ends with the calm run's adapters and writes PEFT's files.
 * Run with `deno test -A tests/deno/`.
 */
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { calmAndFaulty } from "./chaos_job.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };

Deno.test("a LoRA job with the actor killed mid-run ends with the calm run's adapters and exports them", opts, async () => {
  const { calmJob } = await calmAndFaulty("lora", [
    "trainer.total_steps=6", "trainer.val_interval=0", "checkpoint.interval=2",
    "data.train_size=64", "data.val_size=8", "data.train_batch_size=6", "algorithm.adv_estimator=grpo",
    "worker.actor.rollout_n=2", "worker.actor.ppo_mini_batch_size=6", "algorithm.kl_coef=0.01",
    "worker.actor.model.arch=llama", "worker.actor.lora.rank=4", "worker.rollout.ranks=2",
  ], { steps: [1, 6], calls: { actor_rollout: 3 }, count: 2, actions: ["kill"] });
  for (const f of ["adapter_config.json", "adapter_model.safetensors"]) assert.ok(existsSync(join(calmJob.dir, "hf_model", f)), f);
});
