/**
 * Makes the byte-level BPE tokenizer of examples/smollm2_shape.yaml: 49,152 ids, SmolLM2's
 * vocabulary size, in the Hugging Face format (tokenizer/ beside this file). The merges are
 * learned from the arithmetic word problems the example trains on, then byte pairs fill the
 * vocabulary up to its size (examples/tokenizer/byte_bpe.ts): a real-sized LM head, as a
 * tokenizer trained on a large corpus gives, with the text tokenized as compactly as this corpus
 * allows.
 *
 *   bun examples/smollm2_shape/make_tokenizer.ts   (rewrites tokenizer/; a test checks it matches)
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { makeTokenizerFiles, writeTokenizerFiles } from "../tokenizer/byte_bpe.ts";

/** SmolLM2's vocabulary size. */
export const VOCAB_SIZE = 49_152;
const DATA = join(import.meta.dirname!, "..", "data", "arith_word_problems");

/** The prompts and answers of the word problems, one per line. */
function corpus(): string {
  const rows = ["train.jsonl", "val.jsonl"].flatMap((f) => readFileSync(join(DATA, f), "utf8").split("\n").filter(Boolean));
  return rows.map((line) => {
    const row = JSON.parse(line) as { prompt: string; answer: string };
    return `${row.prompt} ${row.answer}`;
  }).join("\n");
}

export function smolTokenizerFiles(): Record<string, string> {
  return makeTokenizerFiles({ corpus: corpus(), merges: 4096, vocabSize: VOCAB_SIZE, maxLength: 2048 });
}

if (import.meta.main) writeTokenizerFiles(join(import.meta.dirname!, "tokenizer"), smolTokenizerFiles());
