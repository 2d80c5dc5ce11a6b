/**
 * Byte-level BPE tokenizers in the Hugging Face format (tokenizer.json, tokenizer_config.json,
 * generation_config.json), made from a corpus so the real loader reads them exactly as it reads a
 * model's folder: the 256 bytes (GPT-2's byte-to-character map, id = byte value), merges learned by
 * a small deterministic routine (ties between equally frequent pairs go to the pair that sorts
 * first), optionally byte-pair merges up to a vocabulary size, then three special tokens. Same
 * input, same files, on every runtime.
 *
 * @example
 * ```ts
 * const files = makeTokenizerFiles({ corpus: text, merges: 1000, vocabSize: 49_152, maxLength: 2048 });
 * ```
 */

import { writeFileSync } from "node:fs";
import { join } from "node:path";

/** Special tokens, given ids after the learned ones, in this order. */
export const SPECIAL_TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"] as const;

/** A ChatML template: one block per message, then the assistant's opening when asked. */
export const CHAT_TEMPLATE =
  "{% for message in messages %}" +
  "{% if message['role'] not in ['system', 'user', 'assistant'] %}" +
  "{{ raise_exception('Unknown role: ' + message['role']) }}" +
  "{% endif %}" +
  "{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}" +
  "{% endfor %}" +
  "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";


/** GPT-2's reversible map from bytes to printable characters (what ByteLevel pre-tokenizers use). */
export function bytesToUnicode(): string[] {
  const printable: number[] = [];
  const range = (a: number, b: number) => { for (let c = a; c <= b; c++) printable.push(c); };
  range(0x21, 0x7e);
  range(0xa1, 0xac);
  range(0xae, 0xff);
  const map: string[] = [];
  let shifted = 0;
  for (let b = 0; b < 256; b++) map[b] = String.fromCodePoint(printable.includes(b) ? b : 256 + shifted++);
  return map;
}

/** GPT-2's pre-tokenization pattern, the one ByteLevel applies before BPE. */
const PRE_TOKENIZE = /'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+/gu;

/** Learns `count` merges over `corpus`: each round merges the most frequent adjacent pair. */
export function learnMerges(corpus: string, count: number): [string, string][] {
  const byteChar = bytesToUnicode();
  const encoder = new TextEncoder();
  const wordCounts = new Map<string, number>();
  for (const piece of corpus.match(PRE_TOKENIZE) ?? []) {
    const word = Array.from(encoder.encode(piece), (b) => byteChar[b]!).join("");
    wordCounts.set(word, (wordCounts.get(word) ?? 0) + 1);
  }
  const words = [...wordCounts].map(([w, n]) => ({ symbols: [...w], n }));
  const merges: [string, string][] = [];
  while (merges.length < count) {
    const best = mostFrequentPair(words);
    if (!best) break;
    merges.push(best);
    for (const word of words) word.symbols = mergePair(word.symbols, best);
  }
  return merges;
}

function mostFrequentPair(words: { symbols: string[]; n: number }[]): [string, string] | undefined {
  const counts = new Map<string, number>();
  for (const { symbols, n } of words) {
    for (let i = 0; i + 1 < symbols.length; i++) {
      const key = `${symbols[i]} ${symbols[i + 1]}`;
      counts.set(key, (counts.get(key) ?? 0) + n);
    }
  }
  let bestKey: string | undefined;
  let bestCount = 1; // a pair seen once teaches nothing
  for (const [key, n] of counts) {
    if (n > bestCount || (n === bestCount && bestKey !== undefined && key < bestKey)) [bestKey, bestCount] = [key, n];
  }
  if (bestKey === undefined) return undefined;
  const space = bestKey.indexOf(" ", 1);
  return [bestKey.slice(0, space), bestKey.slice(space + 1)];
}

function mergePair(symbols: string[], [a, b]: [string, string]): string[] {
  const out: string[] = [];
  for (let i = 0; i < symbols.length; i++) {
    if (symbols[i] === a && symbols[i + 1] === b) {
      out.push(a + b);
      i++;
    } else out.push(symbols[i]!);
  }
  return out;
}

