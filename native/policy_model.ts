/**
 * PolicyModel: the typed TypeScript face of the native transformer policy/critic.
 *
 * It mirrors `PolicyModelNative` (native/types.ts) method for method, fills in defaults, and
 * validates every argument before it crosses into native code (dtype, shape, token id range,
 * NaN), throwing an {@link InvalidArgumentError} that names the argument, the bad value and what
 * is allowed. Errors raised inside the native compute arrive as {@link NativeComputeError},
 * whose message names the op and the source file and line.
 *
 * Position convention: for tokens [batch, seqLen], entry t of logprobs/values/advantages/... is
 * about token t and comes from the hidden state at t-1; entry 0 and entries with mask 0 are 0.
 * Prompts are left-aligned rows starting at position 0 (for arch llama, the RoPE position of token
 * t is t).
 *
 * @example
 * ```ts
 * import { PolicyModel } from "./native/policy_model.ts";
 * const policy = new PolicyModel({ ...DEFAULT_MODEL_CONFIG, seed: 1 });
 * const out = await policy.generate([[1, 2, 3]], { maxNewTokens: 4, seed: 7 });
 * console.log(out.tokens, out.logprobs);
 *
 * // A Llama-family model (Llama 3, Qwen2/2.5, SmolLM shapes) with grouped-query attention:
 * const llama = new PolicyModel({ vocab: 256, context: 64, width: 64, layers: 2, heads: 4, arch: "llama", kvHeads: 2,
 *   intermediate: 172, ropeTheta: 500000, normEps: 1e-5, tiedEmbeddings: true });
 * llama.tensors[0]; // { name: "model.embed_tokens.weight", shape: [256, 64], offset: 0, size: 16384 }
 * ```
 */
import { DEVICE_ALLOWED, isDevice, type Device } from "./device.ts";
import { loadNative } from "./loader.ts";
import { defaultIntermediate, MODEL_LIMITS, type ModelSize } from "./model_limits.ts";

export { defaultIntermediate } from "./model_limits.ts";
import { NULL_ADDON } from "./null_backend.ts";
import type {
  ModelArch,
  ModelState,
  NativeAddon,
  NativeGenerateResult,
  NativeModelConfig,
  NativePolicyHyper,
  NativeValueHyper,
  PolicyModelNative,
  PolicyStepStats,
  RopeScalingConfig,
  TensorInfo,
  ValueStepStats,
  LoraConfig,
  LoraSetting,
} from "./types.ts";
import { LORA_MODULES } from "./types.ts";

export type { LoraConfig, LoraModule, LoraSetting, ModelArch, ModelState, PolicyStepStats, RopeScalingConfig, TensorInfo, ValueStepStats } from "./types.ts";
export { LORA_MODULES } from "./types.ts";

export type { Device } from "./device.ts";

/**
 * Model sizes and architecture. `valueHead` adds the scalar critic head (on the final norm's
 * output, for either architecture); `seed` fixes the initial weights.
 *
 * `arch` picks the block: "gpt2" (the default: learned position table, LayerNorm, GELU MLP of
 * 4 * width, biases everywhere) or "llama" (Llama 3, Qwen2/2.5, SmolLM: rotary positions,
 * RMSNorm, SwiGLU MLP, grouped-query attention, no biases unless `attentionBias`). The keys after
 * `arch` shape llama models; an arch "gpt2" model accepts each only at the value GPT-2 implies
 * (kvHeads = heads, intermediate = 4 * width, ropeTheta 10000, normEps 1e-5, both flags false).
 * For llama, `tensors` carry Hugging Face's names and [out, in] shapes
 * (`model.layers.0.self_attn.q_proj.weight`, ...), so a checkpoint loads by name; with
 * `tiedEmbeddings` there is no `lm_head.weight`.
 */
