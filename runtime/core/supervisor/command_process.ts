/**
 * An arbitrary command (not a module of this runtime) as an ActorProcess: what a launcher that
 * goes through a cluster tool (`srun`) hands the supervisor. It uses `node:child_process`, which
 * Bun and Deno both provide, so it needs nothing from the runtime adapter.
 *
 * Stderr is read line by line so the launcher can learn from the tool's own lines (which node,
 * which step, a node failure) and keep them out of the actor's output.
 *
 * @example
 * ```ts
 * const p = spawnCommand(["srun", "-v", "--", "bun", "host.ts"], env, (line) => !line.startsWith("srun: launching"));
 * ```
 */
import { spawn, type ChildProcess as NodeChild } from "node:child_process";
import { constants } from "node:os";
import type { Readable } from "node:stream";
import type { ExitStatus } from "../adapter/index.ts";
import type { ActorProcess } from "./launcher.ts";

/** Told each stderr line; returns false to keep it out of the actor's output. */
export type LineFilter = (line: string) => boolean;

const SIGNAL_NAMES = new Map(Object.entries(constants.signals).map(([name, n]) => [n, name]));

/**
 * A wrapper tool (srun) reports a task killed by signal n as exit code 128 + n; it is read back
 * as that signal, as a local child killed by it would report.
 */
export function unwrapStatus(code: number | null, signal: string | null): ExitStatus {
  if (code !== null && code > 128 && SIGNAL_NAMES.has(code - 128)) return { code: null, signal: SIGNAL_NAMES.get(code - 128)! };
  return { code, signal };
}

/** A node stream as a web stream of bytes; `lines` (if given) filters it line by line. */
function webStream(source: Readable, lines?: LineFilter): ReadableStream<Uint8Array> {
  const encoder = new TextEncoder();
  const decoder = new TextDecoder();
  let partial = "";
  const emit = (controller: ReadableStreamDefaultController<Uint8Array>, line: string) => {
    if (lines!(line)) controller.enqueue(encoder.encode(`${line}\n`));
  };
  return new ReadableStream<Uint8Array>({
    start(controller) {
      source.on("data", (chunk: Uint8Array) => {
        if (!lines) return controller.enqueue(new Uint8Array(chunk));
        const parts = (partial + decoder.decode(chunk, { stream: true })).split("\n");
        partial = parts.pop()!;
        for (const line of parts) emit(controller, line);
      });
      source.on("end", () => {
        if (lines && partial) emit(controller, partial);
        controller.close();
      });
      source.on("error", () => controller.close());
    },
  });
}

/** A started command: an ActorProcess, plus what its launcher learns about it. */
export class CommandProcess implements ActorProcess {
  readonly pid: number | undefined;
  readonly stdout: ReadableStream<Uint8Array>;
  readonly stderr: ReadableStream<Uint8Array>;
  readonly exited: Promise<ExitStatus>;
  /** The node it runs on, once known. */
  node: string | undefined;
  /** The process has exited. */
  ended = false;
  private readonly child: NodeChild;

  /** Throws (as a failed start) when the command cannot be spawned, e.g. it is not installed. */
  constructor(argv: readonly string[], env: Record<string, string>, stderrLines: LineFilter) {
    this.child = spawn(argv[0]!, argv.slice(1), { env, stdio: ["ignore", "pipe", "pipe"], detached: true });
    this.pid = this.child.pid;
    const spawned = new Promise<void>((resolve, reject) => {
      this.child.once("spawn", resolve);
      this.child.once("error", reject);
    });
    this.stdout = webStream(this.child.stdout!);
    this.stderr = webStream(this.child.stderr!, stderrLines);
    this.exited = new Promise<ExitStatus>((resolve) => {
      this.child.once("exit", (code, signal) => {
        this.ended = true;
        resolve(unwrapStatus(code, signal));
      });
      // A command that could not start (ENOENT) ends at once, saying why on its stderr.
      spawned.catch(() => {
        this.ended = true;
        resolve({ code: 127, signal: null });
      });
    });
    if (this.pid === undefined) throw new Error(`cannot start ${argv[0]}: it is not installed or not on PATH`);
  }

  /** Signals the local process (the wrapper tool itself). */
  signalLocal(signal: NodeJS.Signals): void {
    if (this.ended) return;
    try {
      this.child.kill(signal);
    } catch {
      // already gone
    }
  }

  kill(signal: NodeJS.Signals = "SIGTERM"): void {
    this.signalLocal(signal);
  }
}

/** Runs a short command and forgets it (scancel): started now, even when this process is about to exit. */
export function fireAndForget(argv: readonly string[], env: Record<string, string | undefined> = process.env): void {
  try {
    const child = spawn(argv[0]!, argv.slice(1), { env: env as Record<string, string>, stdio: "ignore", detached: true });
    child.on("error", () => {});
    child.unref();
  } catch {
    // best effort: the caller has a fallback
  }
}
