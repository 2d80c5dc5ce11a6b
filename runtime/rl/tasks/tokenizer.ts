/**
 * The shared vocabulary of the shipped tasks: 16 tokens, one per symbol.
 *
 *   0 PAD   1 BOS   2 EOS   3 "="   4..13 "0".."9"   14 "+"   15 ","
 *
 * `taskTokenizer` is the same vocabulary behind the TextTokenizer contract
 * (runtime/rl/text/tokenizer.ts); `encode`, `decode` and `promptTokens` are what the digit
 * tasks have always used.
 */
import { checkTokenIds, type TextTokenizer } from "../text/tokenizer.ts";

export const PAD = 0;
export const BOS = 1;
export const EOS = 2;
export const SEP = 3;
export const VOCAB_SIZE = 16;

const SYMBOLS = ["<pad>", "<bos>", "<eos>", "=", "0", "1", "2", "3", "4", "5", "6", "7", "8", "9", "+", ","];
const IDS = new Map(SYMBOLS.map((s, i) => [s, i]));

/** Encodes task text ("123+45=") into token ids; throws on a character outside the vocabulary. */
export function encode(text: string): number[] {
  return [...text].map((ch) => {
    const id = IDS.get(ch);
    if (id === undefined || id < SEP) throw new RangeError(`character ${JSON.stringify(ch)} is not in the task vocabulary (0-9, +, =, ",")`);
    return id;
  });
}

/** Decodes response tokens up to (not including) the first EOS; PAD and BOS are skipped. */
export function decode(tokens: ArrayLike<number>): { text: string; ended: boolean } {
  let text = "";
  for (let i = 0; i < tokens.length; i++) {
    const t = tokens[i]!;
    if (t === EOS) return { text, ended: true };
    if (t > SEP - 1 && t < SYMBOLS.length) text += SYMBOLS[t];
  }
  return { text, ended: false };
}

/** A prompt as the policy sees it: BOS, the text, then the separator is part of the text. */
export function promptTokens(text: string): number[] {
  return [BOS, ...encode(text)];
}

/**
 * The task vocabulary as a TextTokenizer: `encode` with special tokens is `promptTokens` (BOS,
 * then one id per symbol); `decode` renders every id (PAD, BOS and EOS as "<pad>", "<bos>",
 * "<eos>" unless skipped) and, unlike `decode` above, does not stop at EOS.
 */
export const taskTokenizer: TextTokenizer = {
  vocabSize: VOCAB_SIZE,
  eosId: EOS,
  padId: PAD,
  bosId: BOS,
  stopIds: [EOS],
  encode: (text, { addSpecialTokens }) => (addSpecialTokens ? promptTokens(text) : encode(text)),
  decode(ids, { skipSpecialTokens }) {
    checkTokenIds(ids, VOCAB_SIZE);
    let text = "";
    for (let i = 0; i < ids.length; i++) if (!(skipSpecialTokens && ids[i]! < SEP)) text += SYMBOLS[ids[i]!];
    return text;
  },
  isSpecial: (id) => Number.isInteger(id) && id >= 0 && id < SEP,
};