export interface PolicyModelConfig {
  vocab: number;
  context: number;
  width: number;
  layers: number;
  heads: number;
  valueHead?: boolean;
  seed?: number;
  /** "gpt2" (default) or "llama". */
  arch?: ModelArch;
  /** llama: key/value heads (grouped-query attention; `num_key_value_heads`). Must divide heads. Default: heads. */
  kvHeads?: number;
  /**
   * llama: MLP hidden size (`intermediate_size`), 1..65536 (native/model_limits.json). Default:
   * 8 * ceil(width / 3) (SwiGLU at GPT-2's MLP parameter count, a multiple of 8).
   */
  intermediate?: number;
  /** llama: RoPE base (`rope_theta`), a finite number > 0. Default 10000. */
  ropeTheta?: number;
  /** llama: RMSNorm epsilon (`rms_norm_eps`), a finite number > 0. Default 1e-5. */
  normEps?: number;
  /** llama: the LM head is the token embedding (`tie_word_embeddings`); no `lm_head.weight`. Default false. */
  tiedEmbeddings?: boolean;
  /** llama: biases on the q, k and v projections, none on o_proj (Qwen2). Default false. */
  attentionBias?: boolean;
  /**
   * llama: attention head size (`head_dim`), even, 2..512; heads × headDim need not be width
   * (q_proj is then [heads × headDim, width], o_proj its transpose in shape). Default width / heads.
   */
  headDim?: number;
  /** llama: RMSNorm of each q and k head before RoPE (`q_norm`, `k_norm`: Qwen3). Default false. */
  qkNorm?: boolean;
  /** llama: Llama 3 rope scaling (rope_type "llama3"); null: plain RoPE. Default null. */
  ropeScaling?: RopeScalingConfig | null;
  /**
   * The ids that may be sampled and scored: the first validVocab rows of the embedding, 1..vocab.
   * A padded vocabulary (more embedding rows than the tokenizer has ids, as Qwen's checkpoints
   * ship) sets it to the tokenizer's size: the padding is never sampled, scored or trained, and
   * log-probs and entropy are over the same ids the sampler draws from. Default: vocab.
   */
  validVocab?: number;
  /**
   * llama: LoRA adapters (rank 1..1024; alpha > 0, default 2 × rank; modules, default all seven;
   * dropout of the adapters' input in policy steps, [0, 1), default 0, its mask from hyper.dropoutSeed;
   * bf16Base: the frozen projection matrices, embedding and LM head held as bfloat16, default false);
   * null: every weight trains. Default null. With adapters the base is frozen, and getState,
   * setState, copyParamsTo and loadParamsFrom move the adapters alone (numTrained floats).
   */
  lora?: LoraSetting | null;
}

/** A config with every default filled in (PolicyModel#config). */
export type ResolvedModelConfig = Required<Omit<PolicyModelConfig, "lora">> & { lora: LoraConfig | null };

/** The config keys that shape only arch "llama" models. */
export type LlamaOnlyKey = "kvHeads" | "intermediate" | "ropeTheta" | "normEps" | "tiedEmbeddings" | "attentionBias" | "headDim" | "qkNorm" | "ropeScaling" | "lora";

/** Config keys that follow from others when absent (validVocab: vocab). */
type DerivedKey = "validVocab";

/**
 * The default model: small enough to train digit reversal on two CPU cores in minutes. GPT-2
 * style; it leaves the llama-only keys out, so `{ ...DEFAULT_MODEL_CONFIG, heads: 2 }` stays valid.
 */
export const DEFAULT_MODEL_CONFIG: Readonly<Required<Omit<PolicyModelConfig, LlamaOnlyKey | DerivedKey>>> = Object.freeze({
  vocab: MODEL_LIMITS.vocab.default,
  context: MODEL_LIMITS.context.default,
  width: MODEL_LIMITS.width.default,
  layers: MODEL_LIMITS.layers.default,
  heads: MODEL_LIMITS.heads.default,
  valueHead: false,
  seed: 0,
  arch: "gpt2",
});

export interface GenerateOptions {
  maxNewTokens: number;
  /** 0 = greedy. Default 1. */
  temperature?: number;
  /**
   * Keep only the topK most likely ids (ties with the k-th kept), as Hugging Face and vLLM do;
   * 0 = off (default). Applied to softmax(logits / temperature), before topP.
   */
  topK?: number;
  /** Then keep the smallest set of most likely ids whose probability reaches topP, in (0, 1]; 1 = off (default). */
  topP?: number;
  /** Sampling seed: same seed, same tokens, on any thread count. Default 0. */
  seed?: number;
  /** Stop a row after this token. Default: none. */
  eosToken?: number;
}

export type GenerateResult = NativeGenerateResult;

/** Tokens [batch, seqLen] row-major, and the loss weight of each token (1 = response token). */
export interface TokenBatch {
  tokens: Int32Array;
  mask: Float32Array;
  batch: number;
  seqLen: number;
}

export interface PolicyBatch extends TokenBatch {
  advantages: Float32Array;
  oldLogprobs: Float32Array;
  /** Log-probs of the reference policy; needed when klCoef != 0. */
  refLogprobs?: Float32Array;
}

export interface ValueBatch extends TokenBatch {
  returns: Float32Array;
  oldValues: Float32Array;
}

export type PolicyHyper = NativePolicyHyper;
export type ValueHyper = NativeValueHyper;

/** The largest finite float32: native code reads every hyperparameter as one. */
const F32_MAX = 3.4028234663852886e38;

/** AdamW and clipping defaults shared by both updates. */
const DEFAULT_OPTIM = { lr: 1e-3, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0, maxGradNorm: 1 } as const;

export const DEFAULT_POLICY_HYPER: Readonly<PolicyHyper> = Object.freeze({ ...DEFAULT_OPTIM, clipRatio: 0.2, klCoef: 0, entropyCoef: 0, temperature: 1 });

/** How log-probs are taken. */
export interface LogprobOptions {
  /** Log-probs of softmax(logits / temperature), a finite number > 0: the rollout's sampling temperature. Default 1. */
  temperature?: number;
  /** false: a LoRA model's base alone (its adapters off), the reference policy. Default true. */
  adapters?: boolean;
}

export const DEFAULT_VALUE_HYPER: Readonly<ValueHyper> = Object.freeze({ ...DEFAULT_OPTIM, clipRange: 0.2 });

