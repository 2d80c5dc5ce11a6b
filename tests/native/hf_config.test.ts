/**
 * config.json to the runtime's Llama config and back: the supported architectures as their
 * published configs spell them, the context rule, and every refusal with its message.
 */
import { describe, expect, test } from "bun:test";
import { HfConfigError, hfConfigFromModel, type LlamaModelConfig, modelConfigFromHf } from "../../native/hf/config.ts";
import { MODEL_LIMITS } from "../../native/model_limits.ts";

/** Shaped like a Llama 3.2 1B config.json, without its llama3 rope scaling. */
const LLAMA = Object.freeze({
  architectures: ["LlamaForCausalLM"],
  model_type: "llama",
  attention_bias: false,
  attention_dropout: 0.0,
  bos_token_id: 128000,
  eos_token_id: 128001,
  head_dim: 64,
  hidden_act: "silu",
  hidden_size: 2048,
  initializer_range: 0.02,
  intermediate_size: 8192,
  max_position_embeddings: 131072,
  mlp_bias: false,
  num_attention_heads: 32,
  num_hidden_layers: 16,
  num_key_value_heads: 8,
  pretraining_tp: 1,
  rms_norm_eps: 1e-5,
  rope_scaling: null,
  rope_theta: 500000.0,
  tie_word_embeddings: true,
  torch_dtype: "bfloat16",
  use_cache: true,
  vocab_size: 128256,
});

/** Shaped like Qwen2.5-0.5B's config.json. */
const QWEN2 = Object.freeze({
  architectures: ["Qwen2ForCausalLM"],
  model_type: "qwen2",
  attention_dropout: 0.0,
  bos_token_id: 151643,
  eos_token_id: 151643,
  hidden_act: "silu",
  hidden_size: 896,
  initializer_range: 0.02,
  intermediate_size: 4864,
  max_position_embeddings: 32768,
  max_window_layers: 24,
  num_attention_heads: 14,
  num_hidden_layers: 24,
  num_key_value_heads: 2,
  rms_norm_eps: 1e-6,
  rope_theta: 1000000.0,
  sliding_window: 32768,
  tie_word_embeddings: true,
  torch_dtype: "bfloat16",
  use_cache: true,
  use_sliding_window: false,
  vocab_size: 151936,
});

/** Shaped like Qwen3-0.6B's config.json: 16 heads of 128 on a width of 1024, q/k norms. */
const QWEN3 = Object.freeze({
  architectures: ["Qwen3ForCausalLM"],
  model_type: "qwen3",
  attention_bias: false,
  attention_dropout: 0.0,
  bos_token_id: 151643,
  eos_token_id: 151645,
  head_dim: 128,
  hidden_act: "silu",
  hidden_size: 1024,
  initializer_range: 0.02,
  intermediate_size: 3072,
  max_position_embeddings: 40960,
  max_window_layers: 28,
  num_attention_heads: 16,
  num_hidden_layers: 28,
  num_key_value_heads: 8,
  rms_norm_eps: 1e-6,
  rope_scaling: null,
  rope_theta: 1000000,
  sliding_window: null,
  tie_word_embeddings: true,
  torch_dtype: "bfloat16",
  use_cache: true,
  use_sliding_window: false,
  vocab_size: 151936,
});

/** Llama 3.2 1B's rope scaling. */
const LLAMA3_SCALING = Object.freeze({ factor: 32.0, high_freq_factor: 4.0, low_freq_factor: 1.0, original_max_position_embeddings: 8192, rope_type: "llama3" });

/** Shaped like Mistral 7B v0.1's config.json (its 4096 window never binds at a 4096 context). */
const MISTRAL = Object.freeze({
  architectures: ["MistralForCausalLM"],
  model_type: "mistral",
  hidden_act: "silu",
  hidden_size: 4096,
  intermediate_size: 14336,
  max_position_embeddings: 32768,
  num_attention_heads: 32,
  num_hidden_layers: 32,
  num_key_value_heads: 8,
  rms_norm_eps: 1e-5,
  rope_theta: 10000.0,
  sliding_window: 4096,
  tie_word_embeddings: false,
  vocab_size: 32000,
});

