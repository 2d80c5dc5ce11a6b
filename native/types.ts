/**
 * The TypeScript mirror of the native addon's surface. Every function the addon exports is
 * declared here with exactly the shape it returns; `native/loader.ts` checks the shape on load.
 */

/** CUDA availability as the addon sees it right now. */
export interface CudaInfo {
  /** CUDA sources were compiled into this addon (nvcc was present at build time). */
  compiled: boolean;
  /** A device can be used now. */
  usable: boolean;
  /** Why not, when `usable` is false; null otherwise. */
  reason: string | null;
  deviceCount: number;
  /** Driver version as CUDA encodes it (13000 = 13.0); 0 when no driver is installed. */
  driverVersion: number;
  /** Version of the statically linked CUDA runtime; 0 when CUDA is not compiled in. */
  runtimeVersion: number;
  /**
   * The driver the addon needs: the CUDA version it was built against (CUDART_VERSION), encoded
   * as `driverVersion` is; 0 when CUDA is not compiled in. An installed driver older than this
   * makes `usable` false, with a `reason` naming both versions.
   */
  driverRequired: number;
  /** Device 0, when usable. */
  device: { name: string; totalMemory: number; freeMemory: number; computeCapability: string } | null;
}

/** The BLAS the CPU backend multiplies matrices with. */
export interface BlasInfo {
  linked: boolean;
  /** "OpenBLAS", or "none" when the built-in kernels are used. */
  vendor: string;
  /** The library's own build description. */
  config: string;
  threads: number;
}

/** What `deviceInfo()` returns. */
export interface DeviceInfo {
  /** Compiled backends; "cpu" is always first. */
  backends: Array<"cpu" | "cuda">;
  cuda: CudaInfo;
  blas: BlasInfo;
  /** Threads the CPU kernels use (setThreads, else REVENANT_NUM_THREADS, else the hardware's). */
  threads: number;
  hardwareThreads: number;
}

/** "gpt2": learned positions, LayerNorm, GELU MLP. "llama": RoPE, RMSNorm, SwiGLU, grouped-query attention. */
export type ModelArch = "gpt2" | "llama";

/**
 * Model sizes as the native constructor takes them. The llama keys are optional there (absent:
 * the default); PolicyModel always passes them resolved.
 */
export interface NativeModelConfig {
  vocab: number;
  context: number;
  width: number;
  layers: number;
  heads: number;
  valueHead: boolean;
  seed: number;
  arch?: ModelArch;
  kvHeads?: number;
  intermediate?: number;
  ropeTheta?: number;
  normEps?: number;
  tiedEmbeddings?: boolean;
  attentionBias?: boolean;
  /** Attention head size; absent: width / heads. */
  headDim?: number;
  /** Per-head RMSNorm of q and k before RoPE (Qwen3's q_norm, k_norm). */
  qkNorm?: boolean;
  /** Llama 3 rope scaling; null or absent: plain RoPE. */
  ropeScaling?: RopeScalingConfig | null;
  /** The ids that may be sampled and scored (the first rows of the embedding); absent: vocab. */
  validVocab?: number;
  /** LoRA adapters on the projections (llama only); null or absent: every weight trains. */
  lora?: LoraSetting | null;
}

/** The projections a LoRA adapter may sit beside (PEFT's target_modules names). */
export const LORA_MODULES = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"] as const;
export type LoraModule = (typeof LORA_MODULES)[number];

/**
 * Low-rank adapters: each targeted projection computes W x + scale · B (A x), A [rank, in]
 * (Kaiming-uniform, as PEFT initialises it), B [out, rank] (zeros), scale = alpha / rank (alpha /
 * √rank with rslora). The base weights are frozen: state, optimizer and weight copies hold the
 * adapters alone.
 */
export interface LoraConfig {
  rank: number;
  alpha: number;
  rslora: boolean;
  modules: LoraModule[];
  /** Dropout of each adapter's input during policy steps (never when scoring or sampling), [0, 1). */
  dropout: number;
  /**
   * The frozen base's projection matrices, token embedding and LM head held as bfloat16 (half the
   * bytes; each matrix, gathered row or head chunk widened to float32 right before it is used, so
   * results equal a float32 base of the same rounded weights). Set when the base comes from a BF16
   * folder. Default false.
   */
  bf16Base: boolean;
}

/** A LoRA setting as given: rank, the rest defaulted (alpha 2 × rank, no rsLoRA, every module, no dropout, a float32 base). */
export type LoraSetting = Partial<LoraConfig> & { rank: number };

/** Llama 3's rope scaling (config.json's `rope_scaling` with rope_type "llama3"). */
export interface RopeScalingConfig {
  factor: number;
  lowFreqFactor: number;
  highFreqFactor: number;
  /** `original_max_position_embeddings`: the context the frequencies were made for. */
  originalContext: number;
}

