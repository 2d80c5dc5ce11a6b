/**
 * How the policy loss is aggregated over a mini-batch's tokens (verl's `loss_agg_mode`), as the
 * per-token weights and the denominator the native PPO loss takes (sum(w · l) / lossNorm, or
 * sum(w · l) / sum(w) when lossNorm is 0):
 *
 * | mode | loss | weights | lossNorm |
 * | --- | --- | --- | --- |
 * | `token-mean` | Σ_tokens l / #tokens | mask | 0 (Σ mask) |
 * | `seq-mean-token-sum` | mean over sequences of Σ_t l | mask | #sequences |
 * | `seq-mean-token-mean` | mean over sequences of (Σ_t l / len) | mask / len | 0 (#sequences with tokens) |
 * | `seq-mean-token-sum-norm` | Σ_tokens l / max response length (Dr. GRPO) | mask | max response length |
 *
 * `#sequences` counts the mini-batch's rows that have a response token; the fixed length of Dr.
 * GRPO is the job's response budget (`max_new_tokens`), constant over training as the paper wants.
 *
 * @example
 * ```ts
 * const { mask, lossNorm } = aggregation(mb.mask, mb.batch, mb.seqLen, { mode: "seq-mean-token-mean", maxResponse: 64 });
 * ```
 */
import type { LOSS_AGG_MODES } from "../config/schema.ts";

export type LossAggMode = (typeof LOSS_AGG_MODES)[number];

export interface LossAggregation {
  mode: LossAggMode;
  /** The response budget: the fixed denominator of seq-mean-token-sum-norm. */
  maxResponse: number;
}

/** The loss weights (a new mask) and the loss denominator for one mini-batch laid out [rows, seqLen]. */
export function aggregation(mask: Float32Array, rows: number, seqLen: number, agg: LossAggregation): { mask: Float32Array; lossNorm: number } {
  switch (agg.mode) {
    case "token-mean":
      return { mask, lossNorm: 0 };
    case "seq-mean-token-sum":
      return { mask, lossNorm: rowLengths(mask, rows, seqLen).filter((n) => n > 0).length };
    case "seq-mean-token-sum-norm":
      return { mask, lossNorm: agg.maxResponse };
    case "seq-mean-token-mean": {
      const lengths = rowLengths(mask, rows, seqLen);
      const weights = new Float32Array(mask.length);
      for (let r = 0; r < rows; r++) {
        for (let t = 0; t < seqLen; t++) {
          const i = r * seqLen + t;
          if (mask[i] !== 0) weights[i] = mask[i]! / lengths[r]!;
        }
      }
      return { mask: weights, lossNorm: 0 };
    }
  }
}

/** The summed mask of each row (its response length when the mask is 0/1). */
function rowLengths(mask: Float32Array, rows: number, seqLen: number): number[] {
  const out = new Array<number>(rows).fill(0);
  for (let r = 0; r < rows; r++) for (let t = 0; t < seqLen; t++) out[r]! += mask[r * seqLen + t]!;
  return out;
}
