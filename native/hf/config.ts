/**
 * Hugging Face `config.json` to the runtime's model config and back, for the Llama family:
 * LlamaForCausalLM (Llama 3.x rope scaling included), MistralForCausalLM (without a binding
 * sliding window), Qwen2ForCausalLM (q/k/v biases) and Qwen3ForCausalLM (per-head q/k RMSNorm, a
 * head_dim of its own). Everything the runtime's Llama path does not compute — a rope scaling
 * other than "llama3", an activation other than SiLU, o_proj or MLP biases, sliding windows that
 * bind — is refused with a {@link HfConfigError} naming the key, its value and what is supported,
 * never loaded into a model that would compute something else.
 *
 * Context rule: `context` = min(max_position_embeddings, the runtime's context limit from
 * native/model_limits.json), unless the caller asks for a smaller one. The weights do not
 * depend on it (RoPE has no position table), so a model trained at a shorter context is saved
 * with its original max_position_embeddings when the caller passes it back.
 *
 * @example
 * ```ts
 * const cfg = modelConfigFromHf(JSON.parse(readFileSync("config.json", "utf8")), { seed: 1 });
 * const json = hfConfigFromModel(cfg, { eosTokenId: 2 }); // loadable by transformers again
 * ```
 */
import { MODEL_LIMITS, type ModelSize } from "../model_limits.ts";
import type { PolicyModelConfig } from "../policy_model.ts";
import type { RopeScalingConfig } from "../types.ts";

export type { RopeScalingConfig };

/** The Llama-family model config the runtime builds from a Hugging Face folder. */
export interface LlamaModelConfig extends PolicyModelConfig {
  arch: "llama";
  /** Key/value heads (grouped-query attention); divides `heads`. */
  kvHeads: number;
  /** MLP hidden size (gate/up projections). */
  intermediate: number;
  ropeTheta: number;
  /** RMSNorm epsilon. */
  normEps: number;
  /** LM head shares the token embedding (no `lm_head.weight`). */
  tiedEmbeddings: boolean;
  /** Biases on the q/k/v projections only (Qwen2). */
  attentionBias: boolean;
  // headDim, qkNorm and ropeScaling (PolicyModelConfig's) are always set by modelConfigFromHf;
  // absent, they mean width / heads, false and null.
}


/** A config.json the runtime cannot map; the message names the key, the value and what is allowed. */
export class HfConfigError extends Error {
  override name = "HfConfigError";
  constructor(
    readonly source: string,
    readonly key: string,
    detail: string,
  ) {
    super(`${source}: ${key} ${detail}`);
  }
}

/** Architectures read, with the family each maps to. */
export const SUPPORTED_ARCHITECTURES = ["LlamaForCausalLM", "MistralForCausalLM", "Qwen2ForCausalLM", "Qwen3ForCausalLM"] as const;
export type SupportedArchitecture = (typeof SUPPORTED_ARCHITECTURES)[number];

const MODEL_TYPES: Readonly<Record<string, SupportedArchitecture>> = {
  llama: "LlamaForCausalLM", mistral: "MistralForCausalLM", qwen2: "Qwen2ForCausalLM", qwen3: "Qwen3ForCausalLM",
};

export interface FromHfOptions {
  /** Names the config in errors; default "config.json". */
  source?: string;
  /** Sequence length to build the model for; default min(max_position_embeddings, the limit). */
  context?: number;
  valueHead?: boolean;
  seed?: number;
}

type Json = Record<string, unknown>;

