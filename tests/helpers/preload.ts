/**
 * Loaded before every Bun test file (bunfig.toml). Every temporary folder of the run — the tests'
 * own and those of the coordinators and actors they start (socket folders included, even of a
 * process killed with SIGKILL) — goes under one folder, removed after the whole run. It is kept
 * apart from tempDir's list, which single files empty in their own afterAll.
 */
import { afterAll } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { removeTempDirs } from "./tmp.ts";

const run = mkdtempSync(join(tmpdir(), "revenant-run-"));
process.env.TMPDIR = run;
afterAll(() => {
  removeTempDirs();
  rmSync(run, { recursive: true, force: true });
});
