/**
 * Model sizes, defaults and bounds, from native/model_limits.json: the same numbers bound the
 * configuration (config/schema.ts), the addon's TypeScript checks (policy_model.ts) and its C++
 * checks (compile definitions made by CMakeLists.txt from the same file).
 */
import limits from "./model_limits.json" with { type: "json" };

/** kvHeads, intermediate and headDim size arch llama models only (kvHeads is further bounded by heads). */
export type ModelSize = "vocab" | "context" | "width" | "layers" | "heads" | "kvHeads" | "intermediate" | "headDim";
export interface SizeLimit {
  min: number;
  max: number;
  default: number;
}

export const MODEL_LIMITS: Readonly<Record<ModelSize, SizeLimit>> = Object.freeze({
  vocab: limits.vocab, context: limits.context, width: limits.width, layers: limits.layers, heads: limits.heads,
  kvHeads: limits.kvHeads, intermediate: limits.intermediate, headDim: limits.headDim,
});
