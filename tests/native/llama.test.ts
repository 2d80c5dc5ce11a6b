/**
 * Arch "llama" of PolicyModel on the CPU backend: config validation, Hugging Face tensor names and
 * shapes, the forward pass against a float64 reference written from Hugging Face's Llama/Qwen2
 * definitions (RMSNorm, rotate_half RoPE, grouped-query attention, SwiGLU, q/k/v biases, tying),
 * learning, cached generation against logprobs(), state round trips, and determinism across
 * thread counts.
 */
import { describe, expect, test } from "bun:test";
import { join } from "node:path";
import { llamaTensors } from "../../native/null_backend.ts";
import { InvalidArgumentError, PolicyModel, type PolicyModelConfig, type TensorInfo } from "../../native/policy_model.ts";
import { fingerprint, rng, tokenBatch } from "./helpers.ts";

/** Grouped-query attention (4 query heads over 2 kv heads) with Qwen2's q/k/v biases, untied. */
const GQA_BIAS: PolicyModelConfig = {
  vocab: 11, context: 10, width: 16, layers: 2, heads: 4, arch: "llama", kvHeads: 2, intermediate: 24,
  ropeTheta: 50, normEps: 1e-5, attentionBias: true, seed: 5,
};
/** One kv head, tied embeddings, no biases (Llama 3.2 / SmolLM style). */
const TIED: PolicyModelConfig = { ...GQA_BIAS, kvHeads: 1, attentionBias: false, tiedEmbeddings: true, normEps: 1e-6, seed: 6 };

const llama = (extra: Partial<PolicyModelConfig> = {}, base = GQA_BIAS) => new PolicyModel({ ...base, ...extra }, { device: "cpu" });

function tensor(m: PolicyModel, params: Float32Array, name: string): Float32Array {
  const t = m.tensors.find((x) => x.name === name);
  if (!t) throw new Error(`no tensor ${name}`);
  return params.subarray(t.offset, t.offset + t.size);
}

/** Random weights everywhere (norm scales and biases too), so every tensor shows in the output. */
function randomize(m: PolicyModel, seed: number, scale = 0.3): Float32Array {
  const r = rng(seed);
  const params = new Float32Array(m.numParams).map(() => (r() - 0.5) * 2 * scale);
  for (const t of m.tensors) if (t.name.endsWith("layernorm.weight") || t.name === "model.norm.weight") {
    for (let i = t.offset; i < t.offset + t.size; i++) params[i] = 1 + params[i]!;
  }
  m.setState({ params, adamM: new Float32Array(m.numParams), adamV: new Float32Array(m.numParams), step: 0 });
  return params;
}

/**
 * log p(token t | tokens < t) for one sequence, in float64, straight from Hugging Face's
 * LlamaForCausalLM / Qwen2ForCausalLM forward: RMSNorm `w * x * rsqrt(mean(x^2) + eps)`; q/k/v
 * projections (+ bias); RoPE `x * cos + rotate_half(x) * sin` with rotate_half(x) = [-x2, x1] and
 * inv_freq[i] = theta^(-2i/hd); repeat_kv (query head h reads kv head floor(h / (NH / NKV)));
 * softmax(q k^T / sqrt(hd)) causal; o_proj; down(silu(gate) * up); final norm; lm_head.
 */