/** A bad argument, caught before it reached native code. */
export class InvalidArgumentError extends TypeError {
  override name = "InvalidArgumentError";
  constructor(
    readonly method: string,
    readonly argument: string,
    readonly value: string,
    readonly allowed: string,
  ) {
    super(`${method}: ${argument} is ${value}; expected ${allowed}`);
  }
}

/** A failure inside the native compute (CUDA error, out of memory, ...); message names op, file, line. */
export class NativeComputeError extends Error {
  override name = "NativeComputeError";
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}

function describe(v: unknown): string {
  if (v === null) return "null";
  if (ArrayBuffer.isView(v)) return `a ${v.constructor.name} of length ${(v as unknown as ArrayLike<number>).length}`;
  if (Array.isArray(v)) return `an Array of length ${v.length}`;
  if (typeof v === "number" || typeof v === "boolean") return String(v);
  if (typeof v === "string") return JSON.stringify(v);
  return typeof v;
}

/** Argument checks for one method call; each failure names the method and the argument. */
class Check {
  constructor(readonly method: string) {}

  fail(arg: string, value: unknown, allowed: string): never {
    throw new InvalidArgumentError(this.method, arg, describe(value), allowed);
  }

  int(arg: string, v: unknown, min: number, max: number): number {
    if (typeof v !== "number" || !Number.isInteger(v) || v < min || v > max) {
      this.fail(arg, v, `an integer in ${min}..${max}`);
    }
    return v;
  }

  num(arg: string, v: unknown, min: number, max = Number.POSITIVE_INFINITY): number {
    if (typeof v !== "number" || !Number.isFinite(v) || v < min || v > max) {
      this.fail(arg, v, `a finite number in [${min}, ${max === Number.POSITIVE_INFINITY ? "inf" : max}]`);
    }
    return v;
  }

  /** A Float32Array of `length` finite values, each >= `min` when given. */
  f32(arg: string, v: unknown, length: number, min = Number.NEGATIVE_INFINITY): Float32Array {
    if (!(v instanceof Float32Array) || v.length !== length) {
      this.fail(arg, v, `a Float32Array of length ${length} (batch * seqLen)`);
    }
    for (let i = 0; i < v.length; i++) {
      if (!Number.isFinite(v[i]!)) this.fail(`${arg}[${i}]`, v[i], "a finite number (no NaN or Infinity)");
      if (v[i]! < min) this.fail(`${arg}[${i}]`, v[i], `a finite number >= ${min}`);
    }
    return v;
  }

  /** A number > 0 (a bound the value itself must not reach). */
  positive(arg: string, v: unknown): number {
    if (typeof v !== "number" || !Number.isFinite(v) || v <= 0) this.fail(arg, v, "a finite number > 0");
    return v;
  }

  tokens(arg: string, v: unknown, length: number | null, vocab: number): Int32Array {
    if (!(v instanceof Int32Array) || (length !== null && v.length !== length)) {
      this.fail(arg, v, length === null ? "an Int32Array" : `an Int32Array of length ${length} (batch * seqLen)`);
    }
    for (let i = 0; i < v.length; i++) {
      const t = v[i]!;
      if (t < 0 || t >= vocab) this.fail(`${arg}[${i}]`, t, `a token id in 0..${vocab - 1}`);
    }
    return v;
  }
}

/**
 * A transformer policy (and optional critic head) whose weights live in native memory.
 * Calls on one model run one at a time, off the JS thread, in the order made: `getState()` issued
 * after a `policyStep()` sees that step's weights even when neither was awaited. `step`,
 * `numParams` and `tensors` answer at once, even while a call runs.
 */
export class PolicyModel {
  readonly config: Readonly<ResolvedModelConfig>;
  readonly backend: "cpu" | "cuda" | "null";
  /** Where it computes: "cpu", "cuda:N", or "null". */
  readonly device: string;
  /** Device "auto" only: why it runs on the CPU instead of CUDA; null when it did not fall back. */
  readonly fallback: string | null;
  readonly numParams: number;
  readonly tensors: readonly TensorInfo[];
  /** What getState/setState and copyParamsTo/loadParamsFrom hold: numParams, or a LoRA model's adapter count. */
  readonly numTrained: number;
  /** A LoRA model's adapters ([] without): PEFT's names without "base_model.model.", offsets into the state's arrays. */
  readonly loraTensors: readonly TensorInfo[];
  /**
   * Bytes the base weights take in the backend's memory, as the model itself counts them: 4 per
   * weight, or 2 per projection, embedding and LM head weight of a LoRA model with `lora.bf16Base`.
   */
  readonly baseBytes: number;
  readonly #native: PolicyModelNative;

