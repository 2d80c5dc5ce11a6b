/**
 * A GRPO job whose policy trains LoRA adapters on a Hugging Face folder: no ref_policy actor (the
 * actor scores its base with the adapters off), rollout ranks receive the adapters alone, the job
 * exports PEFT's layout (and the merged folder with save_merged), and a coordinator killed with
 * SIGKILL resumes from its adapter-only checkpoint to the same adapters and metrics as the calm run.
 * LoRA dropout is on (0.1), so the replayed updates must regenerate its masks exactly. Bad LoRA
 * settings are refused before the job starts, naming the key.
 */
import { describe, expect, test } from "bun:test";
import { copyFileSync, existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { resolveConfig } from "../../config/index.ts";
import type { LlamaModelConfig } from "../../native/hf/config.ts";
import { loadHfModel, saveHfModel } from "../../native/hf/model_folder.ts";
import { readSafetensors } from "../../native/hf/safetensors.ts";
import { PolicyModel } from "../../native/policy_model.ts";
import { CheckpointStore } from "../../runtime/core/checkpoint/store.ts";
import { createJob, MetricsFile } from "../../runtime/rl/trainer/job.ts";
import { checkJobConfig } from "../../runtime/rl/trainer/plan.ts";
import { fit, type FitResult } from "../../runtime/rl/trainer/trainer.ts";
import { tempDir } from "../helpers/tmp.ts";
import { killMidRunAndResume } from "../helpers/train_cli.ts";

const root = join(import.meta.dir, "..", "..");
const TOKENIZER = join(root, "tests", "fixtures", "tokenizer");
const DATA = join(root, "examples", "data", "arith_word_problems");
const quiet = () => {};

const QWEN2: LlamaModelConfig = {
  arch: "llama", vocab: 336, context: 96, width: 32, layers: 2, heads: 4, kvHeads: 2, intermediate: 64,
  ropeTheta: 1e6, normEps: 1e-6, tiedEmbeddings: true, attentionBias: true, seed: 9,
};
const RANK = 4;
/** Both layers' A [r, in] and B [out, r] of q, k, v, o (width 32, 2 kv heads of 8) and gate, up, down (intermediate 64). */
const ADAPTER_FLOATS = 2 * (RANK * 32 + 32 * RANK + RANK * 32 + 16 * RANK + RANK * 32 + 16 * RANK + RANK * 32 + 32 * RANK
  + RANK * 32 + 64 * RANK + RANK * 32 + 64 * RANK + RANK * 64 + 32 * RANK);

function makeModelFolder(): string {
  const dir = join(tempDir("revenant-lora-job-"), "tiny-model");
  const model = new PolicyModel(QWEN2, { device: "cpu" });
  saveHfModel(dir, QWEN2, model.tensors, model.initialParams(), { eosTokenId: 333 });
  model.dispose();
  for (const f of ["tokenizer.json", "tokenizer_config.json", "generation_config.json"]) copyFileSync(join(TOKENIZER, f), join(dir, f));
  return dir;
}

const configFor = (folder: string, runDir: string, ...args: string[]) => resolveConfig({
  file: null, env: {},
  args: [`trainer.run_dir=${runDir}`, `worker.actor.model.path=${folder}`, `data.train_files=${join(DATA, "train.jsonl")}`,
    `data.val_files=${join(DATA, "val.jsonl")}`, "reward.name=math", "data.train_batch_size=4", "worker.actor.max_new_tokens=3",
    "worker.actor.ppo_mini_batch_size=4", "trainer.total_steps=6", "trainer.val_interval=0", "trainer.seed=3",
    "checkpoint.interval=2", "checkpoint.keep=2", "algorithm.adv_estimator=grpo", "worker.actor.rollout_n=2",
    "algorithm.kl_coef=0.05", "worker.actor.lr=0.01", `worker.actor.lora.rank=${RANK}`, "worker.actor.lora.dropout=0.1", "worker.actor.lora.save_merged=true",
    "worker.rollout.ranks=2", "worker.rollout.weight_transfer=shared_memory", ...args],
}).config;

/** Metrics that must match exactly: everything but timings, throughput and fault counters. */
const trainingMetrics = (rows: Array<Record<string, number>>) => rows.map((r) => Object.fromEntries(Object.entries(r).filter(([k]) =>
  !/^(timing_s|perf|actor_failures|actor_restarts|actor_retries|actor_health)\//.test(k))));

describe("a GRPO job training LoRA adapters", () => {
  const folder = makeModelFolder();
  const runDir = tempDir("revenant-lora-run-");
  let calm: { result: FitResult; metrics: Array<Record<string, number>>; dir: string };

  test("plans no ref_policy actor and refuses LoRA where it cannot run, naming the key", async () => {
    const plan = await checkJobConfig(configFor(folder, runDir));
    expect(plan.childSpecs().map((s) => s.id)).toEqual(["actor_rollout", "rollout"]);
    // The ranks load the frozen base from the folder themselves: pushes carry the adapters alone.
    expect(plan.roleOptions("rollout")).toMatchObject({ path: folder, model: { lora: { rank: RANK, alpha: 2 * RANK, dropout: 0.1 } } });
    expect(plan.modelBanner).toMatch(/trains LoRA adapters \(rank 4, alpha 8, q_proj k_proj v_proj o_proj gate_proj up_proj down_proj\); the reference policy is its base/);
    const refused = (args: string[]) => checkJobConfig(configFor(folder, runDir, ...args)).then(() => "accepted", (e: Error) => e.message);
    expect(await refused(["worker.actor.model.path=", "worker.actor.model.arch=gpt2", "data.tokenizer=" + TOKENIZER]))
      .toMatch(/worker\.actor\.lora\.rank=4 needs a llama-family policy.*arch gpt2/);
    expect(() => configFor(folder, runDir, "worker.actor.lora.dropout=1")).toThrow(/worker\.actor\.lora\.dropout/);
    expect(() => configFor(folder, runDir, "worker.actor.lora.target_modules=[q_proj,qkv]")).toThrow(/target_modules/);
  }, 60_000);

  test("trains the adapters with the base as reference, pushes adapters only, exports PEFT and merged folders", async () => {
    const config = configFor(folder, runDir);
    const job = createJob(config, "lora-calm");
    const result = await fit({ config, job, output: quiet, onNote: quiet });
    const metrics = new MetricsFile(job.metrics).read();
    calm = { result, metrics, dir: job.dir };
    expect(metrics).toHaveLength(6);
    // The reference was scored (by the actor: there is no ref_policy) and the policy moved away from it.
    expect(metrics.every((m) => "timing_s/ref" in m && "actor/kl_loss" in m)).toBe(true);
    expect(metrics.some((m) => m["actor/kl_loss"]! > 0)).toBe(true);
    // Every push is one shared segment of the adapters: a 64-byte header and 4 bytes per adapter weight.
    const adapterFloats = ADAPTER_FLOATS;
    expect(metrics.map((m) => m["perf/weight_sync_bytes"])).toEqual(Array(6).fill(64 + 4 * adapterFloats));

    // The checkpoint holds the adapters and their AdamW moments, nothing of the base.
    const saved = new CheckpointStore(job.checkpoints, 2, quiet).latest<unknown>()!;
    const actor = saved.states.get("actor_rollout") as { model: { params: Float32Array; adamM: Float32Array; adamV: Float32Array; step: number } };
    expect([actor.model.params.length, actor.model.adamM.length, actor.model.adamV.length]).toEqual([adapterFloats, adapterFloats, adapterFloats]);

    const out = join(job.dir, "hf_model");
    for (const f of ["adapter_config.json", "adapter_model.safetensors", "tokenizer.json", "tokenizer_config.json"]) expect(existsSync(join(out, f)), f).toBe(true);
    expect(existsSync(join(out, "model.safetensors"))).toBe(false);
    const adapterConfig = JSON.parse(readFileSync(join(out, "adapter_config.json"), "utf8"));
    expect(adapterConfig).toMatchObject({ peft_type: "LORA", task_type: "CAUSAL_LM", r: RANK, lora_alpha: 2 * RANK, lora_dropout: 0.1, base_model_name_or_path: folder });
    const adapters = readSafetensors(join(out, "adapter_model.safetensors")).tensors;
    expect(adapters.size).toBe(2 * 7 * 2);
    const b = adapters.get("base_model.model.model.layers.1.mlp.down_proj.lora_B.weight")!;
    expect(b.shape).toEqual([32, RANK]);
    expect(b.data.some((v) => v !== 0)).toBe(true); // B starts at 0: it trained
    // The merged folder: a full model whose projections moved, whose norms and embeddings did not.
    const base = loadHfModel(folder).tensors, merged = loadHfModel(join(job.dir, "hf_model_merged")).tensors;
    expect(merged.get("model.layers.1.mlp.down_proj.weight")!.data).not.toEqual(base.get("model.layers.1.mlp.down_proj.weight")!.data);
    expect(merged.get("model.embed_tokens.weight")!.data).toEqual(base.get("model.embed_tokens.weight")!.data);
    expect(merged.get("model.layers.0.input_layernorm.weight")!.data).toEqual(base.get("model.layers.0.input_layernorm.weight")!.data);
  }, 180_000);

  test("over sockets, each rank is sent the adapters alone, and the run is the shared-memory run", async () => {
    const config = configFor(folder, runDir, "worker.rollout.weight_transfer=socket", "trainer.total_steps=2");
    const job = createJob(config, "lora-socket");
    const result = await fit({ config, job, output: quiet, onNote: quiet });
    const metrics = new MetricsFile(job.metrics).read();
    // Two ranks, 4 bytes per adapter weight each, no header.
    expect(metrics.map((m) => m["perf/weight_sync_bytes"])).toEqual([2 * 4 * ADAPTER_FLOATS, 2 * 4 * ADAPTER_FLOATS]);
    expect(trainingMetrics(metrics)).toEqual(trainingMetrics(calm.metrics.slice(0, 2)));
    expect(result.steps).toBe(2);
  }, 120_000);

  test("a coordinator killed with SIGKILL mid-run resumes from the adapter checkpoint to the same adapters and metrics", async () => {
    const config = configFor(folder, runDir);
    const job = createJob(config, "lora-killed");
    // Past the first checkpoint (step 2), before the end.
    const { code, out: text } = await killMidRunAndResume(job.dir, job.metrics, 3, 120_000);
    expect(code, text).toBe(0);
    expect(text).toMatch(/resumed lora-killed from checkpoint step (2|4)/);
    const summary = JSON.parse(readFileSync(job.summary, "utf8")) as FitResult;
    expect(summary.weightsSha256).toBe(calm.result.weightsSha256);
    expect(trainingMetrics(new MetricsFile(job.metrics).read())).toEqual(trainingMetrics(calm.metrics));
    const bits = (dir: string) => Buffer.from(readFileSync(join(dir, "hf_model", "adapter_model.safetensors"))).toString("base64");
    expect(bits(job.dir)).toBe(bits(calm.dir));
  }, 240_000);
});
