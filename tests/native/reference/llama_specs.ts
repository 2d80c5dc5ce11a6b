/**
 * The Llama-family tensor list as the runtime's contract states it (Hugging Face names and
 * shapes, the runtime's value head last), built in TypeScript so the folder tests run without the addon. The
 * order is this file's choice; paramsFromTensors and saveHfModel follow whatever order a spec
 * list has, so tests that use the addon take the model's own list instead.
 */
import type { LlamaModelConfig } from "../../../native/hf/config.ts";
import type { TensorInfo } from "../../../native/types.ts";
import { rng } from "../helpers.ts";

export function llamaTensorSpecs(c: LlamaModelConfig): TensorInfo[] {
  const specs: TensorInfo[] = [];
  let offset = 0;
  const add = (name: string, shape: number[]) => {
    const size = shape.reduce((a, b) => a * b, 1);
    specs.push({ name, shape, offset, size });
    offset += size;
  };
  const hd = c.headDim ?? c.width / c.heads;
  add("model.embed_tokens.weight", [c.vocab, c.width]);
  for (let i = 0; i < c.layers; i++) {
    const p = `model.layers.${i}.`;
    add(p + "input_layernorm.weight", [c.width]);
    for (const [proj, rows] of [["q", c.heads * hd], ["k", c.kvHeads * hd], ["v", c.kvHeads * hd]] as const) {
      add(`${p}self_attn.${proj}_proj.weight`, [rows, c.width]);
      if (c.attentionBias) add(`${p}self_attn.${proj}_proj.bias`, [rows]);
    }
    add(p + "self_attn.o_proj.weight", [c.width, c.heads * hd]);
    if (c.qkNorm) {
      add(p + "self_attn.q_norm.weight", [hd]);
      add(p + "self_attn.k_norm.weight", [hd]);
    }
    add(p + "post_attention_layernorm.weight", [c.width]);
    add(p + "mlp.gate_proj.weight", [c.intermediate, c.width]);
    add(p + "mlp.up_proj.weight", [c.intermediate, c.width]);
    add(p + "mlp.down_proj.weight", [c.width, c.intermediate]);
  }
  add("model.norm.weight", [c.width]);
  if (!c.tiedEmbeddings) add("lm_head.weight", [c.vocab, c.width]);
  if (c.valueHead) {
    add("value_head.w", [1, c.width]);
    add("value_head.b", [1]);
  }
  return specs;
}

/** Seeded values for a spec list (mulberry32 mapped to [-1, 1)). */
export function seededParams(specs: readonly TensorInfo[], seed: number): Float32Array {
  const total = specs.reduce((n, s) => Math.max(n, s.offset + s.size), 0);
  const next = rng(seed);
  return new Float32Array(total).map(() => next() * 2 - 1);
}
