/**
 * The runtime's Llama-family model against an independent PyTorch reference
 * (tests/native/reference/llama_reference.py): Hugging Face folders the reference saves load
 * here, folders saved here load there bit-exactly, and the model's log-probs and PPO-loss
 * gradients agree with the reference's float64 ones.
 *
 * Needs /usr/bin/python3 with torch (skipped with the reason printed otherwise).
 *
 * Gradients come from the model's own optimizer state: one policyStep with beta1 = 0, lr = 0, no
 * weight decay and no clipping leaves the AdamW first moment equal to the raw gradient, bit for
 * bit (m = 0 * m + 1 * g), and the weights unchanged.
 */
import { beforeAll, describe, expect, test } from "bun:test";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { LlamaModelConfig } from "../../native/hf/config.ts";
import { isValueHeadTensor, loadHfModel, paramsFromTensors, saveHfModel } from "../../native/hf/model_folder.ts";
import { bf16ToFloat32, f16ToFloat32, float32ToBf16, float32ToF16, readSafetensors, writeSafetensors } from "../../native/hf/safetensors.ts";
import { PolicyModel } from "../../native/policy_model.ts";
import type { TensorInfo } from "../../native/types.ts";
import { tempDir } from "../helpers/tmp.ts";
import { PYTHON_TEST_MS, runReference, torchSkipReason } from "./reference/torch.ts";
import { rng, tokenBatch } from "./helpers.ts";
import { llamaTensorSpecs } from "./reference/llama_specs.ts";

const SEED = 7;

/** Log-probs: max |a - b| / max |b| over a case's entries. float32 compute vs float64 is ~1e-7. */
const LOGPROB_TOL = 1e-4;
/**
 * Gradients, per tensor: max |a - b| / max(max |b| over the tensor, 1e-2 * max |b| over the
 * model). The floor keeps a tensor whose gradient is tiny beside the model's (k biases, which
 * only RoPE keeps from vanishing) from being judged on float32 rounding noise alone. float32
 * torch against the float64 reference measures ~1e-6 with this norm.
 */
const GRAD_TOL = 1e-3;

interface ReferenceCase {
  name: string;
  folder: string;
  batch: { batch: number; seqLen: number; tokens: number[]; mask: number[]; advantages: number[]; oldLogprobs: number[]; refLogprobs: number[] };
  hyper: { clipRatio: number; klCoef: number; entropyCoef: number };
  logprobs: number[];
  loss: number;
  grads: Record<string, number[]>;
}

const python = (args: string[]) => runReference("llama_reference.py", args);

const pySkip = torchSkipReason();
if (pySkip !== null) console.warn(`hf_reference.test.ts: skipped: ${pySkip}`);

const bits = (a: Float32Array) => Array.from(new Uint32Array(a.buffer, a.byteOffset, a.length));
const maxAbs = (a: ArrayLike<number>) => Array.from(a).reduce((m, v) => Math.max(m, Math.abs(v)), 0);
const maxDiff = (a: ArrayLike<number>, b: ArrayLike<number>) => Array.from(a).reduce((m, v, i) => Math.max(m, Math.abs(v - b[i]!)), 0);

/** A loaded folder's weights in the tensor order of `specs`. */
function loadedParams(dir: string, specs: readonly TensorInfo[], config: LlamaModelConfig, fallback?: Float32Array): Float32Array {
  return paramsFromTensors(specs, loadHfModel(dir, { valueHead: config.valueHead }).tensors, { tied: config.tiedEmbeddings, optional: isValueHeadTensor, ...(fallback ? { fallback } : {}) });
}

/** The torch reference loads `dir` as transformers would and returns the weights it holds. */
function weightsSeenByTorch(dir: string, bf16Of?: string, f16Of?: string): Map<string, Float32Array> {
  const out = join(tempDir("hf-dump-"), "dump.safetensors");
  python(["dump", dir, out, ...(bf16Of ? ["--bf16-of", bf16Of] : []), ...(f16Of ? ["--f16-of", f16Of] : [])]);
  return new Map([...readSafetensors(out).tensors].map(([n, t]) => [n, t.data]));
}

