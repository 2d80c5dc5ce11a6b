/**
 * `data.train_files` / `data.val_files`: one path or a list of paths, each a JSON-lines
 * (`.jsonl`), JSON (`.json`) or Parquet (`.parquet`) file, read in the order given, rows in file
 * order, so the same files always make the same data set.
 *
 * @example
 * ```ts
 * const rows = await readDataFiles(["data/a.jsonl", "data/b.parquet"], { promptKey: "problem" });
 * rows[0]; // { prompt: "Sam has 3 apples…", answer: "7", where: "data/a.jsonl line 1" }
 * ```
 */
import { closeSync, existsSync, readFileSync, statSync } from "node:fs";
import { extname } from "node:path";
import { fileKind, openRegularFile, readAt } from "../../../native/hf/regular_file.ts";
import { jsonArrayRows, jsonLinesFileRows } from "./jsonl_rows.ts";
import { parquetRows } from "./parquet_rows.ts";
import { describeValue } from "../text/describe_value.ts";
import { DataError, type PromptRow, type ReadOptions } from "./prompt_rows.ts";

/** File name endings this reader knows. */
export const DATA_FILE_EXTENSIONS = [".jsonl", ".json", ".parquet"] as const;

/** The rows of every file in `files`, in order; throws a DataError naming the file (and line or row) at fault. */
export async function readDataFiles(files: string | readonly string[], keys: ReadOptions = {}): Promise<PromptRow[]> {
  if (typeof files !== "string" && !Array.isArray(files)) {
    throw new DataError(`data files must be a path or a list of paths (got ${describeValue(files)})`);
  }
  const paths: string[] = typeof files === "string" ? [files] : [...files];
  if (paths.length === 0) throw new DataError("no data files given; give a path or a list of paths to .jsonl, .json or .parquet files");
  const rows: PromptRow[] = [];
  for (const path of paths) for (const row of await readDataFile(path, keys)) rows.push(row);
  return rows;
}

/** The rows of one data file; an empty file (no rows) is an error. */
export async function readDataFile(path: string, keys: ReadOptions = {}): Promise<PromptRow[]> {
  if (typeof path !== "string" || path === "") throw new DataError(`a data file path must be a non-empty string (got ${JSON.stringify(path)})`);
  const ext = extname(path).toLowerCase();
  if (!(DATA_FILE_EXTENSIONS as readonly string[]).includes(ext)) {
    throw new DataError(`${path}: unknown data file type "${ext || "(no extension)"}"; data files end in ${DATA_FILE_EXTENSIONS.join(", ")}`);
  }
  if (!existsSync(path)) throw new DataError(`${path}: no such data file`);
  const st = statSync(path);
  // A FIFO would block the reader and a device would never end: only regular files are read.
  if (!st.isFile()) throw new DataError(`${path}: not a file but ${fileKind(st)}; give the data file itself`);
  const rows = ext === ".parquet" ? await parquetRows(path, keys) : jsonRows(path, keys);
  if (rows.length === 0) throw new DataError(`${path}: the file has no rows`);
  return rows;
}

/** A `.json` file starting with "[" is one array, read whole; anything else is JSON lines, read line by line. */
function jsonRows(path: string, keys: ReadOptions): PromptRow[] {
  if (extname(path).toLowerCase() === ".json" && startsWithBracket(path)) return jsonArrayRows(readFileSync(path, "utf8"), path, keys);
  return jsonLinesFileRows(path, keys);
}

/** Whether the file's first character that is not white space is "[" (read from its first bytes only). */
function startsWithBracket(path: string): boolean {
  const { fd } = openRegularFile(path);
  try {
    for (let position = 0; ; position += 4096) {
      const chunk = readAt(fd, position, 4096);
      if (chunk.byteLength === 0) return false;
      const text = new TextDecoder().decode(chunk).trimStart();
      if (text) return text.startsWith("[");
    }
  } finally {
    closeSync(fd);
  }
}
