/**
 * Temporary folders for tests, removed when the test run ends, so no suite leaves runs, sockets
 * or checkpoints behind in the system's temporary folder. Neither test runner fires
 * `process.on("exit")`: under Bun the preload (tests/helpers/preload.ts) removes them in a
 * global afterAll; under Deno the `unload` event does.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const made: string[] = [];
let hooked = false;

/** A new empty folder named `<prefix>XXXXXX` under the system's temporary folder. */
export function tempDir(prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  made.push(dir);
  if (!hooked && "Deno" in globalThis) {
    hooked = true;
    globalThis.addEventListener("unload", removeTempDirs);
  }
  return dir;
}

/** Removes every folder made by `tempDir` so far (also run at exit). */
export function removeTempDirs(): void {
  for (const dir of made.splice(0)) rmSync(dir, { recursive: true, force: true });
}
