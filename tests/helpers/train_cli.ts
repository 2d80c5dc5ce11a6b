/**
 * `bun run train` as a user runs it: the CLI in a child process of this runtime, from the
 * repository root, with its exit code and both output streams.
 */
import { existsSync } from "node:fs";
import { join } from "node:path";
import { MetricsFile } from "../../runtime/rl/trainer/job.ts";
import { waitFor } from "./supervision.ts";
import { tempDir } from "./tmp.ts";

export const REPO_ROOT = join(import.meta.dir, "..", "..");

export function runTrainCli(args: string[], env: Record<string, string> = {}): { code: number | null; out: string; err: string } {
  const proc = Bun.spawnSync([process.execPath, "runtime/service/cli/train.ts", ...args], { cwd: REPO_ROOT, env: { ...process.env, ...env } });
  return { code: proc.exitCode, out: proc.stdout.toString(), err: proc.stderr.toString() };
}

/**
 * The CLI resuming `jobDir`, killed with SIGKILL once its metrics hold `steps` steps (past a
 * checkpoint), then resumed to the end. The second run's exit code and output. A SIGKILLed
 * coordinator cannot remove its socket folder: both runs get a temporary folder the tests remove.
 */
export async function killMidRunAndResume(jobDir: string, metricsFile: string, steps: number, timeoutMs: number): Promise<{ code: number | null; out: string }> {
  const args = [process.execPath, "runtime/service/cli/train.ts", "--resume", jobDir, "--quiet"];
  const env = { ...process.env, TMPDIR: tempDir("revenant-killed-") };
  const first = Bun.spawn(args, { cwd: REPO_ROOT, stdout: "pipe", stderr: "pipe", env });
  await waitFor(() => existsSync(metricsFile) && new MetricsFile(metricsFile).read().length >= steps, `the first run to pass step ${steps}`, timeoutMs);
  first.kill("SIGKILL");
  await first.exited;
  const second = Bun.spawnSync(args, { cwd: REPO_ROOT, env });
  return { code: second.exitCode, out: second.stdout.toString() + second.stderr.toString() };
}
