/**
 * LoRA adapters from TypeScript: config checks, a fresh adapter computing the base, the frozen base
 * as the reference policy, adapter-only state and weight copies, PEFT's folder layout, and the
 * forward, the PPO-loss gradients and the merged export against an independent float64 PyTorch
 * reference (tests/native/reference/lora_reference.py, skipped with the reason printed when
 * /usr/bin/python3 has no torch).
 *
 * Gradients are read as hf_reference.test.ts reads them: one policyStep with beta1 = 0, lr = 0, no
 * weight decay and no clipping leaves the AdamW first moment equal to the raw gradient.
 */
import { beforeAll, describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import type { LlamaModelConfig } from "../../native/hf/config.ts";
import { loadHfModel, paramsFromTensors, saveHfModel } from "../../native/hf/model_folder.ts";
import { ADAPTER_CONFIG_FILE, ADAPTER_WEIGHTS_FILE, mergeLora, PEFT_PREFIX, savePeftAdapter } from "../../native/hf/peft.ts";
import { readSafetensors } from "../../native/hf/safetensors.ts";
import { InvalidArgumentError, PolicyModel, type PolicyModelConfig } from "../../native/policy_model.ts";
import { tempDir } from "../helpers/tmp.ts";
import { PYTHON_TEST_MS, runReference, torchSkipReason } from "./reference/torch.ts";
import { rng, tokenBatch } from "./helpers.ts";

/** Log-probs: max |a - b| / max |b|; float32 compute against float64 measures ~1e-7. */
const LOGPROB_TOL = 1e-4;
/**
 * Gradients, per adapter tensor: max |a - b| / max(max |b| over the tensor, 1e-2 * max |b| over
 * all adapters), as hf_reference.test.ts judges whole-model gradients (float32 measures ~1e-6).
 */
const GRAD_TOL = 1e-3;
/**
 * The merged folder against W + scale·B·A in float64: each entry is rounded once to float32, a
 * relative error of at most 2^-24 of the entry, so at most ~6e-8 of the tensor's largest entry.
 */
const MERGE_TOL = 1e-7;

const TINY: PolicyModelConfig = {
  arch: "llama", vocab: 11, context: 8, width: 16, layers: 2, heads: 4, kvHeads: 2, intermediate: 24, ropeTheta: 100, seed: 9,
};

const bits = (a: Float32Array) => Array.from(new Uint32Array(a.buffer, a.byteOffset, a.length));
const maxAbs = (a: ArrayLike<number>) => Array.from(a).reduce((m, v) => Math.max(m, Math.abs(v)), 0);
const maxDiff = (a: ArrayLike<number>, b: ArrayLike<number>) => Array.from(a).reduce((m, v, i) => Math.max(m, Math.abs(v - b[i]!)), 0);

/** Adapters with B drawn too (a fresh B is 0, which leaves A's gradient 0: nothing to compare). */
function randomAdapters(n: number, seed: number, scale = 0.3): Float32Array {
  const r = rng(seed);
  return new Float32Array(n).map(() => scale * (2 * r() - 1));
}

const policyBatch = (seed: number, vocab: number, B: number, T: number) => {
  const b = tokenBatch(seed, B, T, vocab);
  const r = rng(seed + 1);
  const n = B * T;
  return { ...b, advantages: new Float32Array(n).map(() => 2 * r() - 1), oldLogprobs: new Float32Array(n).fill(-2.4), refLogprobs: new Float32Array(n).fill(-2.4) };
};

describe("LoRA on the native model", () => {
  test("config: lora is llama-only, rank/alpha/modules checked with the allowed values named", () => {
    const bad = (cfg: PolicyModelConfig, needle: RegExp) => expect(() => new PolicyModel(cfg, { device: "cpu" })).toThrow(needle);
    bad({ ...TINY, arch: "gpt2", kvHeads: undefined, intermediate: undefined, ropeTheta: undefined, lora: { rank: 4 } }, /config\.lora.*only arch "llama" takes lora/);
    bad({ ...TINY, lora: { rank: 2000 } }, /config\.lora\.rank.*0\.\.1024/);
    bad({ ...TINY, lora: { rank: 4, alpha: -1 } }, /config\.lora\.alpha.*> 0/);
    bad({ ...TINY, lora: { rank: 4, modules: ["qproj" as never] } }, /config\.lora\.modules\[0\].*one of q_proj/);
    bad({ ...TINY, lora: { rank: 4, modules: [] } }, /config\.lora\.modules.*non-empty/);
    bad({ ...TINY, lora: { rank: 4, dropout: 1 } }, /config\.lora\.dropout.*probability in \[0, 1\)/);
    bad({ ...TINY, valueHead: true, lora: { rank: 4 } }, /value head/);
    expect(() => new PolicyModel({ ...TINY, lora: { rank: 4 } }, { device: "null" })).toThrow(/null backend/);
    const m = new PolicyModel({ ...TINY, lora: { rank: 4, modules: ["v_proj", "q_proj"] } }, { device: "cpu" });
    // Resolved: alpha 2 × rank, modules in the model's order whatever order they were given in.
    expect(m.config.lora).toEqual({ rank: 4, alpha: 8, rslora: false, modules: ["q_proj", "v_proj"], dropout: 0, bf16Base: false });
    expect(m.loraTensors.map((t) => [t.name, t.shape])).toEqual([0, 1].flatMap((l) => [
      [`model.layers.${l}.self_attn.q_proj.lora_A.weight`, [4, 16]], [`model.layers.${l}.self_attn.q_proj.lora_B.weight`, [16, 4]],
      [`model.layers.${l}.self_attn.v_proj.lora_A.weight`, [4, 16]], [`model.layers.${l}.self_attn.v_proj.lora_B.weight`, [8, 4]],
    ]));
    expect(m.numTrained).toBe(2 * (4 * 16 + 16 * 4 + 4 * 16 + 8 * 4));
  });

  test("fresh adapters compute the base; steps train the adapters alone; adapters off is the base, the reference", async () => {
    const base = new PolicyModel(TINY, { device: "cpu" });
    const lora = new PolicyModel({ ...TINY, lora: { rank: 4 } }, { device: "cpu" });
    const weights = new Float32Array(base.numParams);
    await base.copyParamsTo(weights);
    await lora.loadBaseFrom(weights);
    const b = policyBatch(3, TINY.vocab, 3, TINY.context);
    const baseLp = await base.logprobs(b);
    expect(bits(await lora.logprobs(b))).toEqual(bits(baseLp)); // B = 0: + 0.0 everywhere
    for (let i = 0; i < 3; i++) await lora.policyStep(b, { lr: 1e-2, klCoef: 0.1 });
    const after = new Float32Array(lora.numParams);
    await lora.copyBaseTo(after);
    expect(bits(after)).toEqual(bits(weights));
    expect(bits(await lora.logprobs(b))).not.toEqual(bits(baseLp));
    expect(bits(await lora.logprobs(b, { adapters: false }))).toEqual(bits(baseLp));
    // State and weight copies are the adapters: a second model given them (and the base) agrees bit for bit.
    const state = await lora.getState();
    expect(state.params.length).toBe(lora.numTrained);
    const twin = new PolicyModel({ ...TINY, lora: { rank: 4 } }, { device: "cpu" });
    await twin.loadBaseFrom(weights);
    await twin.loadParamsFrom(state.params);
    expect(bits(await twin.logprobs(b))).toEqual(bits(await lora.logprobs(b)));
    expect(() => twin.setState({ ...state, params: new Float32Array(twin.numParams) })).toThrow(/LoRA adapter count/);
    expect(() => base.setState(state)).toThrow(InvalidArgumentError);
  });

  test("dropout: policy steps are a function of hyper.dropoutSeed; scoring drops nothing", async () => {
    const make = async () => {
      const m = new PolicyModel({ ...TINY, lora: { rank: 4, dropout: 0.3 } }, { device: "cpu" });
      const n = m.numTrained;
      await m.setState({ params: randomAdapters(n, 4), adamM: new Float32Array(n), adamV: new Float32Array(n), step: 0 });
      return m;
    };
    const [a, b, c] = [await make(), await make(), await make()];
    const plain = new PolicyModel({ ...TINY, lora: { rank: 4 } }, { device: "cpu" });
    await plain.loadParamsFrom((await a.getState()).params);
    const batch = policyBatch(5, TINY.vocab, 2, TINY.context);
    expect(bits(await a.logprobs(batch))).toEqual(bits(await plain.logprobs(batch)));
    const step = (m: PolicyModel, dropoutSeed: number) => m.policyStep(batch, { lr: 1e-2, dropoutSeed });
    const [sa, sb, sc] = [await step(a, 7), await step(b, 7), await step(c, 8)];
    expect(sa).toEqual(sb);
    expect(bits((await a.getState()).params)).toEqual(bits((await b.getState()).params));
    expect(sc.loss).not.toBe(sa.loss);
    expect(() => a.policyStep(batch, { dropoutSeed: -1 })).toThrow(/hyper\.dropoutSeed/);
  });

  test("PEFT layout: adapter_config.json keys and adapter_model.safetensors names and shapes", async () => {
    const m = new PolicyModel({ ...TINY, lora: { rank: 2, alpha: 5, rslora: true, dropout: 0.05 } }, { device: "cpu" });
    const dir = tempDir("peft-");
    const names = savePeftAdapter(dir, { lora: m.config.lora!, tensors: m.loraTensors, adapters: (await m.getState()).params, baseModel: "base-folder" });
    const cfg = JSON.parse(readFileSync(join(dir, ADAPTER_CONFIG_FILE), "utf8"));
    expect(cfg).toMatchObject({
      peft_type: "LORA", task_type: "CAUSAL_LM", r: 2, lora_alpha: 5, lora_dropout: 0.05, use_rslora: true, base_model_name_or_path: "base-folder",
      target_modules: ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"],
    });
    const file = readSafetensors(join(dir, ADAPTER_WEIGHTS_FILE));
    expect([...file.tensors.keys()].sort()).toEqual([...names].sort());
    const out = { q_proj: 16, k_proj: 8, v_proj: 8, o_proj: 16, gate_proj: 24, up_proj: 24, down_proj: 16 } as const;
    const inp = { q_proj: 16, k_proj: 16, v_proj: 16, o_proj: 16, gate_proj: 16, up_proj: 16, down_proj: 24 } as const;
    expect(file.tensors.size).toBe(2 * 7 * 2);
    for (const [name, t] of file.tensors) {
      const match = /^base_model\.model\.model\.layers\.(\d)\.(self_attn|mlp)\.(\w+_proj)\.lora_(A|B)\.weight$/.exec(name);
      expect(match).not.toBeNull();
      const mod = match![3] as keyof typeof out;
      expect(match![2]).toBe(mod.endsWith("_proj") && ["gate_proj", "up_proj", "down_proj"].includes(mod) ? "mlp" : "self_attn");
      expect([name, t.shape]).toEqual([name, match![4] === "A" ? [2, inp[mod]] : [out[mod], 2]]);
    }
    expect(names.every((n) => n.startsWith(PEFT_PREFIX))).toBe(true);
  });
});

const python = (args: string[]) => runReference("lora_reference.py", args);

const pySkip = torchSkipReason();
if (pySkip !== null) console.warn(`lora.test.ts: PyTorch reference skipped: ${pySkip}`);

interface LoraReference {
  batch: { batch: number; seqLen: number; tokens: number[]; mask: number[]; advantages: number[]; oldLogprobs: number[]; refLogprobs: number[] };
  hyper: { clipRatio: number; klCoef: number; entropyCoef: number };
  logprobs: number[];
  loss: number;
  grads: Record<string, number[]>;
  merged_error: number;
}

describe("LoRA on a bfloat16 base", () => {
  // What a bfloat16 base holds as bfloat16: the projections, the token embedding and the LM head.
  const held16 = (name: string) => name.endsWith("_proj.weight") || name === "model.embed_tokens.weight" || name === "lm_head.weight";

  test("a BF16 folder's base is held as bfloat16 (2 bytes per projection, embedding and head weight) and computes what the float32 base of the same weights does", async () => {
    const init = new PolicyModel(TINY, { device: "cpu" });
    const weights = new Float32Array(init.numParams).map(() => 0); // filled below, 0.3 · U(-1, 1)
    const r = rng(41);
    weights.forEach((_, i) => { weights[i] = 0.3 * (2 * r() - 1); });
    const dir = join(tempDir("revenant-lora-bf16-"), "base");
    saveHfModel(dir, { ...TINY, normEps: 1e-5, tiedEmbeddings: false, attentionBias: false } as LlamaModelConfig, init.tensors, weights, { dtype: "BF16" });
    const hf = loadHfModel(dir);
    expect(hf.dtype).toBe("BF16");
    const base = paramsFromTensors(init.tensors, hf.tensors, { tied: false });
    const wide = new PolicyModel({ ...TINY, lora: { rank: 4 } }, { device: "cpu" });
    const narrow = new PolicyModel({ ...TINY, lora: { rank: 4, bf16Base: true } }, { device: "cpu" });
    for (const m of [wide, narrow]) await m.loadBaseFrom(base);
    // The allocator's view, as the model counts it: 4 bytes per weight, 2 per weight held as bfloat16.
    const matrices = init.tensors.filter((t) => held16(t.name)).reduce((n, t) => n + t.size, 0);
    expect(wide.baseBytes).toBe(4 * init.numParams);
    expect(narrow.baseBytes).toBe(4 * (init.numParams - matrices) + 2 * matrices);
    expect(narrow.baseBytes / wide.baseBytes).toBeLessThan(0.52); // only TINY's norms stay float32
    const back = new Float32Array(narrow.numParams);
    await narrow.copyBaseTo(back);
    expect(bits(back)).toEqual(bits(base)); // a BF16 folder's values are bfloat16 already: held exactly
    const adapters = randomAdapters(wide.numTrained, 6);
    for (const m of [wide, narrow]) await m.loadParamsFrom(adapters);
    const b = policyBatch(8, TINY.vocab, 3, TINY.context);
    expect(bits(await narrow.logprobs(b))).toEqual(bits(await wide.logprobs(b)));
    expect(bits(await narrow.logprobs(b, { adapters: false }))).toEqual(bits(await wide.logprobs(b, { adapters: false })));
    // The adapters' gradients (beta1 = 0, lr = 0: the first moment is the raw gradient), which flow
    // through every frozen matrix's input gradient.
    const grad = async (m: PolicyModel) => {
      await m.policyStep(b, { lr: 0, beta1: 0, weightDecay: 0, maxGradNorm: 0, klCoef: 0.1 });
      return (await m.getState()).adamM;
    };
    expect(bits(await grad(narrow))).toEqual(bits(await grad(wide)));
    const prompts = [Int32Array.from([1, 2, 3]), Int32Array.from([4])];
    const gen = (m: PolicyModel) => m.generate(prompts, { maxNewTokens: 4, temperature: 1, seed: 5 });
    const [g16, g32] = [await gen(narrow), await gen(wide)];
    expect([Array.from(g16.tokens), bits(g16.logprobs)]).toEqual([Array.from(g32.tokens), bits(g32.logprobs)]);
    for (const m of [init, wide, narrow]) m.dispose();
  });

  test("a bf16Base that is not a boolean is refused, naming the key", () => {
    expect(() => new PolicyModel({ ...TINY, lora: { rank: 4, bf16Base: "yes" as never } }, { device: "cpu" })).toThrow(/config\.lora\.bf16Base/);
  });
});

describe.skipIf(pySkip !== null)("LoRA against the PyTorch reference", () => {
  let root = "";
  beforeAll(() => {
    root = tempDir("lora-ref-");
    python(["base", root, "--seed", "3"]);
  }, PYTHON_TEST_MS);

  for (const [folder, lora] of [
    ["llama_gqa", { rank: 4, alpha: 8 }],
    ["qwen3_tied", { rank: 3, alpha: 5, rslora: true, modules: ["q_proj", "k_proj", "o_proj", "up_proj", "down_proj"] }],
  ] as const) {
    test(`${folder}: log-probs, PPO-loss gradients of every lora_A/lora_B, and the merged folder (${JSON.stringify(lora)})`, async () => {
      const base = join(root, folder);
      const hf = loadHfModel(base);
      const model = new PolicyModel({ ...hf.config, lora: { ...lora, modules: "modules" in lora ? [...lora.modules] : undefined } }, { device: "cpu" });
      const weights = paramsFromTensors(model.tensors, hf.tensors, { tied: hf.config.tiedEmbeddings });
      await model.loadBaseFrom(weights);
      const adapters = randomAdapters(model.numTrained, 17);
      const zeros = new Float32Array(model.numTrained);
      await model.setState({ params: adapters, adamM: zeros, adamV: zeros, step: 0 });
      const adapterDir = join(root, `${folder}-adapter`), mergedDir = join(root, `${folder}-merged`);
      savePeftAdapter(adapterDir, { lora: model.config.lora!, tensors: model.loraTensors, adapters, baseModel: base });
      saveHfModel(mergedDir, model.config as LlamaModelConfig, model.tensors, mergeLora(model.tensors, weights, model.config.lora!, model.loraTensors, adapters));
      const out = join(root, `${folder}-reference.json`);
      python(["case", base, adapterDir, out, "--seed", "5", "--merged", mergedDir]);
      const c = JSON.parse(readFileSync(out, "utf8")) as LoraReference;

      const b = c.batch;
      const tokens = Int32Array.from(b.tokens);
      const lp = await model.logprobs({ tokens, mask: new Float32Array(tokens.length).fill(1), batch: b.batch, seqLen: b.seqLen });
      const lpErr = maxDiff(lp, c.logprobs) / maxAbs(c.logprobs);
      expect(["logprobs", lpErr <= LOGPROB_TOL ? "ok" : lpErr]).toEqual(["logprobs", "ok"]);
      const stats = await model.policyStep(
        { tokens, batch: b.batch, seqLen: b.seqLen, mask: Float32Array.from(b.mask), advantages: Float32Array.from(b.advantages), oldLogprobs: Float32Array.from(b.oldLogprobs), refLogprobs: Float32Array.from(b.refLogprobs) },
        { ...c.hyper, lr: 0, beta1: 0, weightDecay: 0, maxGradNorm: 0 },
      );
      const lossErr = Math.abs(stats.loss - c.loss) / Math.max(1, Math.abs(c.loss));
      expect(["loss", lossErr <= LOGPROB_TOL ? "ok" : lossErr]).toEqual(["loss", "ok"]);
      const state = await model.getState();
      expect(bits(state.params)).toEqual(bits(adapters)); // lr 0: the step read the gradient, changed nothing
      expect(model.loraTensors.map((t) => PEFT_PREFIX + t.name).sort()).toEqual(Object.keys(c.grads).sort());
      const floor = 1e-2 * maxAbs(Object.values(c.grads).flat());
      for (const t of model.loraTensors) {
        const want = c.grads[PEFT_PREFIX + t.name]!;
        const err = maxDiff(state.adamM.subarray(t.offset, t.offset + t.size), want) / Math.max(maxAbs(want), floor);
        expect([t.name, err <= GRAD_TOL ? "ok" : err]).toEqual([t.name, "ok"]);
      }
      expect(["merged", c.merged_error <= MERGE_TOL ? "ok" : c.merged_error]).toEqual(["merged", "ok"]);
    }, PYTHON_TEST_MS);
  }
});
