/**
 * The default configuration learns for real on the CPU: held-out reward on digit reversal rises
 * from the untrained level to ≥ 0.9 within the default step budget. Seeded end to end: the same
 * run on one machine; across CPUs float rounding differs (-march=native, OpenBLAS kernels), which
 * the shipped config's margin (1.0 by step 250 of 400) absorbs.
 */
import { expect, test } from "bun:test";
import { join } from "node:path";
import { resolveConfig } from "../../config/index.ts";
import { createJob, MetricsFile } from "../../runtime/rl/trainer/job.ts";
import { fit } from "../../runtime/rl/trainer/trainer.ts";
import { tempDir } from "../helpers/tmp.ts";

test("the shipped config/ppo.yaml learns digit reversal to ≥ 0.9 held-out reward", async () => {
  const runDir = tempDir("revenant-learn-");
  const { config } = resolveConfig({ env: {}, args: [`trainer.run_dir=${runDir}`] });
  const job = createJob(config, "default");
  const result = await fit({ config, job, output: () => {}, onNote: () => {} });
  const curve = new MetricsFile(job.metrics).read().filter((m) => m["val/score"] !== undefined).map((m) => `${m.step}:${m["val/score"]!.toFixed(2)}`);
  console.log(`held-out reward ${result.initialValScore!.toFixed(3)} → ${result.finalValScore!.toFixed(3)} (${curve.join(" ")}), ${result.wallS.toFixed(1)} s`);
  expect(result.initialValScore!).toBeLessThan(0.2);
  expect(result.finalValScore).toBeGreaterThanOrEqual(0.9);
  expect(result.steps).toBe(config.trainer.total_steps);
}, 600_000);
