/**
 * The Deno suite: a Qwen3 folder (q/k norms, a head_dim of its own) loads under Deno as under
 * Bun, computes the same log-probs as the model it was saved from, keeps its BF16 dtype on
 * export, and the same folder relabelled as Qwen2 is refused naming its q_norm/k_norm.
 * Run with `deno test -A tests/deno/`.
 */
import assert from "node:assert/strict";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { LlamaModelConfig } from "../../native/hf/config.ts";
import { checkFolderTensors, loadHfModel, ModelFolderError, paramsFromTensors, saveHfModel } from "../../native/hf/model_folder.ts";
import { bf16ToFloat32, float32ToBf16 } from "../../native/hf/safetensors.ts";
import { PolicyModel } from "../../native/policy_model.ts";
import { tempDir } from "../helpers/tmp.ts";

/** Qwen3's shape at toy size: 4 heads of 12 on a width of 32, q/k norms, tied, no biases. */
const QWEN3: LlamaModelConfig = {
  arch: "llama", vocab: 40, context: 16, width: 32, layers: 2, heads: 4, kvHeads: 2, intermediate: 48, ropeTheta: 1e6, normEps: 1e-6,
  tiedEmbeddings: true, attentionBias: false, headDim: 12, qkNorm: true, ropeScaling: null, seed: 4,
};

const batch = () => {
  const tokens = Int32Array.from({ length: 2 * 8 }, (_, i) => (i * 7 + 3) % QWEN3.vocab);
  return { tokens, mask: new Float32Array(tokens.length).fill(1), batch: 2, seqLen: 8 };
};

Deno.test("a BF16 Qwen3 folder loads: config, q/k norms, log-probs of the weights saved", async () => {
  const source = new PolicyModel(QWEN3, { device: "cpu" });
  // Weights exact in bf16, so the folder holds exactly what the source model computes with.
  const params = bf16ToFloat32(float32ToBf16(source.initialParams().map((v, i) => v + 0.05 * Math.sin(i))));
  const zeros = new Float32Array(params.length);
  await source.setState({ params, adamM: zeros, adamV: zeros, step: 0 });
  const dir = join(tempDir("revenant-deno-qwen3-"), "qwen3");
  saveHfModel(dir, QWEN3, source.tensors, params, { dtype: "BF16", eosTokenId: 2 });
  const want = await source.logprobs(batch());
  await source.dispose();

  const hf = loadHfModel(dir);
  assert.equal(hf.dtype, "BF16");
  assert.deepEqual(hf.hfConfig.architectures, ["Qwen3ForCausalLM"]);
  assert.deepEqual({ ...hf.config, seed: QWEN3.seed }, { ...QWEN3, valueHead: false });
  assert.deepEqual(hf.tensors.get("model.layers.1.self_attn.q_norm.weight")!.shape, [12]);
  assert.deepEqual(hf.tensors.get("model.layers.0.self_attn.o_proj.weight")!.shape, [32, 48]);
  const loaded = new PolicyModel(hf.config, { device: "cpu" });
  const got = paramsFromTensors(loaded.tensors, hf.tensors, { tied: true });
  await loaded.setState({ params: got, adamM: zeros, adamV: zeros, step: 0 });
  // Same weights, same model, same runtime code: bit-identical log-probs.
  assert.deepEqual(Array.from(await loaded.logprobs(batch())), Array.from(want));
  await loaded.dispose();
});

Deno.test("a Qwen3 folder relabelled as Qwen2 is refused naming q_norm and k_norm", () => {
  const model = new PolicyModel(QWEN3, { device: "null" });
  const dir = join(tempDir("revenant-deno-qwen3-"), "relabelled");
  saveHfModel(dir, QWEN3, model.tensors, model.initialParams());
  const path = join(dir, "config.json");
  writeFileSync(path, JSON.stringify({ ...JSON.parse(readFileSync(path, "utf8")), architectures: ["Qwen2ForCausalLM"], model_type: "qwen2" }));
  const { config } = loadHfModel(dir);
  assert.throws(() => checkFolderTensors(dir, config), (e: unknown) =>
    e instanceof ModelFolderError && e.message.includes('"model.layers.0.self_attn.q_norm.weight", "model.layers.0.self_attn.k_norm.weight"'));
});