  /**
   * @param config model sizes and architecture; `width` must be a multiple of `heads` (for llama,
   *   of 2 * heads) and `kvHeads` must divide `heads`.
   * @param options.device "auto" (CUDA device 0 when usable, else the CPU, saying why in
   *   `fallback`; the default), "cpu", "cuda" or "cuda:N" (device N; throws with the reason when
   *   that device cannot be used), or "null".
   * @param options.threads CPU threads for this process's native compute (1..4096); absent: as
   *   before (REVENANT_NUM_THREADS, else every core). Process-wide: the last model made decides.
   */
  constructor(config: PolicyModelConfig, options: { device?: Device; addon?: NativeAddon; threads?: number } = {}) {
    const c = new Check("PolicyModel");
    if (typeof config !== "object" || config === null) c.fail("config", config, "an object");
    const cfg = resolveConfig(c, config);
    const device = options.device ?? "auto";
    if (!isDevice(device)) c.fail("options.device", device, DEVICE_ALLOWED);
    const threads = options.threads === undefined ? undefined : c.int("options.threads", options.threads, 1, 4096);
    const addon = device === "null" ? NULL_ADDON : options.addon ?? loadNative();
    try {
      if (threads !== undefined) addon.setThreads(threads);
      this.#native = new addon.PolicyModelNative(cfg as NativeModelConfig, device === "null" ? "cpu" : device);
    } catch (cause) {
      throw native(cause);
    }
    this.config = Object.freeze(cfg);
    const info = this.#native.info();
    if (cfg.arch === "llama" && info.tensors[0]?.name !== "model.embed_tokens.weight") {
      void this.#native.dispose();
      throw new NativeComputeError(
        `PolicyModel: the native addon does not know arch "llama" (it built tensors ${JSON.stringify(info.tensors[0]?.name)}, ...); ` +
          "rebuild it with `bun run build:native`",
      );
    }
    this.backend = info.backend;
    this.device = info.device ?? (info.backend === "cuda" ? "cuda:0" : info.backend);
    this.fallback = info.fallback ?? null;
    this.numParams = info.numParams;
    this.tensors = Object.freeze(info.tensors);
    if (cfg.lora && info.numTrained === undefined) {
      void this.#native.dispose();
      throw new NativeComputeError(
        `PolicyModel: config.lora needs LoRA support, which the ${info.backend} backend's addon lacks` +
          (info.backend === "null" ? " (the null backend computes nothing; use device \"cpu\")" : "; rebuild it with `bun run build:native`"),
      );
    }
    this.numTrained = info.numTrained ?? info.numParams;
    this.loraTensors = Object.freeze(info.loraTensors ?? []);
    this.baseBytes = info.baseBytes ?? 4 * info.numParams;
  }

  /**
   * Optimizer steps taken so far (policyStep and valueStep both count), as of the last finished
   * call; answers at once while a call runs.
   */
  get step(): number {
    return this.#native.info().step;
  }

