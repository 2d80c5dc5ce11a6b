/**
 * examples/gsm8k_style.yaml learns: a Llama-family model trained from scratch with GRPO and the
 * math reward on the shipped arithmetic word problems answers held-out problems it could not
 * before. 100 of its 400 steps; the best held-out reward of those steps must be at least 0.1
 * above the untrained policy's (0.19–0.22 on the reference machine from steps 50 to 100, after
 * 0.0), which absorbs the float differences between CPUs.
 */
import { expect, test } from "bun:test";
import { join } from "node:path";
import { resolveConfig } from "../../config/index.ts";
import { createJob, MetricsFile } from "../../runtime/rl/trainer/job.ts";
import { fit } from "../../runtime/rl/trainer/trainer.ts";
import { tempDir } from "../helpers/tmp.ts";

const root = join(import.meta.dir, "..", "..");

test("the GSM8K-style example raises the held-out reward of a Llama-family model from scratch", async () => {
  // Paths in the example are relative to the repository root, where `bun run train` runs.
  const cwd = process.cwd();
  process.chdir(root);
  try {
    const { config } = resolveConfig({ file: join(root, "examples", "gsm8k_style.yaml"), env: {}, args: [`trainer.run_dir=${tempDir("revenant-gsm8k-")}`, "trainer.total_steps=100"] });
    expect(config.worker.actor.model.arch).toBe("llama");
    expect(config.reward.name).toBe("math");
    const job = createJob(config, "gsm8k");
    const result = await fit({ config, job, output: () => {}, onNote: () => {} });
    const curve = new MetricsFile(job.metrics).read().filter((m) => m["val/score"] !== undefined).map((m) => m["val/score"]!);
    console.log(`held-out reward ${result.initialValScore!.toFixed(3)} → ${curve.map((v) => v.toFixed(3)).join(" ")} (${result.wallS.toFixed(0)} s)`);
    expect(Math.max(...curve)).toBeGreaterThanOrEqual(result.initialValScore! + 0.1);
  } finally {
    process.chdir(cwd);
  }
}, 900_000);