/** Maps a parsed config.json to the runtime's Llama config, or throws HfConfigError. */
export function modelConfigFromHf(json: unknown, options: FromHfOptions = {}): LlamaModelConfig {
  const source = options.source ?? "config.json";
  if (typeof json !== "object" || json === null || Array.isArray(json)) throw new HfConfigError(source, "(root)", "is not a JSON object");
  const read = new Reader(source, json as Json);
  const arch = architectureOf(read);
  read.must("hidden_act", (v) => v === undefined || v === "silu", '"silu" (SwiGLU MLP)');
  const ropeScaling = ropeScalingOf(read);
  read.must("mlp_bias", (v) => v === undefined || v === false, "false or absent (MLP biases are not supported)");
  const width = read.size("hidden_size", "width");
  const heads = read.size("num_attention_heads", "heads");
  const kvHeads = read.int("num_key_value_heads", MODEL_LIMITS.kvHeads.min, Math.min(heads, MODEL_LIMITS.kvHeads.max), heads);
  if (heads % kvHeads !== 0) read.fail("num_key_value_heads", kvHeads, `a divisor of num_attention_heads (${heads})`);
  const headDim = headDimOf(read, width, heads);
  const maxPositions = read.int("max_position_embeddings", MODEL_LIMITS.context.min, Number.MAX_SAFE_INTEGER);
  const context = contextFor(read, maxPositions, options.context);
  checkSlidingWindow(read, arch, context);
  return {
    arch: "llama",
    vocab: read.size("vocab_size", "vocab"),
    context,
    width,
    layers: read.size("num_hidden_layers", "layers"),
    heads,
    kvHeads,
    intermediate: read.size("intermediate_size", "intermediate"),
    ropeTheta: read.positive("rope_theta", 10000),
    normEps: read.positive("rms_norm_eps", 1e-6),
    tiedEmbeddings: read.bool("tie_word_embeddings", false),
    attentionBias: attentionBiasOf(read, arch),
    headDim,
    qkNorm: arch === "Qwen3ForCausalLM",
    ropeScaling,
    valueHead: options.valueHead ?? false,
    seed: options.seed ?? 0,
  };
}

/** `architectures[0]`, or `model_type` when a config has no architectures list. */
function architectureOf(read: Reader): SupportedArchitecture {
  const supported = `one of ${SUPPORTED_ARCHITECTURES.join(", ")}`;
  const list = read.json.architectures;
  if (list !== undefined) {
    if (!Array.isArray(list) || list.length !== 1) read.fail("architectures", list, `a list of one architecture, ${supported}`);
    if (!SUPPORTED_ARCHITECTURES.includes(list[0])) read.fail("architectures", list, `${supported} (this architecture is not supported)`);
    return list[0] as SupportedArchitecture;
  }
  const type = read.json.model_type;
  const arch = typeof type === "string" ? MODEL_TYPES[type] : undefined;
  if (arch === undefined) read.fail("model_type", type, `one of ${Object.keys(MODEL_TYPES).join(", ")} when architectures is absent (supported: ${SUPPORTED_ARCHITECTURES.join(", ")})`);
  return arch;
}

/**
 * head_dim when config.json gives one (Qwen3 always does; heads × head_dim may differ from
 * hidden_size, o_proj then being [hidden_size, heads × head_dim]), else hidden_size / heads.
 */
function headDimOf(read: Reader, width: number, heads: number): number {
  const given = read.json.head_dim;
  if (given === undefined || given === null) {
    if (width % heads !== 0) read.fail("hidden_size", width, `a multiple of num_attention_heads (${heads}) when head_dim is absent`);
    const implied = width / heads;
    if (implied % 2 !== 0) read.fail("hidden_size", width, `such that hidden_size / num_attention_heads is even (RoPE rotates pairs); head size is ${implied}`);
    return implied;
  }
  const headDim = read.int("head_dim", MODEL_LIMITS.headDim.min, MODEL_LIMITS.headDim.max);
  if (headDim % 2 !== 0) read.fail("head_dim", headDim, "an even number (RoPE rotates pairs)");
  return headDim;
}

/**
 * rope_scaling: null, absent or rope_type "default" is plain RoPE; rope_type "llama3" (Llama
 * 3.1/3.2) is computed, its four keys checked. Every other scaling (linear, dynamic, yarn, longrope,
 * ...) is refused naming the key.
 */
