/** Shared fixtures for the native tests: seeded batches and small models. */
import { PolicyModel, type PolicyModelConfig } from "../../native/policy_model.ts";

export const SMALL: PolicyModelConfig = { vocab: 8, context: 12, width: 32, layers: 2, heads: 4, seed: 5 };

/** Deterministic pseudo-random numbers (mulberry32), so every test is seeded. */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Random tokens [batch, seqLen] with the first `prompt` tokens unmasked. */
export function tokenBatch(seed: number, batch: number, seqLen: number, vocab: number, prompt = 2) {
  const r = rng(seed);
  const tokens = new Int32Array(batch * seqLen).map(() => Math.floor(r() * vocab));
  const mask = new Float32Array(batch * seqLen);
  for (let b = 0; b < batch; b++) for (let t = prompt; t < seqLen; t++) mask[b * seqLen + t] = 1;
  return { tokens, mask, batch, seqLen };
}

export function model(extra: Partial<PolicyModelConfig> = {}): PolicyModel {
  return new PolicyModel({ ...SMALL, ...extra }, { device: "cpu" });
}

/** FNV-1a over the bytes of typed arrays: a compact fingerprint for bit-exact comparisons. */
export function fingerprint(...arrays: ArrayBufferView[]): string {
  let h = 0x811c9dc5;
  for (const a of arrays) {
    const bytes = new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
    for (let i = 0; i < bytes.length; i++) h = Math.imul(h ^ bytes[i]!, 0x01000193) >>> 0;
  }
  return h.toString(16).padStart(8, "0");
}
