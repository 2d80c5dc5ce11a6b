/**
 * LoRA adapters in PEFT's folder layout, and merged into their base. PEFT (the Hugging Face
 * library) loads `adapter_config.json` + `adapter_model.safetensors` onto the base model named in
 * the config; tensors are named `base_model.model.<module path>.lora_A.weight` ([r, in]) and
 * `...lora_B.weight` ([out, r]), which is the model's own adapter name with PEFT's prefix.
 *
 * @example
 * ```ts
 * savePeftAdapter("runs/job/hf_model", { lora: model.config.lora!, tensors: model.loraTensors, adapters: state.params, baseModel: "HuggingFaceTB/SmolLM2-135M" });
 * const merged = mergeLora(model.tensors, base, model.config.lora!, model.loraTensors, state.params);
 * ```
 */
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { writeFileDurably } from "../files.ts";
import type { LoraConfig, TensorInfo } from "../types.ts";
import { HF_METADATA, type Tensor, writeSafetensors } from "./safetensors.ts";

export const ADAPTER_CONFIG_FILE = "adapter_config.json";
export const ADAPTER_WEIGHTS_FILE = "adapter_model.safetensors";
/** What PEFT puts before a module path: its PeftModel wraps the model (base_model), which wraps the transformer (model). */
export const PEFT_PREFIX = "base_model.model.";

/** scale = alpha / rank, or alpha / √rank with rsLoRA (as PEFT computes it). */
export function loraScale(lora: LoraConfig): number {
  return lora.rslora ? lora.alpha / Math.sqrt(lora.rank) : lora.alpha / lora.rank;
}

/** adapter_config.json's contents, with the keys PEFT writes for a plain LoRA. */
export function peftAdapterConfig(lora: LoraConfig, baseModel: string): Record<string, unknown> {
  return {
    peft_type: "LORA",
    task_type: "CAUSAL_LM",
    base_model_name_or_path: baseModel,
    r: lora.rank,
    lora_alpha: lora.alpha,
    lora_dropout: lora.dropout,
    target_modules: [...lora.modules],
    use_rslora: lora.rslora,
    bias: "none",
    fan_in_fan_out: false,
    inference_mode: true,
    init_lora_weights: true,
    modules_to_save: null,
    use_dora: false,
    rank_pattern: {},
    alpha_pattern: {},
  };
}

export interface PeftExport {
  lora: LoraConfig;
  /** The adapters' tensors (PolicyModel#loraTensors) and their values (a LoRA model's getState().params). */
  tensors: readonly TensorInfo[];
  adapters: Float32Array;
  /** base_model_name_or_path: the folder (or hub id) the base weights came from; "" for a new model. */
  baseModel: string;
}

/** Writes adapter_config.json and adapter_model.safetensors (float32) into `dir`; the tensor names written. */
export function savePeftAdapter(dir: string, o: PeftExport): string[] {
  const out = new Map<string, Tensor>();
  for (const t of o.tensors) {
    if (t.offset + t.size > o.adapters.length) throw new RangeError(`savePeftAdapter: adapters hold ${o.adapters.length} values; ${t.name} needs ${t.offset + t.size}`);
    out.set(PEFT_PREFIX + t.name, { shape: [...t.shape], data: o.adapters.subarray(t.offset, t.offset + t.size) });
  }
  mkdirSync(dir, { recursive: true });
  writeSafetensors(join(dir, ADAPTER_WEIGHTS_FILE), out, { dtype: "F32", metadata: { ...HF_METADATA } });
  writeFileDurably(join(dir, ADAPTER_CONFIG_FILE), JSON.stringify(peftAdapterConfig(o.lora, o.baseModel), null, 2) + "\n");
  return [...out.keys()];
}

/**
 * The base weights with every adapter folded in: W + scale · B·A for each targeted projection,
 * each entry summed in float64 and rounded once to float32 (what PEFT's merge_and_unload gives,
 * up to its own float32 rounding).
 */
export function mergeLora(baseSpecs: readonly TensorInfo[], base: Float32Array, lora: LoraConfig, tensors: readonly TensorInfo[], adapters: Float32Array): Float32Array {
  const merged = base.slice();
  const byName = new Map(baseSpecs.map((s) => [s.name, s]));
  const scale = loraScale(lora);
  for (const a of tensors) {
    if (!a.name.endsWith(".lora_A.weight")) continue;
    const module = a.name.slice(0, -".lora_A.weight".length);
    const b = tensors.find((t) => t.name === `${module}.lora_B.weight`);
    const w = byName.get(`${module}.weight`);
    if (!b || !w) throw new RangeError(`mergeLora: ${a.name} has no ${b ? `base weight ${module}.weight` : "lora_B partner"}`);
    const [r, inDim] = a.shape as [number, number];
    const outDim = b.shape[0]!;
    if (w.shape[0] !== outDim || w.shape[1] !== inDim) throw new RangeError(`mergeLora: ${module}.weight is [${w.shape}], its adapter gives [${outDim}, ${inDim}]`);
    for (let o = 0; o < outDim; o++) {
      for (let i = 0; i < inDim; i++) {
        let s = 0;
        for (let k = 0; k < r; k++) s += adapters[b.offset + o * r + k]! * adapters[a.offset + k * inDim + i]!;
        const at = w.offset + o * inDim + i;
        merged[at] = base[at]! + scale * s;
      }
    }
  }
  return merged;
}
