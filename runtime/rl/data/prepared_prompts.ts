/**
 * Prompts made ready for the policy: token ids per row, the chat template applied where asked,
 * and one policy for prompts longer than `maxPromptLength`, named as in verl:
 *
 * - `filterOverlongPrompts: true` drops them first (and counts how many);
 * - then `truncation` decides for any still too long:
 *   - "error" (the default): a DataError naming the row, its length and the limit;
 *   - "left": keep the last `maxPromptLength` tokens (the question at a prompt's end survives);
 *   - "right": keep the first `maxPromptLength` tokens.
 *
 * How a prompt becomes ids, as transformers' `apply_chat_template(…, add_generation_prompt=True)`:
 * - a chat-messages list is always rendered with the tokenizer's chat template, then encoded
 *   without special tokens (the template wrote them);
 * - a string is rendered as one user message when `chatTemplate` is true, else encoded as it
 *   is with the tokenizer's special tokens (a BOS, for tokenizers that add one).
 *
 * Rows keep their order; dropping is the only change to it.
 */
import type { ChatMessage } from "../text/chat_template.ts";
import type { TextTokenizer } from "../text/tokenizer.ts";
import { DataError, type PromptRow } from "./prompt_rows.ts";

/** What to do with a prompt longer than the limit, as verl's `data.truncation`. */
export type Truncation = "error" | "left" | "right";

/** The truncation policies, for validation and messages. */
export const TRUNCATIONS: readonly Truncation[] = ["error", "left", "right"];

/** How prompts are turned into ids. */
export interface PromptEncoding {
  /** Render string prompts with the tokenizer's chat template too (messages lists always are). */
  chatTemplate?: boolean;
}

/** How prompts are prepared; see the module header. */
export interface PrepareOptions extends PromptEncoding {
  /** Longest prompt in tokens, a positive integer. */
  maxPromptLength: number;
  /** Default "error". */
  truncation?: Truncation;
  /** Drop prompts longer than `maxPromptLength` instead of applying `truncation`. Default false. */
  filterOverlongPrompts?: boolean;
}

/** A prompt ready for the policy. */
export interface PreparedRow {
  /** Prompt token ids, at most `maxPromptLength` of them. */
  ids: Int32Array;
  /** The text that was encoded (the rendered chat when a template was applied), before any truncation. */
  text: string;
  answer: string;
  where: string;
  /** The row's verl `data_source` and `extra_info`, when it has them. */
  dataSource?: string;
  extraInfo?: Record<string, unknown>;
}

/** The prepared rows and what preparing them did. */
export interface PreparedRows {
  rows: PreparedRow[];
  /** Rows dropped by `filterOverlongPrompts`. */
  dropped: number;
  /** Rows cut to `maxPromptLength` by "left" or "right" truncation. */
  truncated: number;
  /** Longest prompt in tokens among the kept rows (0 when none is kept). */
  longestPrompt: number;
}

/**
 * Encodes every row's prompt; see the module header for the policy on overlong prompts.
 *
 * @example
 * ```ts
 * const { rows, dropped } = prepareRows(await readDataFiles("train.jsonl"), tok, { maxPromptLength: 256, filterOverlongPrompts: true });
 * ```
 */
export function prepareRows(rows: readonly PromptRow[], tokenizer: TextTokenizer, options: PrepareOptions): PreparedRows {
  const { maxPromptLength, truncation = "error", filterOverlongPrompts = false } = options;
  checkPrepareOptions(maxPromptLength, truncation);
  const out: PreparedRow[] = [];
  let dropped = 0;
  let truncated = 0;
  let longestPrompt = 0;
  for (const row of rows) {
    const { text, ids } = encodeRowPrompt(row, tokenizer, options);
    let kept = ids;
    if (ids.length > maxPromptLength) {
      if (filterOverlongPrompts) {
        dropped++;
        continue;
      }
      if (truncation === "error") {
        throw new DataError(`${row.where}: the prompt is ${ids.length} tokens, longer than max_prompt_length=${maxPromptLength}; ` +
          `raise data.max_prompt_length, set data.truncation to "left" or "right", or set data.filter_overlong_prompts`);
      }
      kept = truncation === "left" ? ids.slice(ids.length - maxPromptLength) : ids.slice(0, maxPromptLength);
      truncated++;
    }
    longestPrompt = Math.max(longestPrompt, kept.length);
    out.push({ ids: Int32Array.from(kept), text, answer: row.answer, where: row.where, ...rowExtras(row) });
  }
  return { rows: out, dropped, truncated, longestPrompt };
}

/** What a row carries for the reward besides its answer. */
function rowExtras(row: PromptRow): Pick<PreparedRow, "dataSource" | "extraInfo"> {
  return { ...(row.dataSource === undefined ? {} : { dataSource: row.dataSource }), ...(row.extraInfo === undefined ? {} : { extraInfo: row.extraInfo }) };
}

/**
 * The longest prompt of `rows` in tokens, encoding one row at a time and keeping only the
 * running maximum: a job can size its sequences before (or without) holding every prompt's ids.
 */
export function longestPromptLength(rows: Iterable<PromptRow>, tokenizer: TextTokenizer, encoding: PromptEncoding = {}): number {
  let longest = 0;
  for (const row of rows) longest = Math.max(longest, encodeRowPrompt(row, tokenizer, encoding).ids.length);
  return longest;
}

/** One row's prompt text and ids (untruncated); a DataError naming the row when it cannot be encoded. */
export function encodeRowPrompt(row: PromptRow, tokenizer: TextTokenizer, encoding: PromptEncoding = {}): { text: string; ids: number[] } {
  try {
    const messages: ChatMessage[] | undefined = typeof row.prompt !== "string" ? row.prompt
      : encoding.chatTemplate ? [{ role: "user", content: row.prompt }] : undefined;
    if (messages === undefined) {
      const text = row.prompt as string;
      return nonEmpty({ text, ids: tokenizer.encode(text, { addSpecialTokens: true }) });
    }
    if (!tokenizer.applyChatTemplate) {
      throw new Error(`${typeof row.prompt === "string" ? "the chat template was asked for" : "the prompt is a chat-messages list"}, ` +
        `but the tokenizer has no chat template (tokenizer_config.json "chat_template"); give plain-text prompts and leave the chat template off`);
    }
    const text = tokenizer.applyChatTemplate(messages, { addGenerationPrompt: true });
    return nonEmpty({ text, ids: tokenizer.encode(text, { addSpecialTokens: false }) });
  } catch (e) {
    if (e instanceof DataError) throw e;
    throw new DataError(`${row.where}: ${(e as Error).message}`);
  }
}

function nonEmpty(prompt: { text: string; ids: number[] }): { text: string; ids: number[] } {
  if (prompt.ids.length === 0) throw new Error("the prompt encodes to no tokens");
  return prompt;
}

function checkPrepareOptions(maxPromptLength: number, truncation: string): void {
  if (!Number.isInteger(maxPromptLength) || maxPromptLength < 1) {
    throw new RangeError(`max_prompt_length must be a positive integer (got ${maxPromptLength})`);
  }
  if (!(TRUNCATIONS as readonly string[]).includes(truncation)) {
    throw new RangeError(`truncation must be one of ${TRUNCATIONS.map((t) => `"${t}"`).join(", ")} (got ${JSON.stringify(truncation)})`);
  }
}
