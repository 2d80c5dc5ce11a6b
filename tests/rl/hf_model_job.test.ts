/**
 * A job on a Hugging Face model folder: the policy (and the critic's trunk) load from
 * worker.actor.model.path, the tokenizer comes from the same folder, the data from JSONL files,
 * and the trained policy is written back as a folder that loads to exactly the weights trained.
 */
import { describe, expect, test } from "bun:test";
import { createHash } from "node:crypto";
import { execFileSync } from "node:child_process";
import { copyFileSync, cpSync, existsSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { resolveConfig } from "../../config/index.ts";
import { loadHfModel, paramsFromTensors, saveHfModel } from "../../native/hf/model_folder.ts";
import type { LlamaModelConfig } from "../../native/hf/config.ts";
import { PolicyModel } from "../../native/policy_model.ts";
import { createJob, MetricsFile } from "../../runtime/rl/trainer/job.ts";
import { fit } from "../../runtime/rl/trainer/trainer.ts";
import { tempDir } from "../helpers/tmp.ts";

const root = join(import.meta.dir, "..", "..");
const TOKENIZER = join(root, "tests", "fixtures", "tokenizer");
const DATA = join(root, "examples", "data", "arith_word_problems");

const QWEN2: LlamaModelConfig = {
  arch: "llama", vocab: 336, context: 96, width: 32, layers: 2, heads: 4, kvHeads: 2, intermediate: 64,
  ropeTheta: 1e6, normEps: 1e-6, tiedEmbeddings: true, attentionBias: true, seed: 9,
};

/** A small random model (by default Qwen2-shaped: GQA, q/k/v biases, tied embeddings) saved with the fixture tokenizer. */
function makeModelFolder(config = QWEN2, dtype: "F32" | "BF16" = "F32"): string {
  const dir = join(tempDir("revenant-hf-job-"), "tiny-model");
  const model = new PolicyModel(config, { device: "cpu" });
  saveHfModel(dir, config, model.tensors, model.initialParams(), { eosTokenId: 333, dtype });
  model.dispose();
  for (const f of ["tokenizer.json", "tokenizer_config.json", "generation_config.json"]) copyFileSync(join(TOKENIZER, f), join(dir, f));
  return dir;
}

const configFor = (folder: string, runDir: string, ...args: string[]) => resolveConfig({
  file: null, env: {},
  args: [`trainer.run_dir=${runDir}`, `worker.actor.model.path=${folder}`, `data.train_files=${join(DATA, "train.jsonl")}`,
    `data.val_files=${join(DATA, "val.jsonl")}`, "reward.name=math", "data.train_batch_size=4", "worker.actor.max_new_tokens=2",
    "worker.actor.ppo_mini_batch_size=4", "worker.critic.ppo_mini_batch_size=4", "trainer.total_steps=2", "trainer.val_interval=0",
    "checkpoint.interval=2", ...args],
}).config;

describe("a job on a Hugging Face folder", () => {
  const folder = makeModelFolder();

  test("trains the loaded policy and saves it back: the folder holds exactly the trained weights", async () => {
    const runDir = tempDir("revenant-hf-run-");
    const config = configFor(folder, runDir, "algorithm.adv_estimator=grpo", "worker.actor.rollout_n=2", "algorithm.kl_coef=0");
    const job = createJob(config, "hf");
    const result = await fit({ config, job, output: () => {}, onNote: () => {} });
    const out = join(job.dir, "hf_model");
    for (const f of ["config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json"]) expect(existsSync(join(out, f)), f).toBe(true);
    const saved = loadHfModel(out);
    const model = new PolicyModel({ ...saved.config, seed: 0 }, { device: "cpu" });
    const params = paramsFromTensors(model.tensors, saved.tensors, { tied: true });
    model.dispose();
    // The job's fingerprint is the SHA-256 of the policy's weights (GRPO: the only trained actor).
    expect(createHash("sha256").update(new Uint8Array(params.buffer)).digest("hex")).toBe(result.weightsSha256);
    const initial = paramsFromTensors(model.tensors, loadHfModel(folder).tensors, { tied: true });
    expect(params).not.toEqual(initial);
  }, 120_000);

  test("a BF16 Qwen3 folder trains and is saved back as a BF16 Qwen3 folder", async () => {
    const qwen3 = makeModelFolder({ ...QWEN2, attentionBias: false, headDim: 12, qkNorm: true }, "BF16");
    const runDir = tempDir("revenant-hf-run-");
    const config = configFor(qwen3, runDir, "algorithm.adv_estimator=grpo", "worker.actor.rollout_n=2", "algorithm.kl_coef=0");
    const job = createJob(config, "hf-qwen3");
    await fit({ config, job, output: () => {}, onNote: () => {} });
    const saved = loadHfModel(join(job.dir, "hf_model"));
    expect([saved.dtype, saved.hfConfig.torch_dtype, saved.hfConfig.architectures]).toEqual(["BF16", "bfloat16", ["Qwen3ForCausalLM"]]);
    expect(saved.config).toMatchObject({ headDim: 12, qkNorm: true, attentionBias: false });
    const before = loadHfModel(qwen3).tensors.get("model.layers.0.self_attn.q_norm.weight")!.data;
    expect(saved.tensors.get("model.layers.0.self_attn.q_norm.weight")!.data).not.toEqual(before); // trained
  }, 120_000);

  test("the critic puts its value head on the policy's folder; a folder that does not load is named", async () => {
    const runDir = tempDir("revenant-hf-run-");
    const config = configFor(folder, runDir);
    const job = createJob(config, "hf-gae");
    await fit({ config, job, output: () => {}, onNote: () => {} });
    expect(new MetricsFile(job.metrics).read().map((m) => typeof m["critic/vf_loss"])).toEqual(["number", "number"]);
    const { checkJobConfig } = await import("../../runtime/rl/trainer/plan.ts");
    await expect(checkJobConfig(configFor(join(runDir, "nowhere"), runDir))).rejects.toThrow(/worker\.actor\.model\.path=.*nowhere/);
  }, 120_000);

  test("weights that are a link to /dev/zero, a FIFO or a truncated file are refused by the check, before any job folder", async () => {
    const { checkJobConfig } = await import("../../runtime/rl/trainer/plan.ts");
    const runDir = tempDir("revenant-hf-run-");
    const variant = (make: (weights: string) => void) => {
      const dir = join(tempDir("revenant-hf-bad-"), "m");
      cpSync(folder, dir, { recursive: true });
      rmSync(join(dir, "model.safetensors"));
      make(join(dir, "model.safetensors"));
      return dir;
    };
    const zero = variant((w) => symlinkSync("/dev/zero", w));
    await expect(checkJobConfig(configFor(zero, runDir))).rejects.toThrow(`${join(zero, "model.safetensors")} is a character device; expected a regular file`);
    const fifo = variant((w) => execFileSync("mkfifo", [w]));
    await expect(checkJobConfig(configFor(fifo, runDir))).rejects.toThrow(`${join(fifo, "model.safetensors")} is a FIFO (named pipe); expected a regular file`);
    const cut = variant((w) => writeFileSync(w, readFileSync(join(folder, "model.safetensors")).subarray(0, 200)));
    await expect(checkJobConfig(configFor(cut, runDir))).rejects.toThrow(`${join(cut, "model.safetensors")}: the header length is`);
    expect(readdirSync(runDir)).toEqual([]);
  }, 120_000);

  test("a NaN weight fails the job when the policy loads, naming the file and the tensor", async () => {
    const broken = makeModelFolder();
    const hf = loadHfModel(broken);
    const model = new PolicyModel({ ...hf.config, seed: 0 }, { device: "cpu" });
    const params = paramsFromTensors(model.tensors, hf.tensors, { tied: true });
    const norm = model.tensors.find((t) => t.name === "model.norm.weight")!;
    params[norm.offset + 1] = NaN;
    saveHfModel(broken, hf.config, model.tensors, params, { eosTokenId: 333 });
    model.dispose();
    const runDir = tempDir("revenant-hf-run-");
    const config = configFor(broken, runDir, "algorithm.adv_estimator=grpo", "worker.actor.rollout_n=2", "algorithm.kl_coef=0");
    const error = await fit({ config, job: createJob(config, "nan"), output: () => {}, onNote: () => {} }).catch((e: unknown) => e);
    expect((error as Error).message).toContain(`${join(broken, "model.safetensors")}: tensor "model.norm.weight" holds NaN at element 1; weights must be finite numbers`);
  }, 120_000);
});
