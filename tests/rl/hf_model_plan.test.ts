/**
 * A job on a Hugging Face folder, checked before anything starts: the context key sets the
 * training context up to the folder's max_position_embeddings and is refused past it naming
 * both numbers; a shape key that the folder contradicts is refused naming both sources; a
 * folder whose tensors do not fit its config.json (Qwen3 relabelled as Qwen2) is refused naming
 * q_norm/k_norm, all before a job folder exists. An export keeps the folder's dtype (BF16 in,
 * BF16 out; F16 in, F16 out) unless checkpoint.hf_dtype says otherwise, and its
 * max_position_embeddings. A LoRA actor keeps a BF16 folder's base in bfloat16 and merges into BF16.
 */
import { describe, expect, test } from "bun:test";
import { existsSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { LlamaModelConfig } from "../../native/hf/config.ts";
import { loadHfModel } from "../../native/hf/model_folder.ts";
import { LORA_MODULES } from "../../native/types.ts";
import { readSafetensors } from "../../native/hf/safetensors.ts";
import { ActorRollout } from "../../roles/actor_rollout.ts";
import { checkJobConfig, JobConfigError } from "../../runtime/rl/trainer/plan.ts";
import { tempDir } from "../helpers/tmp.ts";
import { folderJobConfig, makeModelFolder } from "./hf_folder_helpers.ts";

/** A small random Qwen3-shaped model (q/k norms, 4 heads of 12 on width 32, tied) with the fixture tokenizer. */
const QWEN3: LlamaModelConfig = {
  arch: "llama", vocab: 336, context: 96, width: 32, layers: 2, heads: 4, kvHeads: 2, intermediate: 64, ropeTheta: 1e6, normEps: 1e-6,
  tiedEmbeddings: true, attentionBias: false, headDim: 12, qkNorm: true, ropeScaling: null, seed: 9,
};

const makeFolder = (config: LlamaModelConfig, dtype: "F32" | "BF16" | "F16" = "F32", maxPositions = 96) => makeModelFolder(config, { dtype, maxPositions });

const configFor = (folder: string, runDir: string, ...args: string[]) =>
  folderJobConfig(folder, runDir, "algorithm.adv_estimator=grpo", "worker.actor.rollout_n=2", ...args);

/** The plan's refusal, and that nothing was written under the run folder. */
async function refusal(folder: string, ...args: string[]): Promise<JobConfigError> {
  const runDir = tempDir("revenant-hf-plan-run-");
  const error = await checkJobConfig(configFor(folder, runDir, ...args)).then(() => null, (e: unknown) => e);
  expect(error).toBeInstanceOf(JobConfigError);
  expect(readdirSync(runDir)).toEqual([]);
  return error as JobConfigError;
}

describe("a folder's job is checked before anything starts", () => {
  const folder = makeFolder(QWEN3, "F32", 512);

  test("the context key sets the training context up to max_position_embeddings; the banner says which", async () => {
    const runDir = tempDir("revenant-hf-plan-run-");
    const chosen = await checkJobConfig(configFor(folder, runDir, "worker.actor.model.context=80"));
    expect(chosen.roleOptions("actor").model.context).toBe(80);
    expect(chosen.modelBanner).toBe(`model: actor ${folder} (Qwen3ForCausalLM, 2 layers, width 32), context 80 of max_position_embeddings 512`);
    // Left at its default, the folder's own (max_position_embeddings, within the runtime's limit).
    const folders = await checkJobConfig(configFor(folder, runDir));
    expect(folders.roleOptions("actor").model.context).toBe(512);
    expect(folders.roleOptions("actor").model).toMatchObject({ headDim: 12, qkNorm: true, ropeScaling: null });
    // config.json is read once per job: the plan passes what it read on to the actors.
    expect(folders.roleOptions("actor").hfConfig).toEqual(JSON.parse(readFileSync(join(folder, "config.json"), "utf8")));
    expect(folders.roleOptions("ref").hfConfig).toEqual(folders.roleOptions("actor").hfConfig);
  });

  test("a context past max_position_embeddings is refused naming both numbers", async () => {
    const e = await refusal(folder, "worker.actor.model.context=1024");
    expect(e.path).toBe("worker.actor.model.context");
    expect(e.message).toBe(`worker.actor.model.context=1024 is larger than max_position_embeddings=512 in ${join(folder, "config.json")}: ` +
      "the model was not made for positions past 512; set worker.actor.model.context to at most 512");
  });

  test("a shape key that the folder contradicts is refused naming both sources; one that agrees is fine", async () => {
    const e = await refusal(folder, "worker.actor.model.width=48");
    expect(e.path).toBe("worker.actor.model.width");
    expect(e.message).toBe(`worker.actor.model.width=48 (this configuration) contradicts hidden_size=32 in ${join(folder, "config.json")}, ` +
      "which gives the model's shape: drop worker.actor.model.width or set it to 32");
    expect((await refusal(folder, "worker.actor.model.attention_bias=true")).message).toMatch(/attention_bias=true \(this configuration\) contradicts attention_bias \(q\/k\/v biases\)=false/);
    // The critic puts its value head on the actor's folder: its keys are held to it too.
    expect((await refusal(folder, "algorithm.adv_estimator=gae", "worker.critic.model.layers=3")).path).toBe("worker.critic.model.layers");
    const runDir = tempDir("revenant-hf-plan-run-");
    await expect(checkJobConfig(configFor(folder, runDir, "worker.actor.model.width=32", "worker.actor.model.arch=llama"))).resolves.toBeDefined();
  });

  test("a Qwen3 folder relabelled as Qwen2 is refused naming its q_norm/k_norm, before a job folder exists", async () => {
    const relabelled = makeFolder(QWEN3);
    const path = join(relabelled, "config.json");
    const json = JSON.parse(readFileSync(path, "utf8"));
    writeFileSync(path, JSON.stringify({ ...json, architectures: ["Qwen2ForCausalLM"], model_type: "qwen2" }));
    const e = await refusal(relabelled);
    expect(e.path).toBe("worker.actor.model.path");
    expect(e.message).toMatch(/lacks 6 tensor\(s\) the model needs: "model\.layers\.0\.self_attn\.q_proj\.bias".*has 4 tensor\(s\) the model does not: "model\.layers\.0\.self_attn\.q_norm\.weight", "model\.layers\.0\.self_attn\.k_norm\.weight"/);
  });
});

describe("an export keeps the folder's dtype and max_position_embeddings", () => {
  /** Loads `folder` into an actor at `context`, exports it with `dtype`, and reads back the export. */
  async function exported(folder: string, dtype?: "auto" | "f32" | "bf16" | "f16", context = 96) {
    const { config } = loadHfModel(folder);
    const actor = new ActorRollout({ model: { ...config, context, seed: 1 }, path: folder, device: "cpu" }, {} as never);
    const out = join(tempDir("revenant-hf-export-"), "out");
    await actor.exportHf({ dir: out, ...(dtype ? { dtype } : {}) });
    const dtypes = [...readSafetensors(join(out, "model.safetensors")).tensors.values()].map((t) => t.dtype);
    return { dtypes: [...new Set(dtypes)], json: JSON.parse(readFileSync(join(out, "config.json"), "utf8")), hf: loadHfModel(out) };
  }

  test("BF16 in, BF16 out; F16 in, F16 out; F32 in, F32 out (auto)", async () => {
    for (const [dtype, torchDtype] of [["BF16", "bfloat16"], ["F16", "float16"], ["F32", "float32"]] as const) {
      const { dtypes, json } = await exported(makeFolder(QWEN3, dtype));
      expect([dtype, dtypes, json.torch_dtype]).toEqual([dtype, [dtype], torchDtype]);
    }
  }, 60_000);

  test("checkpoint.hf_dtype chooses; the original max_position_embeddings is kept at a shorter training context", async () => {
    const bf16 = makeFolder(QWEN3, "BF16", 512);
    const asF32 = await exported(bf16, "f32", 64);
    expect([asF32.dtypes, asF32.json.torch_dtype, asF32.json.max_position_embeddings]).toEqual([["F32"], "float32", 512]);
    expect((await exported(bf16, "f16")).dtypes).toEqual(["F16"]);
    // Exact in both directions: BF16 weights widened to F32 are the same numbers.
    const before = loadHfModel(bf16).tensors.get("model.layers.0.self_attn.q_norm.weight")!.data;
    expect(Array.from(asF32.hf.tensors.get("model.layers.0.self_attn.q_norm.weight")!.data)).toEqual(Array.from(before));
    expect(existsSync(bf16)).toBe(true);
  }, 60_000);

  test("a LoRA actor on a BF16 folder holds its base as bfloat16 (about half the bytes); its merged export is BF16", async () => {
    const lora = { rank: 4, alpha: 8, rslora: false, modules: [...LORA_MODULES], dropout: 0, bf16Base: false };
    const actorOn = (folder: string) => new ActorRollout({ model: { ...loadHfModel(folder).config, context: 96, seed: 1, lora }, path: folder, device: "cpu" }, {} as never);
    const bf16 = makeFolder(QWEN3, "BF16"), f32 = makeFolder(QWEN3, "F32");
    const [narrow, wide] = [actorOn(bf16), actorOn(f32)];
    // QWEN3's vocabulary of 336 × width 32 (tied) is a third of its weights, held float32 either way.
    const ratio = narrow.info().baseBytes / wide.info().baseBytes;
    expect(wide.info().baseBytes).toBe(4 * wide.info().params);
    expect(ratio).toBeGreaterThan(0.5);
    expect(ratio).toBeLessThan(0.7);
    const dirs = { dir: join(tempDir("revenant-hf-lora-bf16-"), "adapter"), mergedDir: join(tempDir("revenant-hf-lora-bf16-"), "merged") };
    await narrow.exportHf(dirs);
    const merged = readSafetensors(join(dirs.mergedDir, "model.safetensors")).tensors;
    expect([...new Set([...merged.values()].map((t) => t.dtype))]).toEqual(["BF16"]);
    // Fresh adapters (B = 0): the merged weights are the folder's, bit for bit.
    const folder = loadHfModel(bf16).tensors;
    for (const [name, t] of merged) expect(Array.from(t.data)).toEqual(Array.from(folder.get(name)!.data));
  }, 60_000);
});