const with_ = (base: object, changes: Record<string, unknown>) => ({ ...base, ...changes });

describe("config.json to the runtime's config", () => {
  test("Llama: GQA, tied embeddings, context capped at the runtime's limit", () => {
    expect(modelConfigFromHf(LLAMA, { seed: 3 })).toEqual({
      arch: "llama",
      vocab: 128256,
      context: MODEL_LIMITS.context.max,
      width: 2048,
      layers: 16,
      heads: 32,
      kvHeads: 8,
      intermediate: 8192,
      ropeTheta: 500000,
      normEps: 1e-5,
      tiedEmbeddings: true,
      attentionBias: false,
      headDim: 64,
      qkNorm: false,
      ropeScaling: null,
      valueHead: false,
      seed: 3,
    });
  });

  test("Llama 3.2: rope_scaling llama3 is read with its four numbers", () => {
    expect(modelConfigFromHf(with_(LLAMA, { rope_scaling: LLAMA3_SCALING })).ropeScaling).toEqual({ factor: 32, lowFreqFactor: 1, highFreqFactor: 4, originalContext: 8192 });
    expect(modelConfigFromHf(with_(LLAMA, { rope_scaling: { rope_type: "default" } })).ropeScaling).toBe(null);
  });

  test("Qwen3: q/k norms, head_dim 128 though 16 heads x 128 is twice the width, no biases", () => {
    expect(modelConfigFromHf(QWEN3)).toMatchObject({
      vocab: 151936, width: 1024, heads: 16, kvHeads: 8, headDim: 128, qkNorm: true, attentionBias: false, intermediate: 3072, layers: 28,
      tiedEmbeddings: true, normEps: 1e-6, ropeTheta: 1e6, ropeScaling: null, context: MODEL_LIMITS.context.max,
    });
    expect(modelConfigFromHf({ ...with_(QWEN3, { model_type: "qwen3" }), architectures: undefined }).qkNorm).toBe(true);
  });

  test("Qwen2: q/k/v biases on, a disabled sliding window is fine", () => {
    const c = modelConfigFromHf(QWEN2, { valueHead: true });
    expect(c).toMatchObject({ vocab: 151936, width: 896, heads: 14, kvHeads: 2, intermediate: 4864, attentionBias: true, tiedEmbeddings: true, normEps: 1e-6, ropeTheta: 1e6, valueHead: true });
    expect(c.context).toBe(MODEL_LIMITS.context.max);
  });

  test("Mistral: a sliding window at least as long as the context is plain causal attention", () => {
    expect(modelConfigFromHf(MISTRAL)).toMatchObject({ width: 4096, kvHeads: 8, attentionBias: false, tiedEmbeddings: false, context: 4096 });
    expect(modelConfigFromHf(with_(MISTRAL, { sliding_window: null }))).toMatchObject({ context: 4096 });
  });

  test("context: max_position_embeddings when below the limit, or the caller's smaller choice", () => {
    expect(modelConfigFromHf(with_(LLAMA, { max_position_embeddings: 512 })).context).toBe(512);
    expect(modelConfigFromHf(LLAMA, { context: 256 }).context).toBe(256);
    expect(() => modelConfigFromHf(with_(LLAMA, { max_position_embeddings: 512 }), { context: 1024 })).toThrow(
      "config.json: options.context is 1024; expected an integer in 2..512 (min of max_position_embeddings 512 and the runtime's limit 4096)",
    );
  });

  test("HF defaults fill absent optional keys; model_type stands in for architectures", () => {
    const minimal = { model_type: "llama", hidden_size: 64, intermediate_size: 128, num_hidden_layers: 2, num_attention_heads: 4, vocab_size: 100, max_position_embeddings: 128 };
    expect(modelConfigFromHf(minimal)).toMatchObject({ kvHeads: 4, ropeTheta: 10000, normEps: 1e-6, tiedEmbeddings: false, attentionBias: false, context: 128 });
  });
});