function ropeScalingOf(read: Reader): RopeScalingConfig | null {
  const v = read.json.rope_scaling;
  if (v === undefined || v === null) return null;
  if (typeof v !== "object" || Array.isArray(v)) read.fail("rope_scaling", v, 'null, or an object with rope_type "llama3"');
  const scaling = v as Json;
  const typeKey = scaling.rope_type !== undefined ? "rope_type" : "type";
  const type = scaling[typeKey];
  if (type === "default") return null;
  if (type !== "llama3") {
    throw new HfConfigError(read.source, `rope_scaling.${typeKey}`, `is ${JSON.stringify(type)}; expected "llama3" (Llama 3 rope scaling) or rope_scaling null (plain RoPE): other rope scalings are not supported`);
  }
  const sub = new Reader(read.source, scaling, "rope_scaling.");
  const factor = sub.positive("factor");
  const lowFreqFactor = sub.positive("low_freq_factor");
  const highFreqFactor = sub.positive("high_freq_factor");
  if (highFreqFactor <= lowFreqFactor) sub.fail("high_freq_factor", highFreqFactor, `a number above low_freq_factor (${lowFreqFactor})`);
  const originalContext = sub.int("original_max_position_embeddings", 1, Number.MAX_SAFE_INTEGER);
  return { factor, lowFreqFactor, highFreqFactor, originalContext };
}

/**
 * Llama's and Qwen3's attention_bias put biases on q, k, v and o_proj; the runtime has q/k/v
 * biases only, which is exactly Qwen2 (always on there).
 */
function attentionBiasOf(read: Reader, arch: SupportedArchitecture): boolean {
  if (arch === "Qwen2ForCausalLM") return true;
  read.must("attention_bias", (v) => v === undefined || v === false, `false or absent (${arch}'s attention_bias also biases o_proj, which is not supported; q/k/v-only biases are read from Qwen2ForCausalLM)`);
  return false;
}

/** A sliding window that never binds (at least the context) computes plain causal attention. */
function checkSlidingWindow(read: Reader, arch: SupportedArchitecture, context: number): void {
  if (arch === "Qwen2ForCausalLM" || arch === "Qwen3ForCausalLM") {
    read.must("use_sliding_window", (v) => v === undefined || v === false, "false or absent (sliding-window attention is not supported)");
    return;
  }
  read.must(
    "sliding_window",
    (v) => v === undefined || v === null || (Number.isInteger(v) && (v as number) >= context),
    `null, absent, or at least the context (${context}) so that it never binds (sliding-window attention is not supported)`,
  );
}

function contextFor(read: Reader, maxPositions: number, wanted: number | undefined): number {
  const limit = MODEL_LIMITS.context.max;
  if (wanted === undefined) return Math.min(maxPositions, limit);
  const max = Math.min(maxPositions, limit);
  if (!Number.isInteger(wanted) || wanted < MODEL_LIMITS.context.min || wanted > max) {
    throw new HfConfigError(read.source, "options.context", `is ${wanted}; expected an integer in ${MODEL_LIMITS.context.min}..${max} (min of max_position_embeddings ${maxPositions} and the runtime's limit ${limit})`);
  }
  return wanted;
}

/** Typed access to config keys; each failure names the key, the value and what is allowed. */
class Reader {
  constructor(
    readonly source: string,
    readonly json: Json,
    /** Names keys of a nested object ("rope_scaling.") in errors. */
    readonly prefix = "",
  ) {}

  fail(key: string, value: unknown, allowed: string): never {
    throw new HfConfigError(this.source, this.prefix + key, `is ${value === undefined ? "absent" : JSON.stringify(value)}; expected ${allowed}`);
  }

  must(key: string, ok: (v: unknown) => boolean, allowed: string): void {
    if (!ok(this.json[key])) this.fail(key, this.json[key], allowed);
  }

  int(key: string, min: number, max: number, fallback?: number): number {
    const v = this.json[key] ?? fallback;
    if (typeof v !== "number" || !Number.isInteger(v) || v < min || v > max) this.fail(key, this.json[key], `an integer in ${min}..${max}`);
    return v;
  }

