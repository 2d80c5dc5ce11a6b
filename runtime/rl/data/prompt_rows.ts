/**
 * A data set row as the RL application reads it: a prompt (text, or a chat-messages list
 * `[{role, content}]`) and the answer a reward checks against, found under the keys EasyR1 and
 * verl call `prompt_key` and `answer_key`. A key with dots ("reward_model.ground_truth", as in
 * verl's parquet files) reaches into nested objects when no top-level key has that exact name.
 *
 * Every row keeps where it came from ("data/train.jsonl line 4", "data/train.parquet row 3"):
 * JSON-lines files are counted in lines from 1, as editors do; Parquet files in rows from 0, as
 * pandas and datasets do.
 */
import { Buffer } from "node:buffer";
import { checkChatMessages, type ChatMessage } from "../text/chat_template.ts";
import { describeValue } from "../text/describe_value.ts";

/** A prompt: plain text, or a conversation the tokenizer's chat template renders. */
export type Prompt = string | ChatMessage[];

/** One row of a data set. */
export interface PromptRow {
  prompt: Prompt;
  /** The reference answer, as text (numbers in the file become their decimal text). */
  answer: string;
  /** Where the row came from, for error messages: "train.jsonl line 4". */
  where: string;
  /** verl's `data_source` of the row, when it has one (a reward's compute_score receives it). */
  dataSource?: string;
  /** verl's `extra_info` of the row, when it is an object (a reward's compute_score receives it). */
  extraInfo?: Record<string, unknown>;
}

/** Row keys verl's data files carry for the reward besides prompt and answer. */
export const VERL_ROW_KEYS = { dataSource: "data_source", extraInfo: "extra_info" } as const;

/** The keys a row's prompt and answer are found under. */
export interface RowKeys {
  /** Default "prompt". */
  promptKey?: string;
  /** Default "answer". */
  answerKey?: string;
}

/** How data files are read: the row keys, and the byte bound on a line (and on a prompt). */
export interface ReadOptions extends RowKeys {
  /**
   * The longest line of a JSON-lines file, in bytes, checked while the file is read, so one
   * overlong line costs no more memory than this; also the longest prompt (its text, or its
   * messages' contents together) of a row of a .json array or Parquet file. Default
   * DEFAULT_MAX_LINE_BYTES (`data.max_line_bytes`).
   */
  maxLineBytes?: number;
}

/** 1 MiB: far above any prompt a context of a few thousand tokens holds. */
export const DEFAULT_MAX_LINE_BYTES = 1 << 20;

/** A data file or one of its rows could not be used: the message names the file, the line or row, and the key. */
export class DataError extends Error {
  override name = "DataError";
}

/** The defaults EasyR1 uses for `data.prompt_key` and `data.answer_key`. */
export const DEFAULT_ROW_KEYS: Required<RowKeys> = { promptKey: "prompt", answerKey: "answer" };

/** Checks one parsed record and takes its prompt and answer; throws a DataError naming `where` and the key. */
export function promptRowOf(record: unknown, where: string, keys: ReadOptions = {}): PromptRow {
  const { promptKey, answerKey } = { ...DEFAULT_ROW_KEYS, ...keys };
  if (typeof record !== "object" || record === null || Array.isArray(record)) {
    throw new DataError(`${where}: a row must be an object with "${promptKey}" and "${answerKey}" keys (got ${describeValue(record)})`);
  }
  const fields = record as Record<string, unknown>;
  const prompt = promptOf(valueAt(fields, promptKey, where, "data.prompt_key"), `${where}: "${promptKey}"`);
  checkPromptBytes(prompt, `${where}: "${promptKey}"`, keys.maxLineBytes ?? DEFAULT_MAX_LINE_BYTES);
  const dataSource = fields[VERL_ROW_KEYS.dataSource];
  const extraInfo = fields[VERL_ROW_KEYS.extraInfo];
  return {
    prompt,
    answer: answerOf(valueAt(fields, answerKey, where, "data.answer_key"), `${where}: "${answerKey}"`),
    where,
    ...(typeof dataSource === "string" ? { dataSource } : {}),
    ...(typeof extraInfo === "object" && extraInfo !== null && !Array.isArray(extraInfo) ? { extraInfo: extraInfo as Record<string, unknown> } : {}),
  };
}

/** The value under `key` (or its dotted path); a DataError listing the row's keys when there is none. */
function valueAt(record: Record<string, unknown>, key: string, where: string, setting: string): unknown {
  let value: unknown = Object.hasOwn(record, key) ? record[key] : undefined;
  if (value === undefined && key.includes(".")) {
    value = key.split(".").reduce<unknown>((v, part) =>
      typeof v === "object" && v !== null && Object.hasOwn(v, part) ? (v as Record<string, unknown>)[part] : undefined, record);
  }
  if (value === undefined) {
    throw new DataError(`${where}: no "${key}" key (the row has: ${Object.keys(record).join(", ") || "no keys"}); ` +
      `set ${setting} to the key that holds it`);
  }
  return value;
}

function promptOf(value: unknown, where: string): Prompt {
  if (typeof value === "string") {
    if (value.trim() === "") throw new DataError(`${where} is an empty prompt`);
    return value;
  }
  if (Array.isArray(value)) {
    try {
      checkChatMessages(value);
    } catch (e) {
      throw new DataError(`${where}: ${(e as Error).message}`);
    }
    return value;
  }
  throw new DataError(`${where} must be a string or a list of chat messages [{role, content}] (got ${describeValue(value)})`);
}

/** A prompt's size in UTF-8 bytes (a conversation's: its contents together) within the bound. */
function checkPromptBytes(prompt: Prompt, where: string, max: number): void {
  const texts = typeof prompt === "string" ? [prompt] : prompt.map((m) => m.content);
  const bytes = texts.reduce((n, t) => n + Buffer.byteLength(t, "utf8"), 0);
  if (bytes > max) {
    throw new DataError(`${where} is a prompt of ${bytes} bytes, over data.max_line_bytes=${max}; shorten it, drop the row, or raise data.max_line_bytes`);
  }
}

function answerOf(value: unknown, where: string): string {
  if (typeof value === "string") return value;
  if ((typeof value === "number" && Number.isFinite(value)) || typeof value === "bigint") return String(value);
  throw new DataError(`${where} must be a string or a number (got ${describeValue(value)})`);
}