describe("config.json refusals name the key, its value and what is supported", () => {
  const cases: Array<[string, unknown, string | RegExp]> = [
    ["an unsupported architecture", with_(LLAMA, { architectures: ["GPT2LMHeadModel"] }), 'config.json: architectures is ["GPT2LMHeadModel"]; expected one of LlamaForCausalLM, MistralForCausalLM, Qwen2ForCausalLM, Qwen3ForCausalLM (this architecture is not supported)'],
    ["an unknown model_type without architectures", { ...with_(LLAMA, { model_type: "gemma" }), architectures: undefined }, /model_type is "gemma"; expected one of llama, mistral, qwen2, qwen3 when architectures is absent/],
    ["yarn rope scaling", with_(LLAMA, { rope_scaling: { factor: 4.0, rope_type: "yarn", original_max_position_embeddings: 32768 } }), 'config.json: rope_scaling.rope_type is "yarn"; expected "llama3" (Llama 3 rope scaling) or rope_scaling null (plain RoPE): other rope scalings are not supported'],
    ["linear rope scaling (old key)", with_(LLAMA, { rope_scaling: { type: "linear", factor: 2 } }), /rope_scaling\.type is "linear"; expected "llama3"/],
    ["llama3 rope scaling without low_freq_factor", with_(LLAMA, { rope_scaling: { ...LLAMA3_SCALING, low_freq_factor: undefined } }), "config.json: rope_scaling.low_freq_factor is absent; expected a positive finite number"],
    ["llama3 rope scaling with an empty blend band", with_(LLAMA, { rope_scaling: { ...LLAMA3_SCALING, high_freq_factor: 1 } }), "config.json: rope_scaling.high_freq_factor is 1; expected a number above low_freq_factor (1)"],
    ["llama3 rope scaling without original_max_position_embeddings", with_(LLAMA, { rope_scaling: { ...LLAMA3_SCALING, original_max_position_embeddings: undefined } }), /rope_scaling\.original_max_position_embeddings is absent/],
    ["an activation other than SiLU", with_(LLAMA, { hidden_act: "gelu" }), 'config.json: hidden_act is "gelu"; expected "silu" (SwiGLU MLP)'],
    ["an odd head_dim", with_(QWEN3, { head_dim: 127 }), "config.json: head_dim is 127; expected an even number (RoPE rotates pairs)"],
    ["Llama attention_bias (it biases o_proj too)", with_(LLAMA, { attention_bias: true }), /attention_bias is true; expected false or absent \(LlamaForCausalLM's attention_bias also biases o_proj/],
    ["Qwen3 attention_bias (it biases o_proj too)", with_(QWEN3, { attention_bias: true }), /attention_bias is true; expected false or absent \(Qwen3ForCausalLM's attention_bias also biases o_proj/],
    ["Qwen3 with the sliding window on", with_(QWEN3, { use_sliding_window: true }), /use_sliding_window is true; expected false or absent/],
    ["MLP biases", with_(LLAMA, { mlp_bias: true }), /mlp_bias is true; expected false or absent/],
    ["a binding Mistral sliding window", with_(MISTRAL, { sliding_window: 1024 }), /sliding_window is 1024; expected null, absent, or at least the context \(4096\)/],
    ["Qwen2 with the sliding window on", with_(QWEN2, { use_sliding_window: true }), /use_sliding_window is true; expected false or absent/],
    ["kv heads that do not divide the heads", with_(LLAMA, { num_key_value_heads: 5 }), "config.json: num_key_value_heads is 5; expected a divisor of num_attention_heads (32)"],
    ["a vocabulary past the runtime's limit", with_(LLAMA, { vocab_size: 2_000_000 }), `config.json: vocab_size is 2000000; expected an integer in ${MODEL_LIMITS.vocab.min}..${MODEL_LIMITS.vocab.max}`],
    ["a missing hidden_size", with_(LLAMA, { hidden_size: undefined }), /hidden_size is absent; expected an integer in 1\.\.8192/],
    ["an odd head size (RoPE rotates pairs)", with_(LLAMA, { hidden_size: 96, num_attention_heads: 32, head_dim: undefined }), /head size is 3/],
    ["a non-positive rms_norm_eps", with_(LLAMA, { rms_norm_eps: 0 }), "config.json: rms_norm_eps is 0; expected a positive finite number"],
    ["a non-boolean tie_word_embeddings", with_(LLAMA, { tie_word_embeddings: "yes" }), 'config.json: tie_word_embeddings is "yes"; expected true or false'],
    ["a non-object", [1], "config.json: (root) is not a JSON object"],
  ];
  for (const [what, json, message] of cases) {
    test(`refuses ${what}`, () => {
      expect(() => modelConfigFromHf(json)).toThrow(HfConfigError);
      expect(() => modelConfigFromHf(json)).toThrow(message);
    });
  }

  test("the source option names the file", () => {
    expect(() => modelConfigFromHf(with_(LLAMA, { hidden_act: "relu" }), { source: "/m/config.json" })).toThrow(/^\/m\/config\.json: hidden_act/);
  });
});

describe("the runtime's config to config.json", () => {
  const llama: LlamaModelConfig = {
    arch: "llama", vocab: 64, context: 32, width: 32, layers: 2, heads: 4, kvHeads: 2, intermediate: 48, ropeTheta: 10000, normEps: 1e-5,
    tiedEmbeddings: false, attentionBias: false, headDim: 8, qkNorm: false, ropeScaling: null, valueHead: false, seed: 0,
  };
  const qwen2: LlamaModelConfig = { ...llama, kvHeads: 1, ropeTheta: 1e6, normEps: 1e-6, tiedEmbeddings: true, attentionBias: true };
  const qwen3: LlamaModelConfig = { ...llama, headDim: 12, qkNorm: true, tiedEmbeddings: true, normEps: 1e-6 };
  const llama3: LlamaModelConfig = { ...llama, tiedEmbeddings: true, ropeScaling: { factor: 32, lowFreqFactor: 1, highFreqFactor: 4, originalContext: 8192 } };

  test("without biases it is a LlamaForCausalLM config, with q/k/v biases a Qwen2ForCausalLM one", () => {
    const l = hfConfigFromModel(llama, { bosTokenId: 1, eosTokenId: [2, 3] });
    expect(l).toMatchObject({ architectures: ["LlamaForCausalLM"], model_type: "llama", attention_bias: false, mlp_bias: false, head_dim: 8, hidden_act: "silu", rope_scaling: null, torch_dtype: "float32", bos_token_id: 1, eos_token_id: [2, 3], max_position_embeddings: 32 });
    const q = hfConfigFromModel(qwen2, { torchDtype: "bfloat16", maxPositionEmbeddings: 32768 });
    expect(q).toMatchObject({ architectures: ["Qwen2ForCausalLM"], model_type: "qwen2", use_sliding_window: false, sliding_window: null, tie_word_embeddings: true, torch_dtype: "bfloat16", max_position_embeddings: 32768 });
    expect("bos_token_id" in q || "attention_bias" in q).toBe(false);
  });

  test("with q/k norms it is a Qwen3ForCausalLM config; Llama 3 rope scaling is written as transformers reads it", () => {
    expect(hfConfigFromModel(qwen3)).toMatchObject({ architectures: ["Qwen3ForCausalLM"], model_type: "qwen3", head_dim: 12, attention_bias: false, use_sliding_window: false });
    expect(hfConfigFromModel(llama3).rope_scaling).toEqual(LLAMA3_SCALING);
    expect(() => hfConfigFromModel({ ...qwen3, attentionBias: true })).toThrow(/attentionBias is true with qkNorm/);
  });

  test("config.json written from a config maps back to the same config", () => {
    for (const c of [llama, qwen2, qwen3, llama3]) expect(modelConfigFromHf(hfConfigFromModel(c))).toEqual(c);
    for (const json of [LLAMA, QWEN2, QWEN3, MISTRAL, with_(LLAMA, { rope_scaling: LLAMA3_SCALING })]) {
      const c = modelConfigFromHf(json);
      expect(modelConfigFromHf(hfConfigFromModel(c))).toEqual(c);
    }
  });

  test("a GPT-2 style config has no Hugging Face Llama form", () => {
    expect(() => hfConfigFromModel({ ...llama, arch: "gpt2" } as unknown as LlamaModelConfig)).toThrow('model config: arch is "gpt2"; only "llama" models map to a Hugging Face config');
  });
});
