/**
 * Shared set-up for the coordinator service tests: short job bodies, quiet job managers, an SSE
 * reader over fetch, a server child process, and promtool (skipped with a reason when absent).
 * Runtime-neutral (Bun and Deno).
 */
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { JobManager } from "../../runtime/server/job_manager.ts";

/** A job of `steps` steps over a tiny data set: about 0.1 s per step on one CPU core. */
export function shortJob(steps = 6, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    trainer: { total_steps: steps, val_interval: Math.max(2, Math.floor(steps / 3)), seed: 7 },
    data: { train_size: 64, val_size: 16, train_batch_size: 8 },
    worker: { actor: { ppo_mini_batch_size: 8 }, critic: { ppo_mini_batch_size: 8 } },
    checkpoint: { interval: 2 },
    fault_tolerance: { ping_interval_s: 0.1, ping_timeout_s: 0.5, restart_backoff_initial_s: 0.005, max_restarts: -1, max_task_retries: -1, restart_intensity: 1000, health_check_interval: 1 },
    ...extra,
  };
}

export const tempDir = (tag: string) => mkdtempSync(join(tmpdir(), `revenant-${tag}-`));

/** A job manager that prints nothing. */
export function quietManager(runDir: string, maxConcurrentJobs = 1): JobManager {
  return new JobManager({ runDir, maxConcurrentJobs, log: () => {}, actorOutput: () => {} });
}

export interface SseEvent {
  event: string;
  data: any;
}

/** Reads a Server-Sent Events response until the stream ends (or `until` says stop); parses data as JSON. */
export async function readSse(res: Response, onEvent?: (e: SseEvent) => boolean | void): Promise<SseEvent[]> {
  const events: SseEvent[] = [];
  const reader = res.body!.pipeThrough(new TextDecoderStream()).getReader();
  let buf = "";
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      buf += value;
      let cut: number;
      while ((cut = buf.indexOf("\n\n")) >= 0) {
        const block = buf.slice(0, cut);
        buf = buf.slice(cut + 2);
        let event = "message";
        let data = "";
        for (const line of block.split("\n")) {
          if (line.startsWith("event:")) event = line.slice(6).trim();
          else if (line.startsWith("data:")) data += line.slice(5).trimStart();
        }
        if (!data) continue;
        const e = { event, data: JSON.parse(data) };
        events.push(e);
        if (onEvent?.(e) === true) return events;
      }
    }
  } finally {
    await reader.cancel().catch(() => {});
  }
  return events;
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Polls until `cond()` is truthy; throws naming `what` after `timeoutMs`. */
export async function until<T>(cond: () => T | Promise<T>, what: string, timeoutMs = 30_000): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await cond();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

/** `promtool check metrics` on the text: null when promtool is not installed (reason printed). */
export function promtoolCheck(text: string): { code: number; output: string } | null {
  const promtool = ["/usr/bin/promtool", "/usr/local/bin/promtool"].find((p) => existsSync(p));
  if (!promtool) {
    console.log("skipping promtool check: promtool not installed (apt-get install -y prometheus)");
    return null;
  }
  const file = join(tempDir("promtool"), "metrics.txt");
  writeFileSync(file, text);
  const r = spawnSync("sh", ["-c", `"${promtool}" check metrics < "${file}"`], { encoding: "utf8" });
  return { code: r.status ?? -1, output: `${r.stdout}${r.stderr}` };
}

/** True while a process with this pid exists and is not a zombie. */
export function processRuns(pid: number): boolean {
  try {
    return !/^State:\s+Z/m.test(readFileSync(`/proc/${pid}/status`, "utf8"));
  } catch {
    return false;
  }
}

export interface ServeProcess {
  pid: number;
  base: string;
  /** Everything it printed so far. */
  output(): string;
  kill(signal: NodeJS.Signals): void;
  exited: Promise<number | null>;
}

/** Starts `runtime/cli/serve.ts` as a child of this runtime on a free port; resolves once it listens. */
export async function startServe(args: string[], env: Record<string, string> = {}): Promise<ServeProcess> {
  const { spawn } = await import("node:child_process");
  const root = join(import.meta.dirname!, "..", "..");
  const isDeno = typeof (globalThis as { Deno?: unknown }).Deno !== "undefined";
  const cmd = isDeno ? ["run", "-A", "runtime/cli/serve.ts"] : ["runtime/cli/serve.ts"];
  const child = spawn(process.execPath, [...cmd, "--port", "0", ...args], { cwd: root, env: { ...process.env, ...env }, stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  child.stdout!.on("data", (b: Buffer) => (out += b.toString()));
  child.stderr!.on("data", (b: Buffer) => (out += b.toString()));
  const exited = new Promise<number | null>((r) => child.on("exit", (code) => r(code)));
  const port = await until(() => /listening on http:\/\/127\.0\.0\.1:(\d+)/.exec(out)?.[1], "the server to listen", 30_000).catch((e) => {
    child.kill("SIGKILL");
    throw new Error(`${(e as Error).message}; it printed:\n${out}`);
  });
  return { pid: child.pid!, base: `http://127.0.0.1:${port}`, output: () => out, kill: (s) => child.kill(s), exited };
}