/** Every causal-LM tensor of `specs` equals torch's, bit for bit. */
function expectTorchHolds(torch: Map<string, Float32Array>, specs: readonly TensorInfo[], params: Float32Array): void {
  const lm = specs.filter((s) => !isValueHeadTensor(s.name));
  expect([...torch.keys()].sort()).toEqual(lm.map((s) => s.name).sort());
  for (const s of lm) expect([s.name, bits(torch.get(s.name)!)]).toEqual([s.name, bits(params.subarray(s.offset, s.offset + s.size))]);
}

/**
 * Loads `params` into `model` and checks its log-probs (all tokens scored), its PPO loss and its
 * gradient of that loss against the reference case, with the tolerances above.
 */
async function expectMatchesReference(model: PolicyModel, params: Float32Array, c: ReferenceCase): Promise<void> {
  const zeros = new Float32Array(model.numParams);
  model.setState({ params, adamM: zeros, adamV: zeros, step: 0 });
  const b = c.batch;
  const tokens = Int32Array.from(b.tokens);
  const lp = await model.logprobs({ tokens, mask: new Float32Array(tokens.length).fill(1), batch: b.batch, seqLen: b.seqLen });
  const lpErr = maxDiff(lp, c.logprobs) / maxAbs(c.logprobs);
  expect([c.name, "logprobs", lpErr <= LOGPROB_TOL ? "ok" : lpErr]).toEqual([c.name, "logprobs", "ok"]);
  const stats = await model.policyStep(
    { tokens, batch: b.batch, seqLen: b.seqLen, mask: Float32Array.from(b.mask), advantages: Float32Array.from(b.advantages), oldLogprobs: Float32Array.from(b.oldLogprobs), refLogprobs: Float32Array.from(b.refLogprobs) },
    { ...c.hyper, lr: 0, beta1: 0, weightDecay: 0, maxGradNorm: 0 },
  );
  const lossErr = Math.abs(stats.loss - c.loss) / Math.max(1, Math.abs(c.loss));
  expect([c.name, "loss", lossErr <= LOGPROB_TOL ? "ok" : lossErr]).toEqual([c.name, "loss", "ok"]);
  const state = await model.getState();
  expect(bits(state.params)).toEqual(bits(params)); // lr 0: the step read the gradient, changed nothing
  const floor = 1e-2 * maxAbs(Object.values(c.grads).flat());
  expect(model.tensors.map((s) => s.name).sort()).toEqual(Object.keys(c.grads).sort());
  for (const s of model.tensors) {
    const want = c.grads[s.name]!;
    const err = maxDiff(state.adamM.subarray(s.offset, s.offset + s.size), want) / Math.max(maxAbs(want), floor);
    expect([c.name, s.name, err <= GRAD_TOL ? "ok" : err]).toEqual([c.name, s.name, "ok"]);
  }
}

/** Weights spread like trained ones (the built-in init's 0.02 leaves the logits nearly flat). */
function spreadParams(specs: readonly TensorInfo[], seed: number): Float32Array {
  const r = rng(seed);
  const params = new Float32Array(specs.reduce((n, s) => Math.max(n, s.offset + s.size), 0));
  for (const s of specs) {
    const isNormWeight = s.shape.length === 1 && /ln\w*\.w$/.test(s.name);
    const scale = s.shape.length === 2 ? 1 / Math.sqrt(s.shape[1]!) : 0.2;
    for (let i = s.offset; i < s.offset + s.size; i++) params[i] = (isNormWeight ? 1 : 0) + scale * (2 * r() - 1) * Math.sqrt(3);
  }
  return params;
}

