/**
 * Checks a reward module before a job starts: that it loads and exports `scoreBatch`, `score` or
 * `compute_score`. The module is imported in a short-lived child process, never in the
 * coordinator: its top-level code is the user's, and it must not run (or leave anything running)
 * where jobs are driven. The child prints one marked line with what it found and exits.
 *
 * @example
 * ```ts
 * await checkRewardModule("rewards/judge.ts", 60); // "score", or throws a RewardError in one line
 * ```
 */
import { fileURLToPath } from "node:url";
import { runtime } from "../../core/adapter/index.ts";
import { loadRewardModule, RewardError, type RewardExport } from "./user_module.ts";

const MARK = "REVENANT_REWARD_CHECK ";
/** Output kept from the child, from its end: enough for the marked line and an error's last lines. */
const TAIL_BYTES = 16_384;

/**
 * The export the module at `path` will be scored with; a RewardError in one line when it does
 * not load, has no usable export, or takes longer than `timeoutS` seconds to load.
 */
export async function checkRewardModule(path: string, timeoutS: number): Promise<RewardExport> {
  const child = runtime.spawn({ module: fileURLToPath(import.meta.url), args: [path], env: { ...process.env } as Record<string, string> });
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timedOut = new Promise<"timeout">((done) => (timer = setTimeout(() => done("timeout"), timeoutS * 1000)));
  const [stdout, stderr] = [tail(child.stdout), tail(child.stderr)];
  try {
    if ((await Promise.race([child.exited, timedOut])) === "timeout") {
      child.kill("SIGKILL");
      throw new RewardError(`reward module ${path} did not finish loading within ${timeoutS} s (reward.call_deadline_s)`);
    }
  } finally {
    clearTimeout(timer);
  }
  const marked = (await stdout).split("\n").filter((l) => l.startsWith(MARK)).at(-1);
  if (!marked) {
    const last = (await stderr).trim().split("\n").at(-1) ?? "";
    throw new RewardError(`reward module ${path} could not be checked: its process ended without an answer${last ? ` (${last})` : ""}`);
  }
  const answer = JSON.parse(marked.slice(MARK.length)) as { uses?: RewardExport; error?: string };
  if (answer.error !== undefined) throw new RewardError(oneLine(answer.error));
  return answer.uses!;
}

/** The end of a stream's text (the whole stream is drained, so the child never blocks on a full pipe). */
async function tail(stream: ReadableStream<Uint8Array>): Promise<string> {
  const decoder = new TextDecoder();
  let text = "";
  for await (const chunk of stream as unknown as AsyncIterable<Uint8Array>) {
    text = (text + decoder.decode(chunk, { stream: true })).slice(-TAIL_BYTES);
  }
  return text;
}

/** A message on one line: a syntax error's code frame and stack stay out of it. */
function oneLine(message: string): string {
  return message.split("\n")[0]!.trim();
}

if (import.meta.main) {
  const path = process.argv[2] ?? "";
  let answer: { uses?: RewardExport; error?: string };
  try {
    answer = { uses: (await loadRewardModule(path)).uses };
  } catch (e) {
    answer = { error: (e as Error)?.message ?? String(e) };
  }
  process.stdout.write(`\n${MARK}${JSON.stringify(answer)}\n`);
  // Whatever the module left running (timers, sockets) must not keep this check alive.
  process.exit(0);
}
