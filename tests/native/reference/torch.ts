/**
 * The PyTorch reference scripts of this folder, run by Debian's python3-torch: whether they can
 * run here (and why not), and one run of a script with its arguments.
 */
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { basename, join } from "node:path";

export const TORCH_PYTHON = "/usr/bin/python3";
/** Each run of a script imports torch (seconds on a busy machine); a limit, not an assertion. */
export const PYTHON_TEST_MS = 180_000;

/** Why the reference cannot run here, or null when it can. */
export function torchSkipReason(): string | null {
  if (!existsSync(TORCH_PYTHON)) return `${TORCH_PYTHON} is not installed`;
  const r = spawnSync(TORCH_PYTHON, ["-c", "import torch"], { encoding: "utf8" });
  return r.status === 0 ? null : `${TORCH_PYTHON} cannot import torch (${r.stderr.trim().split("\n").pop()})`;
}

/** Runs `<script> args…` (a file of this folder); throws with its stderr when it fails. */
export function runReference(script: string, args: string[]): void {
  const path = join(import.meta.dir, script);
  const r = spawnSync(TORCH_PYTHON, [path, ...args], { encoding: "utf8" });
  if (r.status !== 0) throw new Error(`${basename(path)} ${args[0]} failed (${r.status ?? r.signal}): ${r.stderr}`);
}
