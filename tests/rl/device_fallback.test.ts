/**
 * Device "auto" on a machine without a usable GPU: each model actor computes on the CPU and the
 * job's metrics say so every step (`device_fallback/<role>` = 1); a role given "cpu" did not fall
 * back and has no such metric. On a machine with a usable GPU there is no fallback to see: skipped.
 */
import { expect, test } from "bun:test";
import { resolveConfig } from "../../config/index.ts";
import { loadNative } from "../../native/loader.ts";
import { createJob, MetricsFile } from "../../runtime/rl/trainer/job.ts";
import { fit } from "../../runtime/rl/trainer/trainer.ts";
import { tempDir } from "../helpers/tmp.ts";

const gpu = loadNative().deviceInfo().cuda.usable;
if (gpu) console.log("[device fallback test skipped] a usable GPU is present: device auto does not fall back here");

test.skipIf(gpu)("device auto falls back to the CPU and the metrics say so, per role, every step", async () => {
  const config = resolveConfig({
    file: null, env: {},
    args: [
      `trainer.run_dir=${tempDir("revenant-fallback-")}`, "trainer.total_steps=2", "trainer.val_interval=0",
      "data.train_size=32", "data.val_size=8", "data.train_batch_size=4", "worker.actor.ppo_mini_batch_size=4",
      "worker.critic.ppo_mini_batch_size=4", "worker.critic.device=cpu", "worker.ref.device=auto",
    ],
  }).config;
  const job = createJob(config, "fallback");
  await fit({ config, job, output: () => {}, onNote: () => {} });
  for (const row of new MetricsFile(job.metrics).read()) {
    expect(row["device_fallback/actor_rollout"]).toBe(1);
    expect(row["device_fallback/ref_policy"]).toBe(1);
    expect(row["device_fallback/critic"]).toBeUndefined();
  }
}, 60_000);