function referenceLogprobs(m: PolicyModel, params: Float32Array, tokens: number[]): number[] {
  const c = m.config;
  const C = c.width, NH = c.heads, NKV = c.kvHeads, hd = C / NH, I = c.intermediate, T = tokens.length;
  const w = (name: string) => tensor(m, params, name);
  const linear = (x: number[], weight: Float32Array, out: number, bias?: Float32Array) =>
    Array.from({ length: out }, (_, o) => x.reduce((s, v, i) => s + v * weight[o * x.length + i]!, bias ? bias[o]! : 0));
  const rms = (x: number[], weight: Float32Array) => {
    const r = 1 / Math.sqrt(x.reduce((s, v) => s + v * v, 0) / x.length + c.normEps);
    return x.map((v, i) => weight[i]! * (v * r));
  };
  const rope = (x: number[], pos: number) =>
    x.map((v, j) => {
      const head = Math.floor(j / hd), d = j % hd, i = d % (hd / 2);
      const angle = pos * c.ropeTheta ** (-2 * i / hd);
      const rotated = d < hd / 2 ? -x[head * hd + d + hd / 2]! : x[head * hd + d - hd / 2]!;
      return v * Math.cos(angle) + rotated * Math.sin(angle);
    });
  const embed = w("model.embed_tokens.weight");
  let x = tokens.map((t) => Array.from(embed.subarray(t * C, (t + 1) * C)));
  for (let l = 0; l < c.layers; l++) {
    const p = `model.layers.${l}.`;
    const bias = (n: string) => (c.attentionBias ? w(`${p}self_attn.${n}_proj.bias`) : undefined);
    const h = x.map((r) => rms(r, w(`${p}input_layernorm.weight`)));
    const q = h.map((r, t) => rope(linear(r, w(`${p}self_attn.q_proj.weight`), NH * hd, bias("q")), t));
    const k = h.map((r, t) => rope(linear(r, w(`${p}self_attn.k_proj.weight`), NKV * hd, bias("k")), t));
    const v = h.map((r) => linear(r, w(`${p}self_attn.v_proj.weight`), NKV * hd, bias("v")));
    const attn = q.map((qt, t) => {
      const o = new Array<number>(C).fill(0);
      for (let head = 0; head < NH; head++) {
        const g = Math.floor(head / (NH / NKV));
        const scores = Array.from({ length: t + 1 }, (_, t2) => {
          let s = 0;
          for (let i = 0; i < hd; i++) s += qt[head * hd + i]! * k[t2]![g * hd + i]!;
          return s / Math.sqrt(hd);
        });
        const max = Math.max(...scores);
        const e = scores.map((s) => Math.exp(s - max));
        const z = e.reduce((a, b) => a + b, 0);
        for (let t2 = 0; t2 <= t; t2++) for (let i = 0; i < hd; i++) o[head * hd + i]! += (e[t2]! / z) * v[t2]![g * hd + i]!;
      }
      return o;
    });
    x = x.map((r, t) => {
      const y = linear(attn[t]!, w(`${p}self_attn.o_proj.weight`), C).map((a, i) => r[i]! + a);
      const h2 = rms(y, w(`${p}post_attention_layernorm.weight`));
      const gate = linear(h2, w(`${p}mlp.gate_proj.weight`), I), up = linear(h2, w(`${p}mlp.up_proj.weight`), I);
      const act = gate.map((g, i) => (g / (1 + Math.exp(-g))) * up[i]!);
      return linear(act, w(`${p}mlp.down_proj.weight`), C).map((a, i) => y[i]! + a);
    });
  }
  const head = c.tiedEmbeddings ? embed : w("lm_head.weight");
  const logits = x.map((r) => linear(rms(r, w("model.norm.weight")), head, c.vocab));
  return tokens.map((tok, t) => {
    if (t === 0) return 0;
    const row = logits[t - 1]!;
    const max = Math.max(...row);
    return row[tok]! - max - Math.log(row.reduce((s, v) => s + Math.exp(v - max), 0));
  });
}

