/**
 * The Llama-family tensor layout, Hugging Face's names and shapes in the native model's order: a
 * format fact that the null backend reports as its tensor list and that a folder's headers are
 * checked against (model_folder.ts) before any weight is read.
 */
import type { NativeModelConfig, TensorInfo } from "../types.ts";

/**
 * The parameter tensors of an arch "llama" model, in the order and at the offsets of the native
 * model's flat parameter array (native/src/core/model.cc, build_llama_specs): q/k/v weights (and
 * biases) back to back, gate/up back to back, then the final norm, lm_head (unless tied) and the
 * value head. tests/native/llama.test.ts checks it against the addon.
 *
 * @example
 * ```ts
 * llamaTensors({ vocab: 8, width: 4, layers: 1, heads: 2 }).map((t) => t.name);
 * // ["model.embed_tokens.weight", "model.layers.0.input_layernorm.weight", ..., "lm_head.weight"]
 * ```
 */
export function llamaTensors(config: Pick<NativeModelConfig, "vocab" | "width" | "layers" | "heads"> & Partial<NativeModelConfig>): TensorInfo[] {
  const C = config.width, V = config.vocab, hd = config.headDim ?? C / config.heads, Q = config.heads * hd;
  const kv = (config.kvHeads ?? config.heads) * hd, I = config.intermediate ?? 8 * Math.ceil(C / 3);
  const out: TensorInfo[] = [];
  let offset = 0;
  const add = (name: string, shape: number[]) => {
    const size = shape.reduce((a, b) => a * b, 1);
    out.push({ name, shape, offset, size });
    offset += size;
  };
  add("model.embed_tokens.weight", [V, C]);
  for (let l = 0; l < config.layers; l++) {
    const p = `model.layers.${l}.`;
    add(`${p}input_layernorm.weight`, [C]);
    add(`${p}self_attn.q_proj.weight`, [Q, C]);
    add(`${p}self_attn.k_proj.weight`, [kv, C]);
    add(`${p}self_attn.v_proj.weight`, [kv, C]);
    if (config.attentionBias) {
      add(`${p}self_attn.q_proj.bias`, [Q]);
      add(`${p}self_attn.k_proj.bias`, [kv]);
      add(`${p}self_attn.v_proj.bias`, [kv]);
    }
    add(`${p}self_attn.o_proj.weight`, [C, Q]);
    if (config.qkNorm) {
      add(`${p}self_attn.q_norm.weight`, [hd]);
      add(`${p}self_attn.k_norm.weight`, [hd]);
    }
    add(`${p}post_attention_layernorm.weight`, [C]);
    add(`${p}mlp.gate_proj.weight`, [I, C]);
    add(`${p}mlp.up_proj.weight`, [I, C]);
    add(`${p}mlp.down_proj.weight`, [C, I]);
  }
  add("model.norm.weight", [C]);
  if (!config.tiedEmbeddings) add("lm_head.weight", [V, C]);
  if (config.valueHead) {
    add("value_head.w", [1, C]);
    add("value_head.b", [1]);
  }
  return out;
}