  /**
   * Samples up to `maxNewTokens` after each prompt, all rows in one batch with a KV cache. A row
   * stops after `eosToken`. Same seed, same tokens, on every run and thread count.
   */
  async generate(prompts: ArrayLike<number>[] | Int32Array[], options: GenerateOptions): Promise<GenerateResult> {
    const c = new Check("generate");
    if (!Array.isArray(prompts) || prompts.length === 0) c.fail("prompts", prompts, "a non-empty array of token arrays");
    const maxNew = c.int("options.maxNewTokens", options?.maxNewTokens, 1, this.config.context - 1);
    const rows = prompts.map((p, i) => {
      const row = p instanceof Int32Array ? p : Array.isArray(p) ? Int32Array.from(p) : c.fail(`prompts[${i}]`, p, "an Int32Array or number[]");
      if (Array.isArray(p) && p.some((t) => !Number.isInteger(t))) c.fail(`prompts[${i}]`, p, "integer token ids");
      c.tokens(`prompts[${i}]`, row, null, this.config.validVocab);
      if (row.length === 0 || row.length + maxNew > this.config.context) {
        c.fail(`prompts[${i}].length`, row.length, `1..${this.config.context - maxNew} (context ${this.config.context} - maxNewTokens ${maxNew})`);
      }
      return row;
    });
    const opts = {
      maxNewTokens: maxNew,
      temperature: c.num("options.temperature", options.temperature ?? 1, 0, 1e6),
      seed: c.int("options.seed", options.seed ?? 0, 0, Number.MAX_SAFE_INTEGER),
      eosToken: options.eosToken === undefined ? -1 : c.int("options.eosToken", options.eosToken, 0, this.config.validVocab - 1),
      topK: c.int("options.topK", options.topK ?? 0, 0, this.config.vocab),
      topP: topP(c, "options.topP", options.topP ?? 1),
    };
    return call(this.#native.generate(rows, opts));
  }

  /**
   * log p(token t | tokens < t) for every token with mask != 0, under softmax(logits /
   * temperature) over the validVocab ids; [batch * seqLen]. With `{ adapters: false }` a LoRA
   * model scores with its base alone: the reference policy.
   */
  async logprobs(batch: TokenBatch, options: LogprobOptions = {}): Promise<Float32Array> {
    const b = this.#tokenBatch("logprobs", batch);
    const c = new Check("logprobs");
    const temperature = positive(c, "options.temperature", options.temperature ?? 1);
    const adapters = options.adapters ?? true;
    if (typeof adapters !== "boolean") c.fail("options.adapters", adapters, "a boolean");
    return call(this.#native.logprobs(b, adapters ? { temperature } : { temperature, adapters }));
  }

  /** The critic's value for every token with mask != 0; [batch * seqLen]. Needs valueHead. */
  async values(batch: TokenBatch): Promise<Float32Array> {
    this.#needValueHead("values");
    return call(this.#native.values(this.#tokenBatch("values", batch)));
  }

  /**
   * One PPO update: clipped-ratio loss on the masked tokens (token mean), plus klCoef times the
   * k3 KL estimate to `refLogprobs`, minus entropyCoef times the entropy; backward, global
   * gradient-norm clipping, AdamW (the value head is left untouched).
   */
  async policyStep(batch: PolicyBatch, hyper: Partial<PolicyHyper> = {}): Promise<PolicyStepStats> {
    const c = new Check("policyStep");
    const b = this.#tokenBatch("policyStep", batch);
    requireScored(c, b);
    const n = b.batch * b.seqLen;
    const h = { ...DEFAULT_POLICY_HYPER, ...hyper };
    this.#checkOptim(c, h);
    c.num("hyper.clipRatio", h.clipRatio, 0, 10);
    c.num("hyper.klCoef", h.klCoef, 0);
    c.num("hyper.entropyCoef", h.entropyCoef, -1e6);
    positive(c, "hyper.temperature", h.temperature ?? 1);
    if (h.dropoutSeed !== undefined) c.int("hyper.dropoutSeed", h.dropoutSeed, 0, Number.MAX_SAFE_INTEGER);
    if (h.lossNorm !== undefined) c.num("hyper.lossNorm", h.lossNorm, 0, F32_MAX);
    const ref = batch.refLogprobs === undefined ? null : c.f32("batch.refLogprobs", batch.refLogprobs, n);
    if (h.klCoef !== 0 && ref === null) c.fail("batch.refLogprobs", undefined, "a Float32Array when hyper.klCoef != 0");
    return call(
      this.#native.policyStep(
        {
          ...b,
          advantages: c.f32("batch.advantages", batch.advantages, n),
          oldLogprobs: c.f32("batch.oldLogprobs", batch.oldLogprobs, n),
          refLogprobs: ref,
        },
        h,
      ),
    );
  }

  /**
   * One critic update: 0.5 * token mean of max((v - R)^2, (clip(v, old ± clipRange) - R)^2),
   * backward, gradient clipping, AdamW (the LM head is left untouched). Needs valueHead.
   */
  async valueStep(batch: ValueBatch, hyper: Partial<ValueHyper> = {}): Promise<ValueStepStats> {
    const c = new Check("valueStep");
    this.#needValueHead("valueStep");
    const b = this.#tokenBatch("valueStep", batch);
    requireScored(c, b);
    const n = b.batch * b.seqLen;
    const h = { ...DEFAULT_VALUE_HYPER, ...hyper };
    this.#checkOptim(c, h);
    c.num("hyper.clipRange", h.clipRange, 0);
    return call(
      this.#native.valueStep(
        { ...b, returns: c.f32("batch.returns", batch.returns, n), oldValues: c.f32("batch.oldValues", batch.oldValues, n) },
        h,
      ),
    );
  }

  /** The shape a state's arrays belong to; states only load into models of the same layout. */
  get layout(): string {
    const c = this.config;
    const base = `vocab=${c.vocab} context=${c.context} width=${c.width} layers=${c.layers} heads=${c.heads} valueHead=${c.valueHead}`;
    if (c.arch === "gpt2") return base; // unchanged from before arch existed, so saved states still load
    const llama = `${base} arch=${c.arch} kvHeads=${c.kvHeads} intermediate=${c.intermediate} tiedEmbeddings=${c.tiedEmbeddings} attentionBias=${c.attentionBias}`;
    // Said only when they change the layout, so states saved before these keys existed still load.
    const extra = [...(c.headDim !== c.width / c.heads ? [`headDim=${c.headDim}`] : []), ...(c.qkNorm ? ["qkNorm=true"] : [])];
    // A LoRA state holds adapters: their rank and modules are its layout.
    if (c.lora) extra.push(`lora=${c.lora.rank}:${c.lora.modules.join(",")}`);
    return [llama, ...extra].join(" ");
  }

  /**
   * Copies of the weights, AdamW moments and step, as the calls made before it leave them (it
   * waits its turn in the queue; the JS thread does not). `setState(await getState())` is bit-exact.
   */
  async getState(): Promise<ModelState> {
    return { ...(await call(this.#native.getState())), layout: this.layout };
  }

  /**
   * The weights a model of this config starts from (what a fresh model holds), computed now
   * without waiting for the queue. For filling the tensors a checkpoint lacks.
   */
  initialParams(): Float32Array {
    try {
      return this.#native.initialParams();
    } catch (cause) {
      throw native(cause);
    }
  }

  /**
   * Test hook: queues a call that fails as a sticky CUDA error does (the device is lost): on CUDA
   * a kernel really faults, on the CPU the same error is raised directly. The addon prints the error and ends this process with status 74 (EXIT.DEVICE_LOST)
   * so that its supervisor restarts it; the promise never settles. Tests only.
   */
  __testDeviceLost(): Promise<never> {
    if (!this.#native.__testDeviceLost) {
      throw new NativeComputeError("__testDeviceLost: this addon has no device-lost test hook; rebuild it with `bun run build:native`");
    }
    return this.#native.__testDeviceLost();
  }

  /**
   * Restores a state from getState() of a model with the same config. The state is checked now
   * (a bad one throws here) and applied in the queue: calls made after it see it, awaited or not.
   */
  setState(state: ModelState): Promise<void> {
    const c = new Check("setState");
    if (typeof state !== "object" || state === null) c.fail("state", state, "an object from getState()");
    if (state.layout !== undefined && state.layout !== this.layout) {
      c.fail("state.layout", state.layout, `"${this.layout}" (this model's layout)`);
    }
    for (const key of ["params", "adamM", "adamV"] as const) {
      const v = state[key];
      if (!(v instanceof Float32Array) || v.length !== this.numTrained) {
        c.fail(`state.${key}`, v, `a Float32Array of length ${this.numTrained} (${this.#trainedWhat})`);
      }
    }
    c.int("state.step", state.step, 0, 2 ** 31 - 1);
    let queued: Promise<void>;
    try {
      queued = this.#native.setState(state);
    } catch (cause) {
      throw native(cause);
    }
    return call(queued);
  }

  /**
   * Copies the weights (getState's `params`, numParams floats) into `dst` straight from native
   * memory, in the queue like getState. For filling a shared-memory segment
   * (native/shared_memory.ts) without building an array first. `dst` must stay attached (not
   * transferred) until the promise settles.
   *
   * @example
   * ```ts
   * const seg = SharedSegment.create("/dev/shm/weights", policy.numParams * 4);
   * await policy.copyParamsTo(seg.floats(0, policy.numParams));
   * ```
   */
  copyParamsTo(dst: Float32Array): Promise<void> {
    return this.#paramCopy("copyParamsTo", "dst", dst, (a) => this.#native.copyParamsTo(a));
  }

  /**
   * Sets the weights from `src` (numParams floats, laid out as getState's `params`), in the queue
   * like setState: calls made after it see them. AdamW moments and step are left as they are, so
   * loading broadcast weights does not reset an optimizer. `src` must stay attached until the
   * promise settles.
   */
  loadParamsFrom(src: Float32Array): Promise<void> {
    return this.#paramCopy("loadParamsFrom", "src", src, (a) => this.#native.loadParamsFrom(a));
  }

  /**
   * Zero-copy weights: a model on the CPU computes, from the calls after this one on, with the
   * weights in `view` itself (numTrained floats, laid out as getState's `params`), typically a
   * shared-memory segment another process writes; nothing is copied, so a new version written
   * there is in use at once. The writer must leave `view` alone while calls run, and the model
   * cannot train from it (policyStep and valueStep fail; loadParamsFrom or setState give it its
   * own copy again). Elsewhere (a GPU model) the weights are copied in, as loadParamsFrom does.
   * Resolves to whether the model computes from `view` itself.
   *
   * @example
   * ```ts
   * const live = await rank.computeFrom(seg.floats(64, rank.numTrained)); // true on the CPU
   * ```
   */
  async computeFrom(view: Float32Array): Promise<boolean> {
    const zeroCopy = this.device === "cpu" && this.#native.computeFrom !== undefined;
    const run = zeroCopy ? (a: Float32Array) => this.#native.computeFrom!(a) : (a: Float32Array) => this.#native.loadParamsFrom(a);
    await this.#paramCopy("computeFrom", "view", view, run);
    return zeroCopy;
  }

  /**
   * Copies every base weight (numParams floats, laid out as `tensors`) into `dst`, whatever trains:
   * a LoRA model's frozen base (for a merged export). In the queue, like getState.
   */
  copyBaseTo(dst: Float32Array): Promise<void> {
    return this.#paramCopy("copyBaseTo", "dst", dst, (a) => this.#baseNative("copyBaseTo", a, true), this.numParams);
  }

  /** Sets every base weight from `src` (numParams floats): how a LoRA model's frozen base is loaded. */
  loadBaseFrom(src: Float32Array): Promise<void> {
    return this.#paramCopy("loadBaseFrom", "src", src, (a) => this.#baseNative("loadBaseFrom", a, false), this.numParams);
  }

  /** The adapters a LoRA model of this config starts from (numTrained floats); empty without LoRA. */
  initialLoraParams(): Float32Array {
    if (!this.config.lora) return new Float32Array(0);
    try {
      return this.#native.initialLoraParams!();
    } catch (cause) {
      throw native(cause);
    }
  }

  #baseNative(method: "copyBaseTo" | "loadBaseFrom", a: Float32Array, out: boolean): Promise<void> {
    const run = this.#native[method];
    if (run) return run.call(this.#native, a);
    // An addon without LoRA (the null backend): its weights are its base.
    return out ? this.#native.copyParamsTo(a) : this.#native.loadParamsFrom(a);
  }

  get #trainedWhat(): string {
    return this.config.lora ? "this config's LoRA adapter count" : "this config's parameter count";
  }

  /** Checks a params-sized Float32Array and queues the native copy; errors as setState's. */
  #paramCopy(method: string, arg: string, array: Float32Array, run: (a: Float32Array) => Promise<void>, length = this.numTrained): Promise<void> {
    if (!(array instanceof Float32Array) || array.length !== length) {
      const what = length === this.numTrained ? this.#trainedWhat : "this config's parameter count";
      new Check(method).fail(arg, array, `a Float32Array of length ${length} (${what})`);
    }
    let queued: Promise<void>;
    try {
      queued = run(array);
    } catch (cause) {
      throw native(cause);
    }
    return call(queued);
  }

  /**
   * Frees the native memory once the calls already made have run; calls made afterwards reject.
   * The promise resolves when the memory is freed.
   */
  dispose(): Promise<void> {
    return call(this.#native.dispose());
  }

  #tokenBatch(method: string, batch: TokenBatch): TokenBatch {
    const c = new Check(method);
    if (typeof batch !== "object" || batch === null) c.fail("batch", batch, "an object {tokens, mask, batch, seqLen}");
    const rows = c.int("batch.batch", batch.batch, 1, 1 << 20);
    const seqLen = c.int("batch.seqLen", batch.seqLen, 2, this.config.context);
    const n = rows * seqLen;
    return {
      tokens: c.tokens("batch.tokens", batch.tokens, n, this.config.validVocab),
      mask: c.f32("batch.mask", batch.mask, n, 0),
      batch: rows,
      seqLen,
    };
  }

  /** AdamW settings; the native code computes in float32, so bounds stay inside its range. */
  #checkOptim(c: Check, h: PolicyHyper | ValueHyper): void {
    c.num("hyper.lr", h.lr, 0, 10);
    c.num("hyper.beta1", h.beta1, 0, 0.999999);
    c.num("hyper.beta2", h.beta2, 0, 0.999999999);
    c.positive("hyper.eps", h.eps);
    c.num("hyper.weightDecay", h.weightDecay, 0, F32_MAX);
    c.num("hyper.maxGradNorm", h.maxGradNorm, 0, F32_MAX);
  }

  #needValueHead(method: string): void {
    if (!this.config.valueHead) {
      new Check(method).fail("model", "a model without a value head", "a model created with valueHead: true");
    }
  }
}

