/**
 * Temporary folders for tests, removed when the test process exits (under Bun and Deno alike),
 * so no suite leaves runs, sockets or checkpoints behind in the system's temporary folder.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";

const made: string[] = [];
let hooked = false;

/** A new empty folder named `<prefix>XXXXXX` under the system's temporary folder. */
export function tempDir(prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  made.push(dir);
  if (!hooked) {
    hooked = true;
    process.on("exit", removeTempDirs);
  }
  return dir;
}

/** Removes every folder made by `tempDir` so far (also run at exit). */
export function removeTempDirs(): void {
  for (const dir of made.splice(0)) rmSync(dir, { recursive: true, force: true });
}