/**
 * One parameter tensor's place in the flat parameter array of a state. Arch llama uses Hugging
 * Face's names and [out, in] shapes ("model.layers.0.self_attn.q_proj.weight", ...), so a
 * checkpoint's tensors can be copied in by name.
 */
export interface TensorInfo {
  name: string;
  shape: number[];
  offset: number;
  size: number;
}

/** What `PolicyModelNative#info()` returns. */
export interface NativeModelInfo {
  /** "null": the null backend (native/null_backend.ts), which computes nothing real. */
  backend: "cpu" | "cuda" | "null";
  /** Where it computes: "cpu" or "cuda:N" (absent from addons built before device indexes). */
  device?: string;
  /** Device "auto" only: why it runs on the CPU (no usable CUDA device); null when it did not fall back. */
  fallback?: string | null;
  numParams: number;
  /** What state and weight copies hold: numParams, or with LoRA the adapters' count (absent: an addon without LoRA). */
  numTrained?: number;
  step: number;
  tensors: TensorInfo[];
  /** The adapters' tensors (PEFT's names without "base_model.model."), offsets into the state's arrays; [] without LoRA. */
  loraTensors?: TensorInfo[];
  /** Bytes the base weights take in the backend's memory, as the model counts them (absent: an older addon). */
  baseBytes?: number;
}

/** Tokens [batch, seqLen] row-major, with a per-token loss weight (1 = response token). */
export interface NativeTokenBatch {
  tokens: Int32Array;
  mask: Float32Array;
  batch: number;
  seqLen: number;
}

export interface NativePolicyBatch extends NativeTokenBatch {
  advantages: Float32Array;
  oldLogprobs: Float32Array;
  refLogprobs?: Float32Array | null;
}

export interface NativeValueBatch extends NativeTokenBatch {
  returns: Float32Array;
  oldValues: Float32Array;
}

export interface NativeGenerateOptions {
  maxNewTokens: number;
  temperature: number;
  seed: number;
  /** -1: no end-of-sequence token. */
  eosToken: number;
  /** Keep the topK most likely ids (0, the default: off), then the smallest set reaching topP (1, the default: off). */
  topK?: number;
  topP?: number;
}

/** How log-probs are taken: of softmax(logits / temperature). */
export interface NativeLogprobOptions {
  temperature: number;
  /** false: a LoRA model scores with its base alone (absent: true). */
  adapters?: boolean;
}

export interface NativeGenerateResult {
  batch: number;
  maxNewTokens: number;
  /** [batch, maxNewTokens]; 0 after each row's length. */
  tokens: Int32Array;
  /**
   * [batch, maxNewTokens]: log p of each sampled token under softmax(logits / temperature), without
   * the top-k/top-p truncation (temperature 0: softmax(logits)): what logprobs() gives at that temperature.
   */
  logprobs: Float32Array;
  /** [batch, maxNewTokens] when the model has a value head, else null. */
  values: Float32Array | null;
  /** [batch]: tokens generated per row, end-of-sequence token included. */
  lengths: Int32Array;
}

export interface NativeOptimHyper {
  lr: number;
  beta1: number;
  beta2: number;
  eps: number;
  weightDecay: number;
  /** Global gradient-norm clip; <= 0 disables it. */
  maxGradNorm: number;
}

export interface NativePolicyHyper extends NativeOptimHyper {
  clipRatio: number;
  klCoef: number;
  entropyCoef: number;
  /** The loss's log-probs and entropy are of softmax(logits / temperature): the rollout's temperature. Default 1. */
  temperature?: number;
  /** The mask of LoRA dropout in this step (lora.dropout > 0): an integer 0..2^53 - 1. Default 0. */
  dropoutSeed?: number;
  /**
   * The denominator of the policy, KL and entropy terms: 0 (the default) = the summed mask (a
   * token mean); a positive value divides the mask-weighted sums by it instead.
   */
  lossNorm?: number;
}

export interface NativeValueHyper extends NativeOptimHyper {
  /** Value clipping around oldValues; <= 0 disables it. */
  clipRange: number;
}

export interface PolicyStepStats {
  pgLoss: number;
  klLoss: number;
  entropy: number;
  clipFrac: number;
  approxKl: number;
  gradNorm: number;
  /** pgLoss + klCoef * klLoss - entropyCoef * entropy. */
  loss: number;
}

export interface ValueStepStats {
  vfLoss: number;
  vfClipFrac: number;
  gradNorm: number;
}

