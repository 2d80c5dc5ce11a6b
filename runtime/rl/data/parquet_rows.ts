/**
 * Parquet data files, read with the pure-JS hyparquet (the same code under Bun and Deno). Only
 * the columns holding the prompt and the answer are decoded. Nested columns come back as plain
 * values: a `list<struct<role, content>>` prompt column as a chat-messages list, a struct as an
 * object (so a dotted key such as "reward_model.ground_truth" reaches into it).
 *
 * Compression: UNCOMPRESSED and SNAPPY (pandas', pyarrow's and datasets' default) by hyparquet
 * itself; GZIP and BROTLI through node:zlib; ZSTD where the runtime's node:zlib has it.
 * The whole file is read into memory: data sets for RL prompts are megabytes, not gigabytes.
 */
import { readFileSync } from "node:fs";
import * as zlib from "node:zlib";
import { parquetMetadata, parquetReadObjects, parquetSchema, type Compressors, type FileMetaData } from "hyparquet";
import { DataError, DEFAULT_ROW_KEYS, promptRowOf, VERL_ROW_KEYS, type PromptRow, type ReadOptions } from "./prompt_rows.ts";

/** Decompressors beyond hyparquet's own, from node:zlib (present in Bun and Deno). */
function zlibCompressors(): Compressors {
  const compressors: Compressors = {
    GZIP: (input) => new Uint8Array(zlib.gunzipSync(input)),
    BROTLI: (input) => new Uint8Array(zlib.brotliDecompressSync(input)),
  };
  // node:zlib gained zstd recently; use it where the runtime has it.
  const zstd = (zlib as unknown as { zstdDecompressSync?: (b: Uint8Array) => Uint8Array }).zstdDecompressSync;
  if (typeof zstd === "function") compressors.ZSTD = (input) => new Uint8Array(zstd(input));
  return compressors;
}

/** The rows of the Parquet file at `file`, counted in rows from 0. */
export async function parquetRows(file: string, keys: ReadOptions = {}): Promise<PromptRow[]> {
  const { promptKey, answerKey } = { ...DEFAULT_ROW_KEYS, ...keys };
  const bytes = readFileSync(file);
  const buffer = bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer;
  let metadata: FileMetaData;
  try {
    metadata = parquetMetadata(buffer);
  } catch (e) {
    throw new DataError(`${file}: not a Parquet file (${(e as Error).message})`);
  }
  const present = parquetSchema(metadata).children.map((c) => c.element.name);
  // verl's data_source and extra_info go to a reward's compute_score when the file has them.
  const verl = Object.values(VERL_ROW_KEYS).filter((k) => present.includes(k));
  const columns = [...new Set([columnOf(promptKey, present, file, "data.prompt_key"), columnOf(answerKey, present, file, "data.answer_key"), ...verl])];
  let records: Record<string, unknown>[];
  try {
    records = await parquetReadObjects({ file: buffer, metadata, columns, compressors: zlibCompressors() });
  } catch (e) {
    throw new DataError(`${file}: cannot read columns ${columns.join(", ")}: ${(e as Error).message}`);
  }
  return records.map((record, i) => promptRowOf(record, `${file} row ${i}`, keys));
}

/** The top-level column holding `key` (the key itself, or the first part of a dotted key). */
function columnOf(key: string, present: string[], file: string, setting: string): string {
  if (present.includes(key)) return key;
  const head = key.split(".")[0]!;
  if (key.includes(".") && present.includes(head)) return head;
  throw new DataError(`${file}: no "${key}" column (the file has: ${present.join(", ") || "no columns"}); set ${setting} to the column that holds it`);
}
