/**
 * Training under Deno: a short job with seeded faults (scheduled by step and call, so every
 * machine injects them) ends with the same weights as the same job without them.
 * Run with `deno test -A tests/deno/`.
 */
import assert from "node:assert/strict";
import { calmAndFaulty } from "./chaos_job.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };

Deno.test("a job with injected faults ends with the weights of the undisturbed job", opts, async () => {
  const { faulty } = await calmAndFaulty("train", [
    "trainer.total_steps=12", "trainer.val_interval=6", "checkpoint.interval=4",
    "data.train_size=128", "data.val_size=16", "data.train_batch_size=8", "worker.actor.ppo_mini_batch_size=4",
    "worker.critic.ppo_mini_batch_size=4", "algorithm.kl_coef=0.01",
  ], { steps: [1, 12], calls: { actor_rollout: 3, ref_policy: 1 }, count: 4 });
  assert.equal(faulty.failures, faulty.chaosFaults);
});

Deno.test("rollout ranks killed mid-run: the group's job ends with the calm run's weights", opts, async () => {
  await calmAndFaulty("rollout", [
    "trainer.total_steps=6", "trainer.val_interval=3", "data.train_size=64", "data.val_size=8",
    "data.train_batch_size=6", "algorithm.adv_estimator=grpo", "worker.actor.rollout_n=2", "worker.actor.ppo_mini_batch_size=6",
    "worker.rollout.ranks=2",
  ], { steps: [1, 6], calls: { "rollout/0": 2, "rollout/1": 2 }, count: 2, actions: ["kill"] });
});
