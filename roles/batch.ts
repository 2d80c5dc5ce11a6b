/**
 * Turns prompts and sampled responses into the padded token batch every role consumes:
 * [rows, seqLen] tokens (the tokenizer's pad id after each sequence), mask 1 on response tokens (EOS included).
 */
export interface SequenceBatch {
  tokens: Int32Array;
  mask: Float32Array;
  batch: number;
  seqLen: number;
  /** Tokens of each response (EOS included). */
  responseLengths: Int32Array;
}

/**
 * `prompts[r]` are token ids; `responses` is [rows, maxNewTokens] with `lengths[r]` valid tokens.
 * seqLen is fixed by the longest prompt plus maxNewTokens, so batches of a job share a shape.
 */
export function buildBatch(prompts: readonly ArrayLike<number>[], responses: Int32Array, lengths: Int32Array, maxNewTokens: number, seqLen: number, padId = 0): SequenceBatch {
  const rows = prompts.length;
  const tokens = new Int32Array(rows * seqLen).fill(padId);
  const mask = new Float32Array(rows * seqLen);
  for (let r = 0; r < rows; r++) {
    const p = prompts[r]!;
    if (p.length + lengths[r]! > seqLen) throw new RangeError(`row ${r}: ${p.length} prompt + ${lengths[r]} response tokens exceed seqLen ${seqLen}`);
    const base = r * seqLen;
    for (let t = 0; t < p.length; t++) tokens[base + t] = p[t]!;
    for (let k = 0; k < lengths[r]!; k++) {
      tokens[base + p.length + k] = responses[r * maxNewTokens + k]!;
      mask[base + p.length + k] = 1;
    }
  }
  return { tokens, mask, batch: rows, seqLen, responseLengths: Int32Array.from(lengths) };
}

