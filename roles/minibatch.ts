/**
 * Mini-batch iteration shared by the policy and value updates: each epoch is a permutation of
 * the rows drawn from (plan seed, epoch), so a replayed update takes exactly the same steps.
 */
import { Rng } from "../runtime/core/rng.ts";
import type { UpdatePlan } from "./model_options.ts";

/** A batch of rows: every typed array field is [batch, seqLen]. */
export interface RowBatch {
  batch: number;
  seqLen: number;
}

/** Rows `idx` of a [rows, seqLen] array (a mini-batch). */
export function takeRows<T extends Float32Array | Int32Array>(src: T, seqLen: number, idx: readonly number[]): T {
  const out = new (src.constructor as new (n: number) => T)(idx.length * seqLen);
  idx.forEach((r, i) => out.set(src.subarray(r * seqLen, (r + 1) * seqLen), i * seqLen));
  return out;
}

export function* miniBatches<T extends RowBatch>(full: T, plan: UpdatePlan): Generator<T> {
  const size = Math.min(plan.miniBatchSize, full.batch);
  for (let epoch = 0; epoch < plan.epochs; epoch++) {
    const order = Array.from({ length: full.batch }, (_, i) => i);
    const rng = new Rng(plan.seed + epoch * 7919);
    for (let i = order.length - 1; i > 0; i--) {
      const j = rng.int(i + 1);
      [order[i], order[j]] = [order[j]!, order[i]!];
    }
    for (let start = 0; start + size <= full.batch; start += size) {
      const idx = order.slice(start, start + size);
      const mb: Record<string, unknown> = { batch: idx.length, seqLen: full.seqLen };
      for (const [key, value] of Object.entries(full)) {
        if (value instanceof Float32Array || value instanceof Int32Array) mb[key] = takeRows(value, full.seqLen, idx);
      }
      yield mb as unknown as T;
    }
  }
}

/** Mean of each numeric field over a list of step results. */
export function meanStats<T extends object>(list: readonly T[]): T {
  const out: Record<string, number> = {};
  for (const s of list) for (const [k, v] of Object.entries(s)) if (typeof v === "number") out[k] = (out[k] ?? 0) + v / list.length;
  return out as T;
}
