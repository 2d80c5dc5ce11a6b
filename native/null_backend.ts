/**
 * The null compute backend (`device: null`), as tinygrad's NULL device: it computes nothing
 * real, but keeps every contract of the native model — shapes, determinism (same seed and
 * weights, same numbers), state that changes with each update and round-trips bit-exactly — so
 * the trainer and the actor runtime can be tested end to end, exact recovery included, on a
 * machine where the addon is not built. It learns nothing; never use it for training.
 *
 * For arch "llama" it reports the native model's exact tensor list (Hugging Face names, shapes,
 * offsets; see {@link llamaTensors}) and holds that many parameters, so code that fills a state by
 * tensor name (a checkpoint loader) can be tested on it too. Arch "gpt2" keeps one stand-in tensor.
 */
import { llamaTensors } from "./hf/llama_tensors.ts";
import type {
  ModelState, NativeAddon, NativeGenerateOptions, NativeGenerateResult, NativeModelConfig, NativeModelInfo, NativePolicyBatch,
  NativePolicyHyper, NativeTokenBatch, NativeValueBatch, NativeValueHyper, PolicyModelNative, PolicyStepStats, TensorInfo,
  ValueStepStats,
} from "./types.ts";

export { llamaTensors };

/** A 32-bit hash step (FNV-1a over the bits of a number): cheap, deterministic, order-sensitive. */
function mix(h: number, x: number): number {
  h = Math.imul(h ^ (x | 0), 0x01000193) >>> 0;
  return Math.imul(h ^ ((x * 4096) | 0), 0x01000193) >>> 0;
}

/** A uniform number in [0, 1) from a hash. */
const unit = (h: number) => (Math.imul(h ^ (h >>> 15), 0x2c1b3c6d) >>> 0) / 4294967296;

class NullModel implements PolicyModelNative {
  private params: Float32Array;
  private adamM: Float32Array;
  private adamV: Float32Array;
  private step = 0;

  private readonly tensors: TensorInfo[];

  constructor(private readonly config: NativeModelConfig) {
    // GPT-2: one tensor per embedding row is plenty (sizes scale with the model like the real ones
    // do). Llama: the real layout, for loaders that fill tensors by name.
    const gpt2Size = config.vocab * config.width + (config.valueHead ? config.width : 0);
    this.tensors = config.arch === "llama" ? llamaTensors(config) : [{ name: "null.params", shape: [gpt2Size], offset: 0, size: gpt2Size }];
    const last = this.tensors[this.tensors.length - 1]!;
    const n = last.offset + last.size;
    this.params = new Float32Array(n);
    let h = mix(0x811c9dc5, config.seed);
    for (let i = 0; i < n; i++) this.params[i] = unit((h = mix(h, i))) - 0.5;
    this.adamM = new Float32Array(n);
    this.adamV = new Float32Array(n);
  }

  info(): NativeModelInfo {
    return { backend: "null", numParams: this.params.length, step: this.step, tensors: this.tensors.map((t) => ({ ...t, shape: [...t.shape] })) };
  }

  /** A fingerprint of the weights: every output depends on it, so a wrong restore shows. */
  private weightsHash(): number {
    let h = 0x811c9dc5;
    for (let i = 0; i < this.params.length; i += 97) h = mix(h, Math.round(this.params[i]! * 1e6));
    return h;
  }

  async generate(prompts: Int32Array[], o: NativeGenerateOptions): Promise<NativeGenerateResult> {
    const rows = prompts.length;
    const tokens = new Int32Array(rows * o.maxNewTokens);
    const lengths = new Int32Array(rows);
    const w = this.weightsHash();
    for (let r = 0; r < rows; r++) {
      let h = mix(mix(w, o.seed), r);
      for (const t of prompts[r]!) h = mix(h, t);
      let n = 0;
      while (n < o.maxNewTokens) {
        const token = Math.floor(unit((h = mix(h, n))) * this.config.vocab);
        tokens[r * o.maxNewTokens + n++] = token;
        if (token === o.eosToken) break;
      }
      lengths[r] = n;
    }
    const logprobs = new Float32Array(rows * o.maxNewTokens).fill(-Math.log(this.config.vocab));
    return { batch: rows, maxNewTokens: o.maxNewTokens, tokens, logprobs, values: null, lengths };
  }