describe("llama config validation", () => {
  const fails = (extra: Partial<PolicyModelConfig>, message: string) => {
    let err: unknown;
    try {
      llama(extra);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(InvalidArgumentError);
    expect((err as Error).message).toBe(message);
  };

  test("each bad key is named with its value and what is allowed", () => {
    fails({ arch: "mamba" as "llama" }, 'PolicyModel: config.arch is "mamba"; expected "gpt2" or "llama"');
    fails({ kvHeads: 3 }, "PolicyModel: config.kvHeads is 3; expected a divisor of heads (4)");
    fails({ kvHeads: 8 }, "PolicyModel: config.kvHeads is 8; expected an integer in 1..4");
    fails({ kvHeads: 0 }, "PolicyModel: config.kvHeads is 0; expected an integer in 1..4");
    fails({ intermediate: 70000 }, "PolicyModel: config.intermediate is 70000; expected an integer in 1..65536");
    fails({ normEps: 0 }, "PolicyModel: config.normEps is 0; expected a finite number > 0");
    fails({ ropeTheta: Number.NaN }, "PolicyModel: config.ropeTheta is NaN; expected a finite number > 0");
    fails({ tiedEmbeddings: "yes" as unknown as boolean }, 'PolicyModel: config.tiedEmbeddings is "yes"; expected a boolean');
    fails({ width: 12 }, 'PolicyModel: config.width is 12; expected a multiple of 2 * heads (8) for arch "llama": rotary embeddings need an even head size');
    fails({ headDim: 7 }, "PolicyModel: config.headDim is 7; expected an even number: rotary embeddings rotate pairs");
    fails({ headDim: 1024 }, "PolicyModel: config.headDim is 1024; expected an integer in 2..512");
    fails({ qkNorm: 1 as unknown as boolean }, "PolicyModel: config.qkNorm is 1; expected a boolean");
    fails({ ropeScaling: { factor: 8, lowFreqFactor: 4, highFreqFactor: 4, originalContext: 64 } },
      "PolicyModel: config.ropeScaling.highFreqFactor is 4; expected a number above lowFreqFactor (4)");
    fails({ ropeScaling: { factor: 0, lowFreqFactor: 1, highFreqFactor: 4, originalContext: 64 } }, "PolicyModel: config.ropeScaling.factor is 0; expected a finite number > 0");
  });

  test("a head size of its own: width need not be a multiple of heads; the layout names it", () => {
    const m = llama({ width: 20, heads: 4, kvHeads: 2, headDim: 6, qkNorm: true });
    expect(m.tensors.find((t) => t.name === "model.layers.0.self_attn.o_proj.weight")!.shape).toEqual([20, 24]);
    expect(m.layout).toEndWith("attentionBias=true headDim=6 qkNorm=true");
    // headDim equal to width / heads is the layout saved states had before it could differ.
    expect(llama({ headDim: 4 }).layout).toBe(llama({}).layout);
  });

  test("arch gpt2 refuses llama-only settings but accepts their GPT-2 values", () => {
    const gpt2 = { vocab: 8, context: 12, width: 32, layers: 1, heads: 4 };
    expect(() => new PolicyModel({ ...gpt2, kvHeads: 2 }, { device: "cpu" })).toThrow(
      'PolicyModel: config.kvHeads is 2; expected 4 for arch "gpt2" (only arch "llama" takes kvHeads)',
    );
    expect(() => new PolicyModel({ ...gpt2, tiedEmbeddings: true }, { device: "cpu" })).toThrow(
      'PolicyModel: config.tiedEmbeddings is true; expected false for arch "gpt2" (only arch "llama" takes tiedEmbeddings)',
    );
    expect(() => new PolicyModel({ ...gpt2, qkNorm: true }, { device: "cpu" })).toThrow(
      'PolicyModel: config.qkNorm is true; expected false for arch "gpt2" (only arch "llama" takes qkNorm)',
    );
    expect(() => new PolicyModel({ ...gpt2, headDim: 4 }, { device: "cpu" })).toThrow(
      'PolicyModel: config.headDim is 4; expected 8 for arch "gpt2" (only arch "llama" takes headDim)',
    );
    const m = new PolicyModel({ ...gpt2, kvHeads: 4, intermediate: 128, normEps: 1e-5 }, { device: "cpu" });
    expect(m.config).toMatchObject({ arch: "gpt2", kvHeads: 4, intermediate: 128, ropeTheta: 10000, normEps: 1e-5, tiedEmbeddings: false, attentionBias: false });
    expect(m.layout).toBe("vocab=8 context=12 width=32 layers=1 heads=4 valueHead=false");
  });

  test("llama defaults: kvHeads = heads, intermediate = 8 * ceil(width / 3), theta 10000, eps 1e-5, untied, no bias", () => {
    const cfg = { vocab: 8, context: 12, width: 16, layers: 1, heads: 2, arch: "llama" } as const;
    const m = new PolicyModel(cfg, { device: "cpu" });
    expect(m.config).toMatchObject({ kvHeads: 2, intermediate: 48, ropeTheta: 10000, normEps: 1e-5, tiedEmbeddings: false, attentionBias: false });
    expect(m.tensors.find((t) => t.name === "model.layers.0.mlp.gate_proj.weight")!.shape).toEqual([48, 16]);
    expect(new PolicyModel(cfg, { device: "null" }).tensors).toEqual(m.tensors); // the null backend's default agrees
  });
});

describe("llama tensors", () => {
  test("Hugging Face names and [out, in] shapes, contiguous, with GQA and q/k/v biases", () => {
    const m = llama({ layers: 1, valueHead: true });
    const got = m.tensors.map((t) => [t.name, t.shape]);
    expect(got).toEqual([
      ["model.embed_tokens.weight", [11, 16]],
      ["model.layers.0.input_layernorm.weight", [16]],
      ["model.layers.0.self_attn.q_proj.weight", [16, 16]],
      ["model.layers.0.self_attn.k_proj.weight", [8, 16]],
      ["model.layers.0.self_attn.v_proj.weight", [8, 16]],
      ["model.layers.0.self_attn.q_proj.bias", [16]],
      ["model.layers.0.self_attn.k_proj.bias", [8]],
      ["model.layers.0.self_attn.v_proj.bias", [8]],
      ["model.layers.0.self_attn.o_proj.weight", [16, 16]],
      ["model.layers.0.post_attention_layernorm.weight", [16]],
      ["model.layers.0.mlp.gate_proj.weight", [24, 16]],
      ["model.layers.0.mlp.up_proj.weight", [24, 16]],
      ["model.layers.0.mlp.down_proj.weight", [16, 24]],
      ["model.norm.weight", [16]],
      ["lm_head.weight", [11, 16]],
      ["value_head.w", [1, 16]],
      ["value_head.b", [1]],
    ]);
    let next = 0;
    for (const t of m.tensors) {
      expect(t.offset).toBe(next);
      expect(t.size).toBe(t.shape.reduce((a, b) => a * b, 1));
      next += t.size;
    }
    expect(m.numParams).toBe(next);
    expect(m.layout).toBe("vocab=11 context=10 width=16 layers=1 heads=4 valueHead=true arch=llama kvHeads=2 intermediate=24 tiedEmbeddings=false attentionBias=true");
  });

  test("tied embeddings: no lm_head.weight; no bias tensors without attentionBias", () => {
    const names = llama({}, TIED).tensors.map((t) => t.name);
    expect(names).not.toContain("lm_head.weight");
    expect(names.filter((n) => n.includes("bias"))).toEqual([]);
    expect(names).toContain("model.layers.1.mlp.down_proj.weight");
  });

  test("the null backend reports the same layout as the addon", () => {
    // Qwen3's shape too: q/k norms, 4 heads of 6 on width 16, and Llama 3 rope scaling (no tensors of its own).
    const qwen3 = { ...TIED, heads: 4, kvHeads: 2, headDim: 6, qkNorm: true, tiedEmbeddings: false };
    const llama3 = { ...TIED, ropeScaling: { factor: 8, lowFreqFactor: 1, highFreqFactor: 4, originalContext: 32 } };
    for (const cfg of [{ ...GQA_BIAS, valueHead: true }, TIED, qwen3, llama3]) {
      const real = new PolicyModel(cfg, { device: "cpu" });
      const fake = new PolicyModel(cfg, { device: "null" });
      expect(fake.tensors).toEqual(real.tensors);
      expect(fake.numParams).toBe(real.numParams);
      expect(llamaTensors({ ...real.config })).toEqual(real.tensors as TensorInfo[]);
    }
  });
});

describe("llama forward", () => {
  const tokens = [3, 1, 4, 1, 5, 9, 2, 6, 5, 3];

  for (const [label, cfg] of [["GQA, q/k/v bias", GQA_BIAS], ["tied, one kv head", TIED]] as const) {
    test(`logprobs match a float64 Hugging Face reference (${label})`, async () => {
      const m = llama({}, cfg);
      const params = randomize(m, 17);
      const lp = await m.logprobs({ tokens: Int32Array.from(tokens), mask: new Float32Array(tokens.length).fill(1), batch: 1, seqLen: tokens.length });
      const want = referenceLogprobs(m, params, tokens);
      let worst = 0;
      for (let t = 1; t < tokens.length; t++) worst = Math.max(worst, Math.abs(lp[t]! - want[t]!));
      // float32 through two layers of O(1) activations: ~1e-6 relative; 1e-4 still catches any
      // wrong convention (interleaved RoPE, kv head mapping, missing bias), which are off by > 1e-2.
      expect(worst).toBeLessThan(1e-4);
    });
  }

  test("grouped kv heads equal full attention with each kv head repeated (repeat_kv)", async () => {
    const grouped = llama();
    const full = llama({ kvHeads: 4 });
    const src = randomize(grouped, 23);
    const dst = new Float32Array(full.numParams);
    const hd = 4;
    for (const t of full.tensors) {
      const from = tensor(grouped, src, t.name), to = dst.subarray(t.offset, t.offset + t.size);
      if (/\.(k|v)_proj\./.test(t.name)) {
        const cols = t.shape[1] ?? 1; // weight rows are C wide; bias rows 1
        for (let row = 0; row < t.shape[0]!; row++) {
          const head = Math.floor(row / hd), srcRow = Math.floor(head / 2) * hd + (row % hd);
          to.set(from.subarray(srcRow * cols, (srcRow + 1) * cols), row * cols);
        }
      } else to.set(from);
    }
    full.setState({ params: dst, adamM: new Float32Array(full.numParams), adamV: new Float32Array(full.numParams), step: 0 });
    const b = tokenBatch(4, 3, 10, 11, 1);
    const [a, e] = [await grouped.logprobs(b), await full.logprobs(b)];
    for (let i = 0; i < a.length; i++) expect(Math.abs(a[i]! - e[i]!)).toBeLessThan(1e-5);
  });

  test("a tied model equals an untied one whose lm_head.weight is a copy of embed_tokens (loading by name)", async () => {
    const tied = llama({ kvHeads: 2, attentionBias: true }, TIED);
    const untied = llama({ kvHeads: 2, attentionBias: true, tiedEmbeddings: false }, TIED);
    const src = randomize(tied, 29);
    const dst = new Float32Array(untied.numParams);
    for (const t of untied.tensors) {
      dst.set(tensor(tied, src, t.name === "lm_head.weight" ? "model.embed_tokens.weight" : t.name), t.offset);
    }
    untied.setState({ params: dst, adamM: new Float32Array(dst.length), adamV: new Float32Array(dst.length), step: 0 });
    const b = tokenBatch(5, 2, 10, 11);
    expect(Array.from(await untied.logprobs(b))).toEqual(Array.from(await tied.logprobs(b)));
  });

  test("generated logprobs and values equal logprobs() and values() of the same sequences", async () => {
    for (const cfg of [GQA_BIAS, TIED]) {
      const m = llama({ valueHead: true }, cfg);
      randomize(m, 31, 0.2);
      const prompts = [[1, 2, 3], [4], [5, 6]];
      const g = await m.generate(prompts, { maxNewTokens: 5, seed: 4 });
      for (let r = 0; r < prompts.length; r++) {
        const tokens = Int32Array.from([...prompts[r]!, ...g.tokens.subarray(r * 5, r * 5 + g.lengths[r]!)]);
        const mask = Float32Array.from(tokens, (_, i) => (i >= prompts[r]!.length ? 1 : 0));
        const batch = { tokens, mask, batch: 1, seqLen: tokens.length };
        const [lp, v] = [await m.logprobs(batch), await m.values(batch)];
        for (let i = 0; i < g.lengths[r]!; i++) {
          const t = prompts[r]!.length + i;
          // Same ops on B rows instead of B*T: equal up to float32 rounding of the products.
          expect(Math.abs(lp[t]! - g.logprobs[r * 5 + i]!)).toBeLessThan(1e-5);
          expect(Math.abs(v[t]! - g.values![r * 5 + i]!)).toBeLessThan(1e-5);
        }
      }
    }
  });
});

describe("llama training and state", () => {
  test("policyStep raises the log-probability of positively advantaged tokens and changes the weights", async () => {
    const m = llama({}, TIED);
    const b = tokenBatch(8, 4, 10, 11);
    const before = await m.logprobs(b);
    const w0 = (await m.getState()).params;
    const sum = (lp: Float32Array) => lp.reduce((s, v, i) => s + (b.mask[i] ? v : 0), 0);
    let first = 0, last = 0;
    for (let step = 0; step < 10; step++) {
      const lp = await m.logprobs(b);
      const s = await m.policyStep({ ...b, advantages: b.mask, oldLogprobs: lp }, { lr: 1e-2 });
      if (step === 0) first = s.pgLoss;
      last = s.pgLoss;
    }
    expect(sum(await m.logprobs(b))).toBeGreaterThan(sum(before) + 1);
    expect(last).toBeLessThanOrEqual(first);
    expect(fingerprint((await m.getState()).params)).not.toBe(fingerprint(w0));
    expect(m.step).toBe(10);
  });

  test("valueStep fits fixed returns", async () => {
    const m = llama({ valueHead: true });
    const b = tokenBatch(9, 4, 10, 11);
    const returns = b.mask.map((x, i) => x * ((b.tokens[i]! % 3) - 1));
    let first = 0, last = 0;
    for (let step = 0; step < 60; step++) {
      const s = await m.valueStep({ ...b, returns, oldValues: new Float32Array(returns.length) }, { lr: 3e-3, clipRange: 0 });
      if (step === 0) first = s.vfLoss;
      last = s.vfLoss;
    }
    expect(first / last).toBeGreaterThan(3);
  });

  test("setState(getState()) round-trips bit-exactly and a restored model trains to the same weights", async () => {
    const steps = async (m: PolicyModel, n: number) => {
      const b = tokenBatch(21, 4, 8, 11);
      for (let i = 0; i < n; i++) {
        await m.policyStep({ ...b, advantages: b.mask.map((x, j) => x * ((j % 3) - 1)), oldLogprobs: b.mask.map((x) => -2 * x) }, { weightDecay: 0.01 });
        await m.valueStep({ ...b, returns: b.mask, oldValues: new Float32Array(b.mask.length) });
      }
    };
    const a = llama({ valueHead: true });
    await steps(a, 2);
    const s = (await a.getState());
    const b = llama({ valueHead: true, seed: 999 });
    b.setState(s);
    const t = (await b.getState());
    expect(t.step).toBe(s.step);
    expect(fingerprint(t.params, t.adamM, t.adamV)).toBe(fingerprint(s.params, s.adamM, s.adamV));
    await steps(a, 2);
    await steps(b, 2);
    expect(fingerprint((await b.getState()).params)).toBe(fingerprint((await a.getState()).params));
    // A state of another layout is refused by name.
    expect(() => llama({ valueHead: true, kvHeads: 4 }).setState(s)).toThrow(/setState: state\.layout is ".*kvHeads=2.*"; expected ".*kvHeads=4.*"/);
  });

  test("generate and policyStep are bit-identical with 1 and 2 threads", () => {
    const fixture = join(import.meta.dir, "fixtures", "llama_determinism.ts");
    const outputs = ["1", "2"].map((threads) => {
      const run = Bun.spawnSync([process.execPath, fixture], { env: { ...process.env, REVENANT_NUM_THREADS: threads } });
      if (run.exitCode !== 0) console.log(run.stderr.toString());
      expect(run.exitCode).toBe(0);
      return JSON.parse(run.stdout.toString().trim()) as { threads: number; generate: string; weights: string };
    });
    expect(outputs.map((o) => o.threads)).toEqual([1, 2]);
    expect(outputs[0]!.generate).toBe(outputs[1]!.generate);
    expect(outputs[0]!.weights).toBe(outputs[1]!.weights);
  });
});