  /** An integer within the runtime's bounds for `size` (native/model_limits.json). */
  size(key: string, size: ModelSize): number {
    return this.int(key, MODEL_LIMITS[size].min, MODEL_LIMITS[size].max);
  }

  positive(key: string, fallback?: number): number {
    const v = this.json[key] ?? fallback;
    if (typeof v !== "number" || !Number.isFinite(v) || v <= 0) this.fail(key, this.json[key], "a positive finite number");
    return v;
  }

  bool(key: string, fallback: boolean): boolean {
    const v = this.json[key] ?? fallback;
    if (typeof v !== "boolean") this.fail(key, this.json[key], "true or false");
    return v;
  }
}

export interface ToHfOptions {
  /** Written as torch_dtype; match the dtype the weights are saved in. Default "float32". */
  torchDtype?: "float32" | "bfloat16" | "float16";
  bosTokenId?: number;
  eosTokenId?: number | number[];
  padTokenId?: number;
  /** Default: the model's context. Pass the original value to keep a longer RoPE range on record. */
  maxPositionEmbeddings?: number;
}

/**
 * The config.json transformers (and vLLM, llama.cpp's converter) load for this model:
 * Qwen3ForCausalLM when it has q/k norms, Qwen2ForCausalLM when it has q/k/v biases,
 * LlamaForCausalLM otherwise (with its rope scaling, when it has one).
 */
export function hfConfigFromModel(config: LlamaModelConfig, options: ToHfOptions = {}): Json {
  if (config.arch !== "llama") {
    throw new HfConfigError("model config", "arch", `is ${JSON.stringify(config.arch)}; only "llama" models map to a Hugging Face config`);
  }
  if (config.qkNorm && config.attentionBias) {
    throw new HfConfigError("model config", "attentionBias", "is true with qkNorm: no Hugging Face architecture has q/k norms and q/k/v-only biases");
  }
  const qwen3 = config.qkNorm ?? false, qwen2 = config.attentionBias;
  const [architecture, modelType] = qwen3 ? ["Qwen3ForCausalLM", "qwen3"] : qwen2 ? ["Qwen2ForCausalLM", "qwen2"] : ["LlamaForCausalLM", "llama"];
  const s = config.ropeScaling ?? null;
  const json: Json = {
    architectures: [architecture],
    model_type: modelType,
    vocab_size: config.vocab,
    hidden_size: config.width,
    intermediate_size: config.intermediate,
    num_hidden_layers: config.layers,
    num_attention_heads: config.heads,
    num_key_value_heads: config.kvHeads,
    head_dim: config.headDim ?? config.width / config.heads,
    hidden_act: "silu",
    max_position_embeddings: options.maxPositionEmbeddings ?? config.context,
    rms_norm_eps: config.normEps,
    rope_theta: config.ropeTheta,
    rope_scaling: s === null
      ? null
      : { rope_type: "llama3", factor: s.factor, low_freq_factor: s.lowFreqFactor, high_freq_factor: s.highFreqFactor, original_max_position_embeddings: s.originalContext },
    tie_word_embeddings: config.tiedEmbeddings,
    attention_dropout: 0.0,
    initializer_range: 0.02,
    use_cache: true,
    torch_dtype: options.torchDtype ?? "float32",
  };
  if (qwen2 || qwen3) Object.assign(json, { use_sliding_window: false, sliding_window: null, max_window_layers: config.layers });
  if (qwen3) json.attention_bias = false;
  else if (!qwen2) Object.assign(json, { attention_bias: false, mlp_bias: false });
  if (options.bosTokenId !== undefined) json.bos_token_id = options.bosTokenId;
  if (options.eosTokenId !== undefined) json.eos_token_id = options.eosTokenId;
  if (options.padTokenId !== undefined) json.pad_token_id = options.padTokenId;
  return json;
}
