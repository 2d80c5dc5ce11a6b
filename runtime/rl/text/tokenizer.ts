/**
 * The tokenizer contract the RL application works against: text to token ids and back, which
 * ids are special, and (for tokenizers that carry one) a chat template. Two implementations:
 * the 16-symbol vocabulary of the digit tasks (runtime/rl/tasks/tokenizer.ts) and a Hugging
 * Face tokenizer folder (hf_tokenizer.ts).
 *
 * @example
 * ```ts
 * const tok = loadHfTokenizer("models/qwen");
 * const ids = tok.encode("Sam has 3 apples.", { addSpecialTokens: true });
 * tok.decode(ids, { skipSpecialTokens: true }); // "Sam has 3 apples."
 * ```
 */
import type { ChatMessage, ChatTemplateOptions } from "./chat_template.ts";

/** How text becomes ids. */
export interface EncodeOptions {
  /**
   * Add the tokenizer's own framing (a BOS id, for tokenizers whose post-processor adds one), as
   * transformers' `add_special_tokens`. Text rendered by a chat template already carries its
   * framing and is encoded with `false`, as transformers does.
   */
  addSpecialTokens: boolean;
}

/** How ids become text. */
export interface DecodeOptions {
  /** Leave out every id for which `isSpecial` is true. */
  skipSpecialTokens: boolean;
}

/** A tokenizer: ids are integers in [0, vocabSize). */
export interface TextTokenizer {
  /** Number of ids, special ones included (an embedding table needs this many rows). */
  readonly vocabSize: number;
  /** The id that ends a response. */
  readonly eosId: number;
  /** The id that fills the unused places of a padded batch. */
  readonly padId: number;
  /** The id that opens a sequence, when the tokenizer has one. */
  readonly bosId: number | undefined;
  /** Every id that ends generation: `eosId` first, then any others the model names. */
  readonly stopIds: readonly number[];
  /** Token ids of `text`. */
  encode(text: string, options: EncodeOptions): number[];
  /** The text of `ids`; throws a RangeError naming an id outside the vocabulary. */
  decode(ids: ArrayLike<number>, options: DecodeOptions): string;
  /** Whether `id` is a special token (BOS, EOS, PAD, chat markers…), skipped by `skipSpecialTokens`. */
  isSpecial(id: number): boolean;
  /** Renders chat messages as the model's prompt text; absent when the tokenizer has no chat template. */
  applyChatTemplate?(messages: readonly ChatMessage[], options: ChatTemplateOptions): string;
}

/** A tokenizer folder or its files could not be used: the message names the file and what was wrong. */
export class TokenizerError extends Error {
  override name = "TokenizerError";
}

/** Throws a RangeError unless every id is an integer in [0, vocabSize). */
export function checkTokenIds(ids: ArrayLike<number>, vocabSize: number): void {
  for (let i = 0; i < ids.length; i++) {
    const id = ids[i]!;
    if (!Number.isInteger(id) || id < 0 || id >= vocabSize) {
      throw new RangeError(`token id ${id} at position ${i} is outside the vocabulary (integers 0..${vocabSize - 1})`);
    }
  }
}
