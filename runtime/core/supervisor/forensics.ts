/**
 * Forensics for an actor about to be killed as hung: what the kernel can say about the process,
 * read just before the SIGKILL (after it there is nothing left to read). Linux only (/proc);
 * elsewhere the snapshot says it is unavailable. Best effort: a file that cannot be read says why
 * (`/proc/<pid>/stack` needs root, for instance) and nothing here throws.
 *
 * What it is not: a JavaScript stack. A signal handler in the actor could print one only when its
 * JS thread is free — and then the stack shows the handler, not the hang; a JS thread stuck in a
 * loop or a blocking call never runs the handler. The coordinator records instead which call
 * was running and for how long (see the `death` event), and the kernel's view of every thread.
 *
 * @example
 * ```ts
 * const snap = procSnapshot(pid); // { state: "S (sleeping)", wchan: "futex_do_wait", threads: [...] }
 * ```
 */
import { existsSync, readFileSync, readdirSync } from "node:fs";

/** Threads listed at most (a native thread pool can be large). */
const MAX_THREADS = 64;
/** Kernel stack lines kept. */
const MAX_STACK_LINES = 32;

export interface ThreadSnapshot {
  tid: number;
  name: string;
  /** One letter, as in ps: R running, S sleeping, D uninterruptible, T stopped, Z zombie. */
  state: string;
  wchan: string;
}

/** Reads a /proc file; on failure, a string saying why (so the record shows what was missing). */
function read(path: string): string {
  try {
    return readFileSync(path, "utf8").trim();
  } catch (e) {
    return `unreadable: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`;
  }
}

/** A `Key:\tvalue` line of /proc/<pid>/status. */
function statusField(status: string, key: string): string | undefined {
  return new RegExp(`^${key}:\\s*(.*)$`, "m").exec(status)?.[1];
}

function thread(pid: number, tid: number): ThreadSnapshot {
  const dir = `/proc/${pid}/task/${tid}`;
  const stat = read(`${dir}/stat`);
  // "tid (name) S ...": the name may hold spaces and parentheses, so split at the last ')'.
  const close = stat.lastIndexOf(")");
  return {
    tid,
    name: close > 0 ? stat.slice(stat.indexOf("(") + 1, close) : "?",
    state: close > 0 ? stat.slice(close + 2, close + 3) : stat,
    wchan: read(`${dir}/wchan`),
  };
}

function threads(pid: number): ThreadSnapshot[] {
  let tids: number[];
  try {
    tids = readdirSync(`/proc/${pid}/task`).map(Number).sort((a, b) => a - b);
  } catch {
    return [];
  }
  return tids.slice(0, MAX_THREADS).map((tid) => thread(pid, tid));
}

/** The kernel's view of process `pid`: state, wait channel, syscall, kernel stack, threads. */
export function procSnapshot(pid: number): Record<string, unknown> {
  if (!existsSync(`/proc/${pid}/status`)) return { pid, unavailable: "no /proc entry (not Linux, or the process is gone)" };
  const status = read(`/proc/${pid}/status`);
  return {
    pid,
    state: statusField(status, "State") ?? status,
    threads_total: Number(statusField(status, "Threads")) || undefined,
    vm_rss: statusField(status, "VmRSS"),
    wchan: read(`/proc/${pid}/wchan`),
    syscall: read(`/proc/${pid}/syscall`),
    kernel_stack: read(`/proc/${pid}/stack`).split("\n").slice(0, MAX_STACK_LINES),
    threads: threads(pid),
  };
}
