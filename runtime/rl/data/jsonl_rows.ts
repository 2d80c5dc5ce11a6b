/**
 * JSON data files: JSON lines (one object per line; blank lines are skipped) or, for a `.json`
 * file whose text starts with "[", one JSON array of objects. Unlike the run logs' reader
 * (runtime/core/metrics/jsonl.ts), a data set has no torn last line to forgive: any line that is
 * not JSON is an error naming the file and the line.
 */
import { DataError, promptRowOf, type PromptRow, type RowKeys } from "./prompt_rows.ts";

/** The rows of JSON-lines `text` read from `file`, counted in lines from 1. */
export function jsonLinesRows(text: string, file: string, keys: RowKeys = {}): PromptRow[] {
  const rows: PromptRow[] = [];
  const lines = text.split("\n");
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!.trim();
    if (!line) continue;
    let record: unknown;
    try {
      record = JSON.parse(line);
    } catch (e) {
      throw new DataError(`${file} line ${i + 1}: not valid JSON (${(e as Error).message}); each line must be one JSON object`);
    }
    rows.push(promptRowOf(record, `${file} line ${i + 1}`, keys));
  }
  return rows;
}

/** The rows of a JSON array `text` read from `file`, counted in rows from 0. */
export function jsonArrayRows(text: string, file: string, keys: RowKeys = {}): PromptRow[] {
  let records: unknown;
  try {
    records = JSON.parse(text);
  } catch (e) {
    throw new DataError(`${file}: not valid JSON (${(e as Error).message}); a .json data file is JSON lines or one array of objects`);
  }
  if (!Array.isArray(records)) throw new DataError(`${file}: a .json data file starting with "[" must be one JSON array of objects`);
  return records.map((record, i) => promptRowOf(record, `${file} row ${i}`, keys));
}
