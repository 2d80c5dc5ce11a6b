/**
 * Advantage estimators over token batches laid out [rows, seqLen], with `mask` 1 on response
 * tokens. Position t of values/advantages/returns belongs to token t (DESIGN's convention).
 *
 * - GAE: the sequence score is the reward of the last response token (plus any per-token reward,
 *   such as a KL penalty, on every response token); δ_t = r_t + γ·V_{t+1} − V_t;
 *   A_t = Σ (γλ)^k δ_{t+k}; returns R_t = A_t + V_t. Advantages are then whitened over the batch.
 * - GRPO: no critic; each response's score is normalised within its group of `groupSize`
 *   responses to one prompt, (s − mean) / (std + ε) (or s − mean alone, without the std), and
 *   given to all of its tokens.
 * - RLOO: no critic; each response's baseline is the mean score of the other responses to its
 *   prompt, s_i − mean_{j≠i} s_j = n/(n−1) · (s_i − mean), given to all of its tokens.
 * - REINFORCE++: no critic; the discounted return of each response token, G_t = r_t + γ G_{t+1}
 *   (the score on the last token, plus any per-token reward such as a KL penalty), whitened over
 *   the batch's response tokens. Returns are G itself.
 * These follow verl's compute_*_advantage functions of the same names.
 */

export interface TokenLayout {
  rows: number;
  seqLen: number;
  mask: Float32Array;
}

export interface GaeResult {
  advantages: Float32Array;
  returns: Float32Array;
}

/** Masked response positions of one row, in order. */
function responsePositions(layout: TokenLayout, row: number): number[] {
  const out: number[] = [];
  const base = row * layout.seqLen;
  for (let t = 0; t < layout.seqLen; t++) if (layout.mask[base + t] !== 0) out.push(base + t);
  return out;
}

/** `tokenRewards` (optional, [rows, seqLen]) are added to each response token's reward: a KL penalty, say. */
export function gae(layout: TokenLayout, scores: ArrayLike<number>, values: Float32Array, gamma: number, lam: number, tokenRewards?: Float32Array): GaeResult {
  const n = layout.rows * layout.seqLen;
  const advantages = new Float32Array(n);
  const returns = new Float32Array(n);
  for (let row = 0; row < layout.rows; row++) {
    const pos = responsePositions(layout, row);
    let next = 0;
    let nextValue = 0;
    for (let i = pos.length - 1; i >= 0; i--) {
      const t = pos[i]!;
      const r = (i === pos.length - 1 ? scores[row]! : 0) + (tokenRewards?.[t] ?? 0);
      const delta = r + gamma * nextValue - values[t]!;
      next = delta + gamma * lam * next;
      advantages[t] = next;
      returns[t] = next + values[t]!;
      nextValue = values[t]!;
    }
  }
  return { advantages: whiten(advantages, layout.mask), returns };
}

export function grpo(layout: TokenLayout, scores: ArrayLike<number>, groupSize: number, normByStd = true, eps = 1e-6): Float32Array {
  if (layout.rows % groupSize !== 0) throw new RangeError(`grpo: ${layout.rows} rows do not split into groups of ${groupSize}`);
  const advantages = new Float32Array(layout.rows * layout.seqLen);
  for (let g = 0; g < layout.rows; g += groupSize) {
    let mean = 0;
    for (let i = 0; i < groupSize; i++) mean += scores[g + i]!;
    mean /= groupSize;
    let varSum = 0;
    for (let i = 0; i < groupSize; i++) varSum += (scores[g + i]! - mean) ** 2;
    const std = groupSize > 1 ? Math.sqrt(varSum / (groupSize - 1)) : 0;
    for (let i = 0; i < groupSize; i++) {
      const a = normByStd ? (scores[g + i]! - mean) / (std + eps) : scores[g + i]! - mean;
      for (const t of responsePositions(layout, g + i)) advantages[t] = a;
    }
  }
  return advantages;
}

export function rloo(layout: TokenLayout, scores: ArrayLike<number>, groupSize: number): Float32Array {
  if (groupSize < 2) throw new RangeError(`rloo: needs groups of at least 2 responses, got ${groupSize}`);
  if (layout.rows % groupSize !== 0) throw new RangeError(`rloo: ${layout.rows} rows do not split into groups of ${groupSize}`);
  const advantages = new Float32Array(layout.rows * layout.seqLen);
  for (let g = 0; g < layout.rows; g += groupSize) {
    let sum = 0;
    for (let i = 0; i < groupSize; i++) sum += scores[g + i]!;
    for (let i = 0; i < groupSize; i++) {
      const a = scores[g + i]! - (sum - scores[g + i]!) / (groupSize - 1);
      for (const t of responsePositions(layout, g + i)) advantages[t] = a;
    }
  }
  return advantages;
}

/** `tokenRewards` (optional, [rows, seqLen]) are added to each response token's reward, as in gae. */
export function reinforcePlusPlus(layout: TokenLayout, scores: ArrayLike<number>, gamma: number, tokenRewards?: Float32Array): GaeResult {
  const returns = new Float32Array(layout.rows * layout.seqLen);
  for (let row = 0; row < layout.rows; row++) {
    const pos = responsePositions(layout, row);
    let next = 0;
    for (let i = pos.length - 1; i >= 0; i--) {
      const t = pos[i]!;
      next = (i === pos.length - 1 ? scores[row]! : 0) + (tokenRewards?.[t] ?? 0) + gamma * next;
      returns[t] = next;
    }
  }
  return { advantages: whiten(returns, layout.mask), returns };
}

/** Zero mean, unit variance over the masked entries (masked-out entries stay 0). */
export function whiten(x: Float32Array, mask: Float32Array, eps = 1e-8): Float32Array {
  let n = 0;
  let mean = 0;
  for (let i = 0; i < x.length; i++) if (mask[i] !== 0) {
    n++;
    mean += x[i]!;
  }
  if (n < 2) return x;
  mean /= n;
  let v = 0;
  for (let i = 0; i < x.length; i++) if (mask[i] !== 0) v += (x[i]! - mean) ** 2;
  const scale = 1 / Math.sqrt(v / (n - 1) + eps);
  const out = new Float32Array(x.length);
  for (let i = 0; i < x.length; i++) if (mask[i] !== 0) out[i] = (x[i]! - mean) * scale;
  return out;
}
