/**
 * Lock files: one process at a time drives a folder (a coordinator its run dir, a trainer its
 * job folder). The lock is a small JSON file naming its holder (pid, hostname, process start,
 * what it does, since when), created atomically: the content is written to a private temporary
 * file first and then hard-linked to the lock's name, which fails if the name exists (the same
 * guarantee as O_CREAT|O_EXCL, without a window where the lock exists but is still empty).
 *
 * A lock whose holder is gone (same host, pid no longer running, or running but a different
 * process that reused the pid) is stale: it is taken over and `log` says so. Any other lock
 * throws `LockedError` naming the holder. Held locks are released by `release()` and, as a last
 * resort, when the process exits; a process killed outright leaves a stale lock behind, which
 * the next `acquireLock` takes over.
 *
 * @example
 * ```ts
 * const lock = acquireLock("runs/coordinator.lock", "coordinator"); // throws LockedError if held
 * try { ... } finally { lock.release(); }
 * ```
 */
import { randomBytes } from "node:crypto";
import { closeSync, fsyncSync, linkSync, openSync, readFileSync, renameSync, rmSync, writeSync } from "node:fs";
import { hostname as osHostname } from "node:os";

/** What a lock file says about its holder. */
export interface LockHolder {
  pid: number;
  hostname: string;
  /** What holds it, e.g. "coordinator" or "job digit_reversal-…". */
  what: string;
  /** When it was taken (ISO 8601). */
  started_at: string;
  /** The holder's start time in clock ticks since boot (Linux /proc), to tell a reused pid apart. */
  pid_start?: number;
}

/** The lock is held by a live process (or one this host cannot check). */
export class LockedError extends Error {
  override name = "LockedError";
  constructor(readonly path: string, readonly holder: LockHolder | undefined, detail: string) {
    super(`${path} is locked: ${detail}`);
  }
}

export interface Lock {
  readonly path: string;
  /** Removes the lock file if it is still this process's; idempotent. */
  release(): void;
}

export interface LockOptions {
  /** Where a stale lock's takeover is reported; default stderr. */
  log?: (line: string) => void;
}

const held = new Map<string, string>();
let exitHookInstalled = false;

/** Takes the lock at `path` (its folder must exist) for `what`, or throws LockedError naming its live holder. */
export function acquireLock(path: string, what: string, o: LockOptions = {}): Lock {
  const log = o.log ?? ((line: string) => process.stderr.write(`${line}\n`));
  const me: LockHolder = { pid: process.pid, hostname: osHostname(), what, started_at: new Date().toISOString(), ...pidStart(process.pid) };
  const text = JSON.stringify(me) + "\n";
  // Two attempts: the second follows the removal of a stale lock.
  for (let attempt = 0; attempt < 2; attempt++) {
    if (tryCreate(path, text)) return track(path, text);
    const existing = readLock(path);
    if (existing === undefined) continue; // released between our attempt and the read
    const stale = staleReason(existing.holder);
    if (!existing.holder || !stale) throw new LockedError(path, existing.holder, describe(existing));
    if (!removeIfUnchanged(path, existing.text)) continue; // another process took it over first
    log(`${path}: took over a stale lock of ${existing.holder.what} (pid ${existing.holder.pid} on ${existing.holder.hostname}, since ${existing.holder.started_at}): ${stale}`);
  }
  const now = readLock(path);
  throw new LockedError(path, now?.holder, now ? describe(now) : "another process keeps taking it");
}

/** Writes `text` to a private temporary file and links it to `path`; false if `path` exists. */
function tryCreate(path: string, text: string): boolean {
  const tmp = `${path}.${process.pid}.${randomBytes(4).toString("hex")}.tmp`;
  const fd = openSync(tmp, "wx", 0o644);
  try {
    const bytes = new TextEncoder().encode(text);
    for (let off = 0; off < bytes.byteLength;) off += writeSync(fd, bytes, off);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  try {
    linkSync(tmp, path);
    return true;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "EEXIST") return false;
    throw e;
  } finally {
    rmSync(tmp, { force: true });
  }
}

interface ReadLock {
  text: string;
  holder: LockHolder | undefined;
}

function readLock(path: string): ReadLock | undefined {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw e;
  }
  try {
    const h = JSON.parse(text) as LockHolder;
    const valid = Number.isInteger(h.pid) && h.pid > 0 && typeof h.hostname === "string" && typeof h.what === "string";
    return { text, holder: valid ? h : undefined };
  } catch {
    return { text, holder: undefined };
  }
}

function describe(l: ReadLock): string {
  const h = l.holder;
  // Our own writer never leaves a partial file (write, then link), so this one is foreign.
  if (!h) return "the lock file is not one Revenant wrote; remove it if nothing else uses this folder";
  const where = h.hostname === osHostname() ? "" : ` on host ${h.hostname} (this host cannot check whether it still runs)`;
  return `held by ${h.what} (pid ${h.pid}${where}, since ${h.started_at}); stop it first, or remove the file if it is not running`;
}

/** Why a holder is known to be gone, or undefined when it may still run. */
function staleReason(h: LockHolder | undefined): string | undefined {
  if (!h || h.hostname !== osHostname()) return undefined;
  if (!pidRuns(h.pid)) return `pid ${h.pid} is no longer running`;
  const now = pidStart(h.pid).pid_start;
  if (h.pid_start !== undefined && now !== undefined && now !== h.pid_start) return `pid ${h.pid} now belongs to another process`;
  return undefined;
}

function pidRuns(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === "EPERM"; // alive, owned by another user
  }
  // An exited child its parent has not reaped yet is a zombie: gone for our purpose.
  return procStat(pid)?.state !== "Z";
}

/** State and start time from /proc/<pid>/stat (Linux); undefined elsewhere. */
function procStat(pid: number): { state: string; start: number } | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    // The command name (field 2) is parenthesised and may contain spaces: split after it.
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return { state: fields[0]!, start: Number(fields[19]) };
  } catch {
    return undefined;
  }
}

function pidStart(pid: number): { pid_start?: number } {
  const start = procStat(pid)?.start;
  return start !== undefined && Number.isFinite(start) ? { pid_start: start } : {};
}

/**
 * Removes the lock at `path` only if it still holds `text`: it is first renamed to a private
 * name (atomic, so two processes cannot both remove it), then checked; a lock that changed in
 * between is put back.
 */
function removeIfUnchanged(path: string, text: string): boolean {
  const aside = `${path}.${process.pid}.${randomBytes(4).toString("hex")}.stale`;
  try {
    renameSync(path, aside);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return false;
    throw e;
  }
  if (readFileSync(aside, "utf8") === text) {
    rmSync(aside, { force: true });
    return true;
  }
  try {
    linkSync(aside, path);
  } catch {
    // someone created a new lock meanwhile; theirs stands
  }
  rmSync(aside, { force: true });
  return false;
}

function track(path: string, text: string): Lock {
  held.set(path, text);
  if (!exitHookInstalled) {
    exitHookInstalled = true;
    process.on("exit", () => {
      for (const [p, t] of held) releaseIfOurs(p, t);
    });
  }
  return {
    path,
    release() {
      if (held.get(path) !== text) return;
      held.delete(path);
      releaseIfOurs(path, text);
    },
  };
}

function releaseIfOurs(path: string, text: string): void {
  try {
    if (readFileSync(path, "utf8") === text) rmSync(path, { force: true });
  } catch {
    // already gone
  }
}