/** Weights, AdamW moments and step; every array holds numTrained floats (numParams, or a LoRA model's adapters). */
export interface ModelState {
  params: Float32Array;
  adamM: Float32Array;
  adamV: Float32Array;
  step: number;
  /**
   * The model shape the arrays belong to ("vocab=16 context=32 width=64 layers=2 heads=4
   * valueHead=false", with " arch=llama kvHeads=... intermediate=... tiedEmbeddings=...
   * attentionBias=..." appended for llama); PolicyModel adds it in getState() and checks it in
   * setState() when present.
   */
  layout?: string;
}

/**
 * The native model object. Every method that touches the weights joins the model's call queue and
 * returns a Promise: calls run one at a time, off the JS thread, in the order they were made.
 * `info()` answers at once, even while a call runs (its `step` is the one the last finished call
 * left). After `dispose()`, later calls reject; the calls made before it still run.
 */
export interface PolicyModelNative {
  info(): NativeModelInfo;
  generate(prompts: Int32Array[], options: NativeGenerateOptions): Promise<NativeGenerateResult>;
  /** `{ adapters: false }`: the base model's log-probs, a LoRA model's reference policy. */
  logprobs(batch: NativeTokenBatch, options?: NativeLogprobOptions): Promise<Float32Array>;
  values(batch: NativeTokenBatch): Promise<Float32Array>;
  policyStep(batch: NativePolicyBatch, hyper: NativePolicyHyper): Promise<PolicyStepStats>;
  valueStep(batch: NativeValueBatch, hyper: NativeValueHyper): Promise<ValueStepStats>;
  /** The state the calls made before it leave. */
  getState(): Promise<ModelState>;
  setState(state: ModelState): Promise<void>;
  /**
   * Copies the weights (numParams floats, `params` of getState) into `dst`, which the caller owns
   * (a shared-memory segment's view, say), without an intermediate array. `dst` must not be
   * detached or transferred until the promise settles.
   */
  copyParamsTo(dst: Float32Array): Promise<void>;
  /** Sets the weights from `src` (numTrained floats); AdamW moments and step are unchanged. */
  loadParamsFrom(src: Float32Array): Promise<void>;
  /** The calls after it compute with the weights in `view` itself, copying nothing (CPU models; absent: an addon without it). */
  computeFrom?(view: Float32Array): Promise<void>;
  /** The base weights (numParams floats) whatever trains; a LoRA model's frozen base (absent: an addon without LoRA). */
  copyBaseTo?(dst: Float32Array): Promise<void>;
  loadBaseFrom?(src: Float32Array): Promise<void>;
  /** The adapters a LoRA model of this config starts from. */
  initialLoraParams?(): Float32Array;
  /** Resolves once the weights are freed (after the calls made before it). */
  dispose(): Promise<void>;
  /** The weights a model of this config starts from; computed at once, outside the queue. */
  initialParams(): Float32Array;
  /**
   * Test hook: queues a call that fails as a lost device does (on CUDA a kernel really faults; on
   * the CPU the same error is raised directly); the addon prints it and ends the process with
   * status 74. Never settles.
   */
  __testDeviceLost?(): Promise<never>;
}

export interface BenchMatmulOptions {
  m: number;
  n: number;
  k: number;
  transA?: boolean;
  transB?: boolean;
  impl: "own" | "blas";
  /** Time budget; default 0.3 s. */
  seconds?: number;
}

export interface BenchMatmulResult {
  gflops: number;
  iterations: number;
  kernel: string;
}

/** The raw addon module. */
export interface NativeAddon {
  deviceInfo(): DeviceInfo;
  /** Sets the CPU backend's thread count for this process (1..4096); the pool follows at its next use. */
  setThreads(threads: number): void;
  /** Times C = op(A) op(B) with our kernel or OpenBLAS (null when the build has no BLAS). */
  benchMatmul(options: BenchMatmulOptions): BenchMatmulResult | null;
  /** Core clock in GHz from a dependent-add chain (NaN where unsupported); for peak estimates. */
  measureClockGHz(): number;
  /** `device`: "auto", "cpu", "cuda" or "cuda:N" (native/device.ts). */
  PolicyModelNative: new (config: NativeModelConfig, device: string) => PolicyModelNative;
  /**
   * Maps the file at `path` (under /dev/shm for memory-backed sharing) MAP_SHARED and returns it as
   * an ArrayBuffer of `bytes` (an integer in 1..2^40) that every process mapping the same file
   * sees. `create`: make or truncate the file to `bytes` zeros (reserved now, so a full /dev/shm is
   * an ENOSPC error rather than a crash later); otherwise the file must exist with exactly `bytes`.
   * Unmapped when the ArrayBuffer is collected; the file stays until unlinked. Bad arguments throw
   * TypeError/RangeError; system failures an Error with `code` ("ENOENT", "ENOSPC", ...).
   * See native/shared_memory.ts.
   */
  mapShared(path: string, bytes: number, create: boolean): ArrayBuffer;
  abiVersion: number;
}
