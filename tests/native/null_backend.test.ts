/**
 * The null backend (`device: null`): no real compute, but every contract the trainer and the
 * runtime rely on — shapes, determinism, state that changes with updates and restores exactly —
 * so a whole training job, faults and exact recovery included, runs without the built addon.
 */
import { expect, test } from "bun:test";
import { resolveConfig } from "../../config/index.ts";
import { PolicyModel } from "../../native/policy_model.ts";
import { randomPlan } from "../../runtime/core/chaos.ts";
import { createJob } from "../../runtime/rl/trainer/job.ts";
import { fit } from "../../runtime/rl/trainer/trainer.ts";
import { tempDir } from "../helpers/tmp.ts";

const config = { vocab: 16, context: 12, width: 8, layers: 1, heads: 2, seed: 3 };
const batch = (rows: number) => ({
  tokens: Int32Array.from({ length: rows * 6 }, (_, i) => i % 16),
  mask: Float32Array.from({ length: rows * 6 }, (_, i) => (i % 6 < 2 ? 0 : 1)),
  batch: rows,
  seqLen: 6,
});

test("same seed and weights give the same numbers; updates change the state, which restores exactly", async () => {
  const a = new PolicyModel(config, { device: "null" });
  const b = new PolicyModel(config, { device: "null" });
  expect(a.backend).toBe("null");
  const prompts = [Int32Array.of(1, 2, 3), Int32Array.of(4)];
  const opts = { maxNewTokens: 5, temperature: 1, seed: 7, eosToken: 15 };
  expect(await a.generate(prompts, opts)).toEqual(await b.generate(prompts, opts));
  const lp = await a.logprobs(batch(2));
  expect(lp).toHaveLength(12);
  expect(lp[0]).toBe(0); // masked tokens are zero
  const saved = (await a.getState());
  const stats = await a.policyStep({ ...batch(2), advantages: new Float32Array(12).fill(1), oldLogprobs: lp }, { lr: 0.1 });
  expect(stats.gradNorm).toBeGreaterThan(0);
  expect((await a.getState()).params).not.toEqual(saved.params);
  expect(await a.logprobs(batch(2))).not.toEqual(lp); // outputs follow the weights
  b.setState((await a.getState()));
  expect(await b.logprobs(batch(2))).toEqual(await a.logprobs(batch(2)));
  await expect(a.policyStep({ ...batch(1), mask: new Float32Array(6), advantages: new Float32Array(6), oldLogprobs: new Float32Array(6) }, {}))
    .rejects.toThrow("batch.mask is a Float32Array of length 6; expected at least one non-zero entry at positions 1..seqLen-1");
});

test("a training job with seeded faults on the null backend ends with the weights of the calm job", async () => {
  const runDir = tempDir("revenant-null-");
  const c = resolveConfig({
    file: null, env: {},
    args: [
      `trainer.run_dir=${runDir}`, "trainer.total_steps=10", "trainer.val_interval=5", "checkpoint.interval=3",
      "data.train_size=64", "data.val_size=16", "data.train_batch_size=8", "algorithm.kl_coef=0.01",
      "worker.actor.ppo_mini_batch_size=4", "worker.critic.ppo_mini_batch_size=4",
      "worker.actor.device=null", "worker.critic.device=null", "worker.ref.device=null",
      "fault_tolerance.max_restarts=-1", "fault_tolerance.max_task_retries=-1", "fault_tolerance.ping_interval_s=0.1",
      "fault_tolerance.ping_timeout_s=0.5", "fault_tolerance.restart_backoff_initial_s=0.005", "fault_tolerance.restart_intensity=1000",
    ],
  }).config;
  const quiet = () => {};
  const calm = await fit({ config: c, job: createJob(c, "calm"), output: quiet, onNote: quiet });
  const plan = randomPlan({ seed: 5, steps: [1, 10], calls: { actor_rollout: 3, critic: 2, ref_policy: 1 }, count: 4 });
  const faulty = await fit({ config: c, job: createJob(c, "faulty"), output: quiet, onNote: quiet, faultPlan: plan });
  expect(faulty.chaosFaults).toBe(4);
  expect(faulty.failures).toBe(4);
  expect(faulty.weightsSha256).toBe(calm.weightsSha256);
});
