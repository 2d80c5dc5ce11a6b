/**
 * JSON data files: JSON lines (one object per line; blank lines are skipped) or, for a `.json`
 * file whose text starts with "[", one JSON array of objects. Unlike the run logs' reader
 * (runtime/core/metrics/jsonl.ts), a data set has no torn last line to forgive: any line that is
 * not JSON is an error naming the file and the line.
 *
 * JSON-lines files are read in chunks, line by line, and a line longer than `maxLineBytes` is
 * refused as soon as that many of its bytes are in: one huge line costs at most that much
 * memory, never the line's own size (nor what tokenizing it would cost).
 */
import { Buffer } from "node:buffer";
import { closeSync } from "node:fs";
import { openRegularFile, readAt } from "../../../native/hf/regular_file.ts";
import { DataError, DEFAULT_MAX_LINE_BYTES, promptRowOf, type PromptRow, type ReadOptions } from "./prompt_rows.ts";

/** Bytes read at a time. */
const CHUNK_BYTES = 1 << 16;
const NEWLINE = 0x0a;

/** The row of one line, or undefined for a blank line. */
function jsonLineRow(text: string, file: string, lineNo: number, options: ReadOptions): PromptRow | undefined {
  const line = text.trim();
  if (!line) return undefined;
  let record: unknown;
  try {
    record = JSON.parse(line);
  } catch (e) {
    throw new DataError(`${file} line ${lineNo}: not valid JSON (${(e as Error).message}); each line must be one JSON object`);
  }
  return promptRowOf(record, `${file} line ${lineNo}`, options);
}

function overlongLine(file: string, lineNo: number, size: string, max: number): DataError {
  return new DataError(`${file} line ${lineNo} ${size}, over data.max_line_bytes=${max}; a line holds one row (shorten or drop it, or raise data.max_line_bytes)`);
}

/**
 * The rows of the JSON-lines file at `path`, read in chunks: no more than one line (at most
 * `maxLineBytes`) plus one chunk is held at a time, besides the rows.
 */
export function jsonLinesFileRows(path: string, options: ReadOptions = {}): PromptRow[] {
  const max = options.maxLineBytes ?? DEFAULT_MAX_LINE_BYTES;
  const { fd } = openRegularFile(path);
  const rows: PromptRow[] = [];
  const decoder = new TextDecoder("utf-8");
  let pending: Uint8Array[] = [];
  let pendingBytes = 0;
  let lineNo = 1;
  const finishLine = () => {
    const row = jsonLineRow(decoder.decode(Buffer.concat(pending)), path, lineNo, options);
    if (row) rows.push(row);
    pending = [];
    pendingBytes = 0;
    lineNo++;
  };
  try {
    for (let position = 0; ; ) {
      const chunk = readAt(fd, position, CHUNK_BYTES);
      if (chunk.byteLength === 0) break;
      position += chunk.byteLength;
      let start = 0;
      for (let nl = chunk.indexOf(NEWLINE); nl >= 0; nl = chunk.indexOf(NEWLINE, start)) {
        if (pendingBytes + nl - start > max) throw overlongLine(path, lineNo, `is ${pendingBytes + nl - start} bytes`, max);
        pending.push(chunk.subarray(start, nl));
        finishLine();
        start = nl + 1;
      }
      pendingBytes += chunk.byteLength - start;
      if (pendingBytes > max) throw overlongLine(path, lineNo, `is longer than ${max} bytes`, max);
      pending.push(chunk.subarray(start));
    }
    finishLine();
  } finally {
    closeSync(fd);
  }
  return rows;
}

/** The rows of a JSON array `text` read from `file`, counted in rows from 0. */
export function jsonArrayRows(text: string, file: string, keys: ReadOptions = {}): PromptRow[] {
  let records: unknown;
  try {
    records = JSON.parse(text);
  } catch (e) {
    throw new DataError(`${file}: not valid JSON (${(e as Error).message}); a .json data file is JSON lines or one array of objects`);
  }
  if (!Array.isArray(records)) throw new DataError(`${file}: a .json data file starting with "[" must be one JSON array of objects`);
  return records.map((record, i) => promptRowOf(record, `${file} row ${i}`, keys));
}
