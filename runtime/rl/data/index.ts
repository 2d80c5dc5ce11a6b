/** Data sets for the RL application: data files, their rows, and prompts made ready for the policy. */
export { DATA_FILE_EXTENSIONS, readDataFile, readDataFiles } from "./data_files.ts";
export { DataError, DEFAULT_MAX_LINE_BYTES, DEFAULT_ROW_KEYS, promptRowOf, type Prompt, type PromptRow, type ReadOptions, type RowKeys } from "./prompt_rows.ts";
export {
  encodeRowPrompt, longestPromptLength, prepareRows, TRUNCATIONS,
  type PreparedRow, type PreparedRows, type PrepareOptions, type PromptEncoding, type Truncation,
} from "./prepared_prompts.ts";
