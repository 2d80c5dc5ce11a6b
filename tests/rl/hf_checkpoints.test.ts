/**
 * A Llama-family policy is saved as Hugging Face folders: at the end by default, at every
 * checkpoint on request (the newest `checkpoint.keep` kept), never when asked; a GPT-2 style
 * policy, which has no Hugging Face counterpart, is not.
 */
import { describe, expect, test } from "bun:test";
import { existsSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { resolveConfig } from "../../config/index.ts";
import { createJob } from "../../runtime/rl/trainer/job.ts";
import { fit } from "../../runtime/rl/trainer/trainer.ts";
import { tempDir } from "../helpers/tmp.ts";

async function run(name: string, ...args: string[]) {
  const { config } = resolveConfig({
    file: null, env: {},
    args: [`trainer.run_dir=${tempDir("revenant-hf-ckpt-")}`, "trainer.total_steps=3", "trainer.val_interval=0", "checkpoint.interval=1",
      "checkpoint.keep=2", "data.train_size=32", "data.val_size=8", "data.train_batch_size=4", "worker.actor.ppo_mini_batch_size=4",
      "worker.critic.ppo_mini_batch_size=4", "worker.actor.model.arch=llama", "worker.critic.model.arch=llama", ...args],
  });
  const job = createJob(config, name);
  await fit({ config, job, output: () => {}, onNote: () => {} });
  return job.dir;
}

describe("Hugging Face folders of the policy", () => {
  test("at the end by default; at every checkpoint on request, the newest kept", async () => {
    const end = await run("end");
    expect(readdirSync(join(end, "hf_model")).sort()).toEqual(["config.json", "model.safetensors"]);
    expect(existsSync(join(end, "hf_checkpoints"))).toBe(false);
    const every = await run("every", "checkpoint.save_hf_model=every_checkpoint");
    expect(readdirSync(join(every, "hf_checkpoints")).sort()).toEqual(["step-2", "step-3"]);
    expect(existsSync(join(every, "hf_checkpoints", "step-3", "model.safetensors"))).toBe(true);
  }, 120_000);

  test("never when asked, and not for a GPT-2 style policy", async () => {
    expect(existsSync(join(await run("never", "checkpoint.save_hf_model=never"), "hf_model"))).toBe(false);
    expect(existsSync(join(await run("gpt2", "worker.actor.model.arch=gpt2"), "hf_model"))).toBe(false);
  }, 120_000);
});
