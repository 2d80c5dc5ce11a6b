/**
 * Shared set-up for the coordinator service tests: short job bodies, quiet job managers, an SSE
 * reader over fetch, a server child process, and promtool (skipped with a reason when absent).
 * Runtime-neutral (Bun and Deno).
 */
import { spawnSync } from "node:child_process";
import { existsSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { removeTempDirs, tempDir as makeTempDir } from "../helpers/tmp.ts";
import { JobManager, type JobManagerOptions } from "../../runtime/service/server/job_manager.ts";

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

export { WORST_BODY } from "../../bench/worst_job_body.ts";

/** A new temporary folder `revenant-<tag>-XXXXXX`, removed by removeTempDirs() (and at the end of the run). */
export function tempDir(tag: string): string {
  return makeTempDir(`revenant-${tag}-`);
}

export { removeTempDirs };

/** A job manager that prints nothing. */
export function quietManager(runDir: string, maxConcurrentJobs = 1, options: Partial<JobManagerOptions> = {}): JobManager {
  return new JobManager({ runDir, maxConcurrentJobs, log: () => {}, actorOutput: () => {}, ...options });
}

export interface SseEvent {
  event: string;
  data: any;
  /** The event's `id:` field, if it had one. */
  id?: string;
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
        let id: string | undefined;
        for (const line of block.split("\n")) {
          if (line.startsWith("event:")) event = line.slice(6).trim();
          else if (line.startsWith("data:")) data += line.slice(5).trimStart();
          else if (line.startsWith("id:")) id = line.slice(3).trim();
        }
        if (!data) continue;
        const e: SseEvent = { event, data: JSON.parse(data), ...(id !== undefined ? { id } : {}) };
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

const SIGNALS: Record<string, number> = { SIGINT: 2, SIGKILL: 9, SIGTERM: 15 };

/** Starts `runtime/service/cli/serve.ts` as a child of this runtime on a free port; resolves once it listens. */
export async function startServe(args: string[], env: Record<string, string> = {}): Promise<ServeProcess> {
  const { spawn } = await import("node:child_process");
  const root = join(import.meta.dirname!, "..", "..");
  const isDeno = typeof (globalThis as { Deno?: unknown }).Deno !== "undefined";
  const cmd = isDeno ? ["run", "-A", "runtime/service/cli/serve.ts"] : ["runtime/service/cli/serve.ts"];
  // Its socket folder goes under a temporary folder the tests remove: a coordinator killed with
  // SIGKILL cannot remove it itself.
  const tmp = { TMPDIR: tempDir("serve") };
  const child = spawn(process.execPath, [...cmd, "--port", "0", ...args], { cwd: root, env: { ...process.env, ...tmp, ...env }, stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  child.stdout!.on("data", (b: Buffer) => (out += b.toString()));
  child.stderr!.on("data", (b: Buffer) => (out += b.toString()));
  const exited = new Promise<number | null>((r) => child.on("exit", (code, signal) => r(code ?? (signal ? 128 + (SIGNALS[signal] ?? 0) : null))));
  const port = await until(() => /listening on http:\/\/127\.0\.0\.1:(\d+)/.exec(out)?.[1], "the server to listen", 30_000).catch((e) => {
    child.kill("SIGKILL");
    throw new Error(`${(e as Error).message}; it printed:\n${out}`);
  });
  return { pid: child.pid!, base: `http://127.0.0.1:${port}`, output: () => out, kill: (s) => child.kill(s), exited };
}

/** The command that runs `runtime/service/cli/serve.ts` under this runtime (Bun or Deno), from the repository root. */
export function serveCommand(): string[] {
  const isDeno = typeof (globalThis as { Deno?: unknown }).Deno !== "undefined";
  return [process.execPath, ...(isDeno ? ["run", "-A", "runtime/service/cli/serve.ts"] : ["runtime/service/cli/serve.ts"])];
}

export const repoRoot = join(import.meta.dirname!, "..", "..");

export interface RawResponse {
  status: number;
  head: string;
  body: string;
}

/**
 * Sends `text` as is over a new TCP connection and reads until the server closes it (send
 * HTTP/1.0 or `Connection: close`), for requests fetch cannot make (no Host header, ...).
 */
export async function rawHttp(port: number, text: string): Promise<RawResponse> {
  const net = await import("node:net");
  const raw = await new Promise<string>((resolve, reject) => {
    let out = "";
    const socket = net.connect(port, "127.0.0.1", () => socket.write(text));
    socket.setEncoding("utf8");
    socket.on("data", (d: string) => (out += d));
    socket.on("error", reject);
    socket.on("close", () => resolve(out));
  });
  return parseRaw(raw);
}

/** Sends `head` on a new connection now; `finish(rest)` sends the rest and reads the answer to the end. */
export async function rawHttpInTwoParts(port: number, head: string): Promise<{ finish(rest: string): Promise<RawResponse> }> {
  const net = await import("node:net");
  let raw = "";
  const socket = net.connect(port, "127.0.0.1");
  socket.setEncoding("utf8");
  socket.on("data", (d: string) => (raw += d));
  const closed = new Promise<void>((resolve, reject) => {
    socket.on("error", reject);
    socket.on("close", () => resolve());
  });
  await new Promise<void>((resolve) => socket.write(head, () => resolve()));
  return {
    async finish(rest) {
      socket.write(rest);
      await closed;
      return parseRaw(raw);
    },
  };
}

function parseRaw(raw: string): RawResponse {
  const cut = raw.indexOf("\r\n\r\n");
  const head = cut < 0 ? raw : raw.slice(0, cut);
  return { status: Number(/^HTTP\/1\.[01] (\d{3})/.exec(head)?.[1] ?? 0), head, body: cut < 0 ? "" : raw.slice(cut + 4) };
}

/** Opens a TCP connection, sends `text` (maybe nothing), and resolves when the server closes it. */
export async function closedByServer(port: number, text: string): Promise<string> {
  const net = await import("node:net");
  return await new Promise<string>((resolve, reject) => {
    let out = "";
    const socket = net.connect(port, "127.0.0.1", () => void (text && socket.write(text)));
    socket.setEncoding("utf8");
    socket.on("data", (d: string) => (out += d));
    socket.on("error", reject);
    socket.on("close", () => resolve(out));
  });
}

/** Open file descriptors of a process (Linux /proc). */
export function openFds(pid: number): number {
  return readdirSync(`/proc/${pid}/fd`).length;
}

/** The path of prlimit(1), or undefined (with the reason printed) when it is not installed. */
export function prlimitPath(): string | undefined {
  const found = ["/usr/bin/prlimit", "/bin/prlimit", "/usr/local/bin/prlimit"].find((p) => existsSync(p));
  if (!found) console.log("skipping the descriptor-exhaustion test: prlimit not installed (apt-get install -y util-linux)");
  return found;
}

/**
 * Runs a coordinator out of file descriptors and back: lowers its descriptor limit to what it
 * uses plus `headroom`, opens `connections` connections that each send a request and stay open,
 * waits until the coordinator has run out (it holds every descriptor it may, or logged a failed
 * accept, or answered or closed every connection), closes them all, and returns the /healthz
 * answer it gives afterwards. Throws if the coordinator died.
 */
export async function exhaustDescriptors(server: ServeProcess, prlimit: string, connections = 400, headroom = 24): Promise<Response> {
  const net = await import("node:net");
  const limit = openFds(server.pid) + headroom;
  const set = spawnSync(prlimit, ["--pid", String(server.pid), `--nofile=${limit}:${limit}`], { encoding: "utf8" });
  if (set.status !== 0) throw new Error(`prlimit failed: ${set.stderr}`);
  const port = Number(new URL(server.base).port);
  let settled = 0; // answered, or closed by the coordinator
  const sockets = Array.from({ length: connections }, () => {
    const s = net.connect(port, "127.0.0.1", () => s.write("GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"));
    let done = false;
    const settle = () => void (done || (settled++, (done = true)));
    s.on("data", settle);
    s.on("close", settle);
    s.on("error", () => {});
    return s;
  });
  try {
    // It ran out: it holds every descriptor it may (the rest wait in the backlog), or it said
    // so (the Deno adapter logs a failed accept), or it dealt with every connection.
    const ranOut = () => openFds(server.pid) >= limit - 1 || server.output().includes("Too many open files") || settled === connections;
    await until(ranOut, `the coordinator to run out of its ${limit} descriptors`, 60_000);
    if (!processRuns(server.pid)) throw new Error(`the coordinator died out of descriptors:\n${server.output()}`);
  } finally {
    for (const s of sockets) s.destroy();
  }
  return await answerAfterFlood(server);
}

/**
 * The first request after a flood may still be dropped: the coordinator first works through the
 * flood's connections left in the kernel's backlog (their clients gone), and a connection it
 * accepts while its descriptors are still short is closed unanswered. What must hold is that it
 * stays up and answers again once they are drained: each attempt waits for the previous to end.
 */
async function answerAfterFlood(server: ServeProcess, attempts = 20): Promise<Response> {
  for (let i = 1; ; i++) {
    try {
      return await fetch(`${server.base}/healthz`);
    } catch (e) {
      if (i >= attempts || !processRuns(server.pid)) throw new Error(`no answer after the flood (attempt ${i}): ${(e as Error).message}\n${server.output()}`);
    }
  }
}