describe.skipIf(pySkip !== null)("Hugging Face folders against the PyTorch reference", () => {
  let root = "";
  let cases: ReferenceCase[] = [];

  beforeAll(() => {
    root = tempDir("hf-ref-");
    python(["generate", root, "--seed", String(SEED)]);
    cases = JSON.parse(readFileSync(join(root, "reference.json"), "utf8")).cases;
  }, PYTHON_TEST_MS);

  test("the reference's folders load: configs map, tensors match the Llama contract, shards and bf16 agree", () => {
    const load = (name: string) => loadHfModel(join(root, name));
    const llama = load("llama_gqa"), qwen = load("qwen2_tied");
    expect(llama.config).toMatchObject({ arch: "llama", vocab: 64, width: 32, heads: 4, kvHeads: 2, intermediate: 48, tiedEmbeddings: false, attentionBias: false, context: 64, normEps: 1e-5 });
    expect(qwen.config).toMatchObject({ vocab: 48, kvHeads: 1, tiedEmbeddings: true, attentionBias: true, context: 32, ropeTheta: 1e6 });
    const llamaParams = paramsFromTensors(llamaTensorSpecs(llama.config), llama.tensors);
    const shardedSpecs = llamaTensorSpecs(load("llama_gqa_sharded").config);
    expect(bits(paramsFromTensors(shardedSpecs, load("llama_gqa_sharded").tensors))).toEqual(bits(llamaParams));
    // torch rounded the bf16 folder's weights; our rounding of the f32 weights must agree.
    const qwenSpecs = llamaTensorSpecs(qwen.config);
    const qwenParams = paramsFromTensors(qwenSpecs, qwen.tensors, { tied: true });
    const bf16 = paramsFromTensors(qwenSpecs, load("qwen2_tied_bf16").tensors, { tied: true });
    expect(bits(bf16)).toEqual(bits(bf16ToFloat32(float32ToBf16(qwenParams))));
    // Qwen3: q/k norms and 4 heads of 12 on a width of 32; Llama 3.2: tied, rope scaling llama3.
    const qwen3 = load("qwen3_tied"), llama3 = load("llama3_tied");
    expect(qwen3.config).toMatchObject({ width: 32, heads: 4, kvHeads: 2, headDim: 12, qkNorm: true, attentionBias: false, tiedEmbeddings: true, ropeScaling: null });
    expect(qwen3.tensors.get("model.layers.0.self_attn.o_proj.weight")!.shape).toEqual([32, 48]);
    expect(qwen3.tensors.get("model.layers.1.self_attn.k_norm.weight")!.shape).toEqual([12]);
    expect(llama3.config).toMatchObject({ headDim: 8, qkNorm: false, tiedEmbeddings: true, ropeScaling: { factor: 8, lowFreqFactor: 1, highFreqFactor: 4, originalContext: 64 } });
    for (const name of ["qwen3_tied", "llama3_tied"]) {
      const f32 = load(name), specs = llamaTensorSpecs(f32.config);
      const rounded = bf16ToFloat32(float32ToBf16(paramsFromTensors(specs, f32.tensors, { tied: true })));
      expect([name, bits(paramsFromTensors(specs, load(`${name}_bf16`).tensors, { tied: true }))]).toEqual([name, bits(rounded)]);
    }
    // torch's F16 folder: what we read is torch's rounding of the f32 weights, and the folder says F16.
    const f16 = load("qwen3_tied_f16"), specs = llamaTensorSpecs(qwen3.config);
    expect(f16.dtype).toBe("F16");
    expect(bits(paramsFromTensors(specs, f16.tensors, { tied: true }))).toEqual(bits(f16ToFloat32(float32ToF16(paramsFromTensors(specs, qwen3.tensors, { tied: true })))));
  }, PYTHON_TEST_MS);

  test("folders saved here load in torch as transformers would: f32 bit-exact, bf16 and f16 as torch rounds", () => {
    for (const name of ["llama_gqa", "qwen2_tied", "qwen3_tied", "llama3_tied"]) {
      const hf = loadHfModel(join(root, name));
      const specs = llamaTensorSpecs(hf.config);
      const params = paramsFromTensors(specs, hf.tensors, { tied: hf.config.tiedEmbeddings });
      // Perturbed so the check does not pass by copying the input files.
      for (let i = 0; i < params.length; i++) params[i] = params[i]! * 1.0009765625 + 1e-3 * Math.sin(i);
      const f32Dir = join(tempDir("hf-save-"), name);
      const bf16Dir = join(tempDir("hf-save-"), name);
      saveHfModel(f32Dir, hf.config, specs, params, { bosTokenId: 1, eosTokenId: 2 });
      saveHfModel(bf16Dir, hf.config, specs, params, { dtype: "BF16" });
      expectTorchHolds(weightsSeenByTorch(f32Dir), specs, params);
      expectTorchHolds(weightsSeenByTorch(bf16Dir, f32Dir), specs, bf16ToFloat32(float32ToBf16(params)));
    }
    // F16 written here is torch's own rounding, torch_dtype float16; values at the rounding
    // boundaries are included so that ties, subnormals and the top of the range count (past it,
    // saveHfModel refuses: tests/native/hf_model_folder.test.ts).
    const hf = loadHfModel(join(root, "qwen3_tied"));
    const specs = llamaTensorSpecs(hf.config);
    const params = paramsFromTensors(specs, hf.tensors, { tied: true });
    const edge = [65504, 65519.99, -65504, 65505, 2 ** -24, 2 ** -25, 3 * 2 ** -26, 1 + 2 ** -11, 1 + 3 * 2 ** -11, -0];
    params.set(edge, 0);
    const f32Dir = join(tempDir("hf-save-"), "qwen3_f32"), f16Dir = join(tempDir("hf-save-"), "qwen3_f16");
    saveHfModel(f32Dir, hf.config, specs, params);
    saveHfModel(f16Dir, hf.config, specs, params, { dtype: "F16" });
    expectTorchHolds(weightsSeenByTorch(f16Dir, undefined, f32Dir), specs, f16ToFloat32(float32ToF16(params)));
  }, PYTHON_TEST_MS);

  test("log-probs, PPO loss and gradients match the float64 reference", async () => {
    for (const c of cases) {
      const { config } = loadHfModel(join(root, c.folder));
      const model = new PolicyModel(config, { device: "cpu" });
      await expectMatchesReference(model, loadedParams(join(root, c.folder), model.tensors, config), c);
      model.dispose();
    }
  }, PYTHON_TEST_MS);

  test("the reference's PPO loss and position convention hold for the built-in GPT-2 style model", async () => {
    const model = new PolicyModel({ vocab: 24, context: 12, width: 16, layers: 2, heads: 4, seed: 3 }, { device: "cpu" });
    const dir = tempDir("hf-gpt2-");
    const params = spreadParams(model.tensors, SEED);
    writeSafetensors(join(dir, "params.safetensors"), new Map(model.tensors.map((s) => [s.name, { shape: [...s.shape], data: params.subarray(s.offset, s.offset + s.size) }])));
    writeFileSync(join(dir, "config.json"), JSON.stringify(model.config));
    python(["gpt2", dir, "--seed", String(SEED)]);
    const [c] = JSON.parse(readFileSync(join(dir, "reference.json"), "utf8")).cases as ReferenceCase[];
    await expectMatchesReference(model, params, c!);
    model.dispose();
  }, PYTHON_TEST_MS);

  test("load, one policyStep, save: torch holds the trained weights bit-exactly, the value head comes back", async () => {
    for (const name of ["llama_gqa", "qwen2_tied", "qwen3_tied", "llama3_tied"]) {
      const { config } = loadHfModel(join(root, name), { valueHead: true, seed: 11 });
      const model = new PolicyModel(config, { device: "cpu" });
      const init = await model.getState();
      model.setState({ ...init, params: loadedParams(join(root, name), model.tensors, config, init.params) });
      const batch = tokenBatch(SEED, 2, 8, config.vocab);
      const lp = await model.logprobs(batch);
      const advantages = new Float32Array(lp.length).map((_, i) => (i % 3) - 1);
      await model.policyStep({ ...batch, advantages, oldLogprobs: lp }, { lr: 1e-2 });
      const trained = (await model.getState()).params;
      const dir = join(tempDir("hf-trained-"), name);
      saveHfModel(dir, config, model.tensors, trained);
      expectTorchHolds(weightsSeenByTorch(dir), model.tensors, trained);
      expect(bits(loadedParams(dir, model.tensors, config))).toEqual(bits(trained));
      model.dispose();
    }
  }, PYTHON_TEST_MS);
});
