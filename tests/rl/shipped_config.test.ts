/**
 * The shipped config/ppo.yaml is PPO proper and runs every shipped task: several optimizer steps
 * per batch, so the policy moves within a step (actor/ppo_kl ≠ 0) and the ratio clip acts
 * (actor/pg_clipfrac > 0), under the metric names verl uses. Real compute, a few steps per task.
 */
import { describe, expect, test } from "bun:test";
import { resolveConfig } from "../../config/index.ts";
import { createJob, MetricsFile } from "../../runtime/rl/trainer/job.ts";
import { checkJobConfig } from "../../runtime/rl/trainer/plan.ts";
import { fit } from "../../runtime/rl/trainer/trainer.ts";
import { tempDir } from "../helpers/tmp.ts";

const TASKS = ["digit_reversal", "sorting", "addition"] as const;

describe("the shipped config", () => {
  test("takes several optimizer steps per batch", () => {
    const { config } = resolveConfig({ env: {}, args: [] });
    expect(config.data.train_batch_size / config.worker.actor.ppo_mini_batch_size).toBeGreaterThan(1);
    expect(config.data.train_batch_size / config.worker.critic.ppo_mini_batch_size).toBeGreaterThan(1);
  });

  for (const task of TASKS) {
    test(`runs ${task}: PPO metrics under verl's names, the policy moving within each step`, async () => {
      const { config } = resolveConfig({ env: {}, args: [`data.task=${task}`, `trainer.run_dir=${tempDir("revenant-shipped-")}`, "trainer.total_steps=12", "trainer.val_interval=0", "checkpoint.interval=12"] });
      await checkJobConfig(config);
      const job = createJob(config, task);
      await fit({ config, job, output: () => {}, onNote: () => {} });
      const steps = new MetricsFile(job.metrics).read();
      expect(steps).toHaveLength(12);
      for (const m of steps) {
        for (const key of ["actor/pg_loss", "actor/pg_clipfrac", "actor/ppo_kl", "actor/kl_loss", "critic/vf_loss", "timing_s/update_actor", "timing_s/update_critic", "timing_s/gen"]) {
          expect(m[key], `${key} at step ${m.step}`).toBeNumber();
        }
        expect(m["actor/ppo_kl"]).not.toBe(0);
      }
      expect(Math.max(...steps.map((m) => m["actor/pg_clipfrac"]!))).toBeGreaterThan(0);
    }, 120_000);
  }
});