  /** Per token: a function of the token, its position and the weights; zero where masked. */
  private perToken(b: NativeTokenBatch, base: number): Float32Array {
    const out = new Float32Array(b.batch * b.seqLen);
    const w = this.weightsHash();
    for (let i = 0; i < out.length; i++) if (b.mask[i] !== 0) out[i] = base - 0.1 * unit(mix(mix(w, i), b.tokens[i]!));
    return out;
  }

  async logprobs(b: NativeTokenBatch): Promise<Float32Array> {
    return this.perToken(b, -Math.log(this.config.vocab));
  }

  async values(b: NativeTokenBatch): Promise<Float32Array> {
    return this.perToken(b, 0);
  }

  /** Moves the weights along a pseudo-gradient made from the batch: the state changes as training would. */
  private update(signal: Float32Array, mask: Float32Array, lr: number): number {
    let s = 0;
    let n = 0;
    for (let i = 0; i < signal.length; i++) if (mask[i] !== 0) {
      s += signal[i]!;
      n++;
    }
    if (n === 0) throw new RangeError("every token of the batch is masked: nothing to learn from");
    const g = s / n;
    this.step++;
    for (let i = 0; i < this.params.length; i++) {
      const gi = g * (unit(mix(this.step, i)) - 0.5);
      this.adamM[i] = 0.9 * this.adamM[i]! + 0.1 * gi;
      this.adamV[i] = 0.999 * this.adamV[i]! + 0.001 * gi * gi;
      this.params[i] = this.params[i]! - lr * this.adamM[i]!;
    }
    return Math.abs(g);
  }

  async policyStep(b: NativePolicyBatch, h: NativePolicyHyper): Promise<PolicyStepStats> {
    const gradNorm = this.update(b.advantages, b.mask, h.lr);
    return { pgLoss: -gradNorm, klLoss: 0, entropy: Math.log(this.config.vocab), clipFrac: 0, approxKl: 0, gradNorm, loss: -gradNorm };
  }

  async valueStep(b: NativeValueBatch, h: NativeValueHyper): Promise<ValueStepStats> {
    const gradNorm = this.update(b.returns, b.mask, h.lr);
    return { vfLoss: gradNorm, vfClipFrac: 0, gradNorm };
  }

  async getState(): Promise<ModelState> {
    return { params: this.params.slice(), adamM: this.adamM.slice(), adamV: this.adamV.slice(), step: this.step };
  }

  async setState(s: ModelState): Promise<void> {
    this.params = s.params.slice();
    this.adamM = s.adamM.slice();
    this.adamV = s.adamV.slice();
    this.step = s.step;
  }

  async copyParamsTo(dst: Float32Array): Promise<void> {
    dst.set(this.params);
  }

  async loadParamsFrom(src: Float32Array): Promise<void> {
    this.params = src.slice();
  }

  async dispose(): Promise<void> {}

  initialParams(): Float32Array {
    return new NullModel(this.config).params;
  }
}

/** The null backend behind the addon's interface; `PolicyModel` uses it for `device: "null"`. */
export const NULL_ADDON: NativeAddon = {
  deviceInfo: () => ({
    backends: [],
    cuda: { compiled: false, usable: false, reason: "null backend", deviceCount: 0, driverVersion: 0, runtimeVersion: 0, driverRequired: 0, device: null },
    blas: { linked: false, vendor: "none", config: "", threads: 0 },
    threads: 1,
    hardwareThreads: 1,
  }),
  setThreads: () => {},
  benchMatmul: () => null,
  measureClockGHz: () => Number.NaN,
  PolicyModelNative: NullModel as unknown as NativeAddon["PolicyModelNative"],
  // A plain ArrayBuffer would look like a segment but share nothing, so a "shared" transfer would
  // silently lose its data: refuse instead.
  mapShared: (path) => {
    throw new Error(`mapShared(${JSON.stringify(path)}): the null backend has no shared memory; build the native addon (bun run build:native) to map segments`);
  },
  abiVersion: 0,
};
