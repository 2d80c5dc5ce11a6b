/**
 * `bun run train` as a user runs it: the CLI in a child process of this runtime, from the
 * repository root, with its exit code and both output streams.
 */
import { join } from "node:path";

export const REPO_ROOT = join(import.meta.dir, "..", "..");

export function runTrainCli(args: string[], env: Record<string, string> = {}): { code: number | null; out: string; err: string } {
  const proc = Bun.spawnSync([process.execPath, "runtime/service/cli/train.ts", ...args], { cwd: REPO_ROOT, env: { ...process.env, ...env } });
  return { code: proc.exitCode, out: proc.stdout.toString(), err: proc.stderr.toString() };
}