/** A model size checked against its bounds in native/model_limits.json. */
function size(c: Check, key: ModelSize, v: unknown): number {
  return c.int(`config.${key}`, v, MODEL_LIMITS[key].min, MODEL_LIMITS[key].max);
}

function positive(c: Check, arg: string, v: unknown): number {
  if (typeof v !== "number" || !Number.isFinite(v) || v <= 0) c.fail(arg, v, "a finite number > 0");
  return v;
}

/** Top-p: a probability mass in (0, 1]; 1 keeps every id. */
function topP(c: Check, arg: string, v: unknown): number {
  if (typeof v !== "number" || !Number.isFinite(v) || v <= 0 || v > 1) c.fail(arg, v, "a number in (0, 1] (1: off)");
  return v;
}

function flag(c: Check, arg: string, v: unknown): boolean {
  if (typeof v !== "boolean") c.fail(arg, v, "a boolean");
  return v;
}

/** Checks a config and fills in every default (the llama keys too, at what each arch implies). */
function resolveConfig(c: Check, config: PolicyModelConfig): ResolvedModelConfig {
  const arch = config.arch ?? "gpt2";
  if (arch !== "gpt2" && arch !== "llama") c.fail("config.arch", arch, '"gpt2" or "llama"');
  const heads = size(c, "heads", config.heads);
  const width = size(c, "width", config.width);
  const kvHeads = c.int("config.kvHeads", config.kvHeads ?? heads, MODEL_LIMITS.kvHeads.min, Math.min(MODEL_LIMITS.kvHeads.max, heads));
  const cfg: ResolvedModelConfig = {
    vocab: size(c, "vocab", config.vocab),
    context: size(c, "context", config.context),
    width,
    layers: size(c, "layers", config.layers),
    heads,
    valueHead: flag(c, "config.valueHead", config.valueHead ?? false),
    seed: c.int("config.seed", config.seed ?? 0, 0, Number.MAX_SAFE_INTEGER),
    arch,
    kvHeads,
    intermediate: size(c, "intermediate", config.intermediate ?? defaultIntermediate(arch, width)),
    ropeTheta: positive(c, "config.ropeTheta", config.ropeTheta ?? 10000),
    normEps: positive(c, "config.normEps", config.normEps ?? 1e-5),
    tiedEmbeddings: flag(c, "config.tiedEmbeddings", config.tiedEmbeddings ?? false),
    attentionBias: flag(c, "config.attentionBias", config.attentionBias ?? false),
    headDim: config.headDim === undefined ? width / heads : size(c, "headDim", config.headDim),
    qkNorm: flag(c, "config.qkNorm", config.qkNorm ?? false),
    ropeScaling: ropeScaling(c, config.ropeScaling ?? null),
    validVocab: 0,
    lora: lora(c, config.lora ?? null),
  };
  cfg.validVocab = c.int("config.validVocab", config.validVocab ?? cfg.vocab, 1, cfg.vocab);
  // A head size of its own frees width from being a multiple of heads (llama only).
  if (config.headDim === undefined && cfg.width % cfg.heads !== 0) c.fail("config.width", cfg.width, `a multiple of heads (${cfg.heads})`);
  if (arch === "gpt2") {
    // GPT-2 has one shape per size: a llama-only key set otherwise is a mistake, not a no-op.
    const implied = {
      kvHeads: heads, intermediate: 4 * width, ropeTheta: 10000, normEps: 1e-5, tiedEmbeddings: false, attentionBias: false,
      headDim: width / heads, qkNorm: false, ropeScaling: null, lora: null,
    };
    for (const [key, value] of Object.entries(implied) as [LlamaOnlyKey, unknown][]) {
      if (cfg[key] !== value) c.fail(`config.${key}`, cfg[key], `${JSON.stringify(value)} for arch "gpt2" (only arch "llama" takes ${key})`);
    }
    return cfg;
  }
  if (heads % kvHeads !== 0) c.fail("config.kvHeads", kvHeads, `a divisor of heads (${heads})`);
  if (config.headDim === undefined && (width / heads) % 2 !== 0) {
    c.fail("config.width", width, `a multiple of 2 * heads (${2 * heads}) for arch "llama": rotary embeddings need an even head size`);
  }
  if (cfg.headDim % 2 !== 0) c.fail("config.headDim", cfg.headDim, "an even number: rotary embeddings rotate pairs");
  return cfg;
}

