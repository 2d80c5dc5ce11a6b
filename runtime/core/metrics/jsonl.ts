/**
 * The one JSON-lines reader: `metrics.jsonl`, `events.jsonl` and every other append-only log.
 * A process killed mid-append leaves a torn last line; that line is dropped (and reported to
 * `onTorn`), while a malformed line anywhere else is corruption and throws with its line number.
 */
import { existsSync, readFileSync, statSync } from "node:fs";
import { writeFileDurably } from "../../../native/files.ts";

export class JsonLinesError extends Error {
  override name = "JsonLinesError";
}

/** Parses JSON-lines text. Only the last non-empty line may be torn. */
export function parseJsonLines<T>(text: string, source = "(text)", onTorn?: (line: string) => void): T[] {
  const lines = text.split("\n");
  let last = lines.length - 1;
  while (last >= 0 && !lines[last]!.trim()) last--;
  const rows: T[] = [];
  for (let i = 0; i <= last; i++) {
    const line = lines[i]!;
    if (!line.trim()) continue;
    try {
      rows.push(JSON.parse(line) as T);
    } catch (e) {
      if (i === last) {
        onTorn?.(line);
        break;
      }
      throw new JsonLinesError(`${source}:${i + 1}: not a JSON line (${(e as Error).message}); only a torn last line is tolerated`);
    }
  }
  return rows;
}

/** Reads a JSON-lines file; a missing file has no rows. */
export function readJsonLines<T>(path: string, onTorn?: (line: string) => void): T[] {
  if (!existsSync(path)) return [];
  return parseJsonLines<T>(readFileSync(path, "utf8"), path, onTorn);
}

/**
 * Before appending to a log that a killed process may have torn: cuts the torn last line off, so
 * the next append does not glue onto it. Returns the torn text, if there was one.
 */
export function repairJsonLines(path: string): string | undefined {
  if (!existsSync(path) || !statSync(path).isFile()) return undefined; // not a log we can rewrite (a device, a pipe)
  const text = readFileSync(path, "utf8");
  let torn: string | undefined;
  const rows = parseJsonLines<unknown>(text, path, (line) => (torn = line));
  if (torn === undefined && (text === "" || text.endsWith("\n"))) return undefined;
  writeFileDurably(path, rows.map((r) => JSON.stringify(r) + "\n").join(""));
  return torn;
}
