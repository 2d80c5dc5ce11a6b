/**
 * When the held-out prompts are evaluated: trainer.val_interval steps apart and after the last
 * step; before the first step unless trainer.val_before_train is off; val_interval 0 means none
 * before or during training. trainer.total_epochs sets the number of steps from the data.
 */
import { describe, expect, test } from "bun:test";
import { resolveConfig } from "../../config/index.ts";
import { createJob, MetricsFile } from "../../runtime/rl/trainer/job.ts";
import { fit } from "../../runtime/rl/trainer/trainer.ts";
import { tempDir } from "../helpers/tmp.ts";

async function run(name: string, args: string[]) {
  const dir = tempDir("revenant-val-");
  const { config } = resolveConfig({
    file: null, env: {},
    args: [`trainer.run_dir=${dir}`, "trainer.seed=3", "data.train_size=64", "data.val_size=16", "data.train_batch_size=8",
      "worker.actor.ppo_mini_batch_size=8", "worker.critic.ppo_mini_batch_size=8", "checkpoint.interval=2", ...args],
  });
  const job = createJob(config, name);
  const notes: string[] = [];
  const result = await fit({ config, job, output: () => {}, onNote: (l) => notes.push(l) });
  return { result, notes, metrics: new MetricsFile(job.metrics).read() };
}

const validatedSteps = (metrics: Array<Record<string, number>>) => metrics.filter((m) => "val/score" in m).map((m) => m.step);

describe("validation schedule", () => {
  test("val_interval 0: no evaluation at all, before, between or after the steps", async () => {
    const { result, metrics } = await run("never", ["trainer.total_steps=4", "trainer.val_interval=0"]);
    expect(result.initialValScore).toBeUndefined();
    expect(validatedSteps(metrics)).toEqual([]);
    expect(result.finalValScore).toBeNull(); // nor after the last step
  }, 60_000);

  test("val_before_train false skips the evaluation before the first step only", async () => {
    const { result, metrics } = await run("later", ["trainer.total_steps=4", "trainer.val_interval=2", "trainer.val_before_train=false"]);
    expect(result.initialValScore).toBeUndefined();
    expect(validatedSteps(metrics)).toEqual([2, 4]);
  }, 60_000);

  test("trainer.total_epochs runs enough steps to pass over the training prompts that many times", async () => {
    const { result, metrics, notes } = await run("epochs", ["trainer.total_epochs=1", "trainer.val_interval=4"]);
    expect(result.steps).toBe(8); // 64 prompts in batches of 8
    expect(metrics.map((m) => m.step)).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
    expect(notes).toContain("trainer.total_epochs=1 → trainer.total_steps=8 (1 pass over 64 training prompts in batches of 8)");
  }, 60_000);
});