/** null, or Llama 3's four numbers: factors > 0 with highFreqFactor above lowFreqFactor. */
/** A LoRA setting resolved: null when absent or rank 0; alpha 2 × rank and every module by default. */
function lora(c: Check, v: PolicyModelConfig["lora"]): LoraConfig | null {
  if (v === null) return null;
  if (typeof v !== "object") c.fail("config.lora", v, "null or { rank, alpha?, rslora?, modules? }");
  const rank = c.int("config.lora.rank", v.rank, 0, 1024);
  if (rank === 0) return null;
  const alpha = v.alpha === undefined ? 2 * rank : positive(c, "config.lora.alpha", v.alpha);
  const rslora = flag(c, "config.lora.rslora", v.rslora ?? false);
  const bf16Base = flag(c, "config.lora.bf16Base", v.bf16Base ?? false);
  const dropout = v.dropout ?? 0;
  if (typeof dropout !== "number" || !(dropout >= 0 && dropout < 1)) c.fail("config.lora.dropout", dropout, "a probability in [0, 1)");
  const modules = v.modules ?? [...LORA_MODULES];
  if (!Array.isArray(modules) || modules.length === 0) c.fail("config.lora.modules", modules, `a non-empty array of ${LORA_MODULES.join(", ")}`);
  modules.forEach((m, i) => {
    if (!(LORA_MODULES as readonly string[]).includes(m)) c.fail(`config.lora.modules[${i}]`, m, `one of ${LORA_MODULES.join(", ")}`);
    if (modules.indexOf(m) !== i) c.fail(`config.lora.modules[${i}]`, m, "a module not already named");
  });
  // In the native order, so the same set always makes the same layout.
  return { rank, alpha, rslora, modules: LORA_MODULES.filter((m) => modules.includes(m)), dropout, bf16Base };
}