/** What a tokenizer is made of. */
export interface ByteBpeSpec {
  /** The text the merges are learned from. */
  corpus: string;
  /** The most merges to learn from it (fewer when no pair is seen twice). */
  merges: number;
  /**
   * The whole vocabulary's size, special tokens included: past the learned merges, byte pairs
   * (in byte order) are merged until it is reached, as a tokenizer trained on a large corpus has
   * many tokens a small text never uses. Undefined: the learned merges alone.
   */
  vocabSize?: number;
  /** model_max_length in tokenizer_config.json. */
  maxLength: number;
}

/** Byte-pair merges, in byte order, whose results are new tokens: `count` of them. */
function fillerMerges(vocab: Record<string, number>, count: number): [string, string][] {
  const byteChar = bytesToUnicode();
  const out: [string, string][] = [];
  let size = Object.keys(vocab).length;
  for (const a of byteChar) {
    for (const b of byteChar) {
      if (out.length >= count) return out;
      if (vocab[a + b] === undefined) {
        vocab[a + b] = size++;
        out.push([a, b]);
      }
    }
  }
  throw new RangeError(`cannot fill the vocabulary: byte pairs ran out ${count - out.length} merges short`);
}

/** The three files' contents, by file name. */
export function makeTokenizerFiles(spec: ByteBpeSpec): Record<string, string> {
  const byteChar = bytesToUnicode();
  const merges = learnMerges(spec.corpus, spec.merges);
  const vocab: Record<string, number> = {};
  byteChar.forEach((ch, id) => (vocab[ch] = id));
  for (const [a, b] of merges) vocab[a + b] ??= Object.keys(vocab).length;
  if (spec.vocabSize !== undefined) {
    const missing = spec.vocabSize - SPECIAL_TOKENS.length - Object.keys(vocab).length;
    if (missing < 0) throw new RangeError(`vocabSize ${spec.vocabSize} is below the ${Object.keys(vocab).length + SPECIAL_TOKENS.length} tokens learned`);
    merges.push(...fillerMerges(vocab, missing));
  }
  const firstSpecial = Object.keys(vocab).length;
  const added = SPECIAL_TOKENS.map((content, i) => ({
    id: firstSpecial + i, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true,
  }));
  const byteLevel = { type: "ByteLevel", add_prefix_space: false, trim_offsets: true, use_regex: true };
  const tokenizer = {
    version: "1.0",
    truncation: null,
    padding: null,
    added_tokens: added,
    normalizer: null,
    pre_tokenizer: byteLevel,
    post_processor: { ...byteLevel, trim_offsets: false },
    decoder: byteLevel,
    model: {
      type: "BPE", dropout: null, unk_token: null, continuing_subword_prefix: null, end_of_word_suffix: null,
      fuse_unk: false, byte_fallback: false, ignore_merges: false, vocab, merges,
    },
  };
  const config = {
    add_bos_token: false,
    add_prefix_space: false,
    added_tokens_decoder: Object.fromEntries(added.map(({ id, ...rest }) => [String(id), rest])),
    bos_token: null,
    eos_token: "<|im_end|>",
    pad_token: "<|endoftext|>",
    chat_template: CHAT_TEMPLATE,
    clean_up_tokenization_spaces: false,
    model_max_length: spec.maxLength,
    tokenizer_class: "PreTrainedTokenizerFast",
  };
  const generation = { eos_token_id: [firstSpecial + 2, firstSpecial], pad_token_id: firstSpecial };
  return {
    "tokenizer.json": compactJson(tokenizer),
    "tokenizer_config.json": JSON.stringify(config, null, 2) + "\n",
    "generation_config.json": JSON.stringify(generation, null, 2) + "\n",
  };
}

/** Writes the files into `dir`. */
export function writeTokenizerFiles(dir: string, files: Record<string, string>): void {
  for (const [name, text] of Object.entries(files)) writeFileSync(join(dir, name), text);
}

/** JSON with one vocabulary entry or merge per line: small, and readable in a diff. */
function compactJson(value: unknown): string {
  return JSON.stringify(value, null, 1)
    .replace(/\[\n\s*("(?:[^"\\]|\\.)*"),\n\s*("(?:[^"\\]|\\.)*")\n\s*\]/g, "[$1, $2]") + "\n";
}