function ropeScaling(c: Check, v: RopeScalingConfig | null): RopeScalingConfig | null {
  if (v === null) return null;
  if (typeof v !== "object") c.fail("config.ropeScaling", v, "null or { factor, lowFreqFactor, highFreqFactor, originalContext }");
  const out = {
    factor: positive(c, "config.ropeScaling.factor", v.factor),
    lowFreqFactor: positive(c, "config.ropeScaling.lowFreqFactor", v.lowFreqFactor),
    highFreqFactor: positive(c, "config.ropeScaling.highFreqFactor", v.highFreqFactor),
    originalContext: positive(c, "config.ropeScaling.originalContext", v.originalContext),
  };
  if (out.highFreqFactor <= out.lowFreqFactor) c.fail("config.ropeScaling.highFreqFactor", out.highFreqFactor, `a number above lowFreqFactor (${out.lowFreqFactor})`);
  return out;
}

/**
 * An update needs a token to learn from: some mask entry at positions 1..seqLen-1 of a row must be
 * non-zero (position 0 is never scored: nothing before it predicts it).
 */
function requireScored(c: Check, b: TokenBatch): void {
  for (let r = 0; r < b.batch; r++) {
    for (let t = 1; t < b.seqLen; t++) if (b.mask[r * b.seqLen + t] !== 0) return;
  }
  c.fail("batch.mask", b.mask, "at least one non-zero entry at positions 1..seqLen-1 of some row (all are 0: nothing to learn from)");
}

function native(cause: unknown): NativeComputeError {
  const message = cause instanceof Error ? cause.message : String(cause);
  return new NativeComputeError(message, { cause });
}

async function call<T>(p: Promise<T>): Promise<T> {
  try {
    return await p;
  } catch (cause) {
    throw native(cause);
  }
}
