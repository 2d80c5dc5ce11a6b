/**
 * Lock files (runtime/core/checkpoint/lock.ts): one holder at a time, across processes; the holder is
 * named in the file and in the error; a lock left by a dead process (or a pid now reused by
 * another process) is taken over with a log line; release removes only our own lock; a foreign
 * file is never taken over.
 */
import { afterAll, describe, expect, test } from "bun:test";
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { hostname, tmpdir } from "node:os";
import { join } from "node:path";
import { acquireLock, LockedError, type LockHolder } from "../../runtime/core/checkpoint/lock.ts";

const dir = mkdtempSync(join(tmpdir(), "revenant-lock-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
let n = 0;
const lockPath = () => join(dir, `l${n++}.lock`);
const root = join(import.meta.dir, "..", "..");

/** A pid that certainly ran and has exited (and was reaped). */
function deadPid(): number {
  const r = spawnSync(process.execPath, ["-e", "console.log(process.pid)"], { encoding: "utf8" });
  return Number(r.stdout.trim());
}

function holderOf(path: string): LockHolder {
  return JSON.parse(readFileSync(path, "utf8")) as LockHolder;
}

describe("acquireLock", () => {
  test("creates the file naming its holder; release removes it; release twice is harmless", () => {
    const path = lockPath();
    const lock = acquireLock(path, "coordinator");
    const h = holderOf(path);
    expect(h).toMatchObject({ pid: process.pid, hostname: hostname(), what: "coordinator" });
    expect(Date.parse(h.started_at)).not.toBeNaN();
    lock.release();
    expect(existsSync(path)).toBe(false);
    lock.release();
    // No temporary files are left beside it.
    expect(readdirSync(dir).filter((f) => f.includes(".tmp") || f.includes(".stale"))).toEqual([]);
  });

  test("a held lock refuses a second holder, in this process and in another, naming the holder", () => {
    const path = lockPath();
    const lock = acquireLock(path, "coordinator");
    try {
      let error: unknown;
      try {
        acquireLock(path, "job x");
      } catch (e) {
        error = e;
      }
      expect(error).toBeInstanceOf(LockedError);
      expect((error as LockedError).holder?.pid).toBe(process.pid);
      expect((error as LockedError).message).toContain(`held by coordinator (pid ${process.pid}`);

      const script = `import { acquireLock } from ${JSON.stringify(join(root, "runtime/core/checkpoint/lock.ts"))};
        try { acquireLock(${JSON.stringify(path)}, "second"); console.log("acquired"); } catch (e) { console.log(e.name + ": " + e.message); }`;
      const r = spawnSync(process.execPath, ["-e", script], { encoding: "utf8" });
      expect(r.stdout).toContain(`LockedError: ${path} is locked: held by coordinator (pid ${process.pid}`);
    } finally {
      lock.release();
    }
    // Free again: the next one gets it.
    acquireLock(path, "third").release();
  });

  test("a stale lock from a dead pid is taken over, and the log says so", () => {
    const path = lockPath();
    const pid = deadPid();
    const stale: LockHolder = { pid, hostname: hostname(), what: "coordinator", started_at: "2026-01-01T00:00:00.000Z" };
    writeFileSync(path, JSON.stringify(stale));
    const lines: string[] = [];
    const lock = acquireLock(path, "new coordinator", { log: (l) => lines.push(l) });
    expect(holderOf(path)).toMatchObject({ pid: process.pid, what: "new coordinator" });
    expect(lines).toHaveLength(1);
    expect(lines[0]).toContain(`took over a stale lock of coordinator (pid ${pid} on ${hostname()}`);
    expect(lines[0]).toContain(`pid ${pid} is no longer running`);
    lock.release();
  });

  test("a lock whose pid now belongs to another process (start time differs) is stale", () => {
    const path = lockPath();
    const start = Number(readFileSync("/proc/self/stat", "utf8").split(") ")[1]!.split(" ")[19]);
    writeFileSync(path, JSON.stringify({ pid: process.pid, hostname: hostname(), what: "old", started_at: "2026-01-01T00:00:00.000Z", pid_start: start - 1 }));
    const lines: string[] = [];
    acquireLock(path, "new", { log: (l) => lines.push(l) }).release();
    expect(lines[0]).toContain(`pid ${process.pid} now belongs to another process`);
  });

  test("a lock held on another host, or a file Revenant did not write, is never taken over", () => {
    const remote = lockPath();
    writeFileSync(remote, JSON.stringify({ pid: deadPid(), hostname: "elsewhere.example", what: "coordinator", started_at: "2026-01-01T00:00:00.000Z" }));
    expect(() => acquireLock(remote, "x")).toThrow(/on host elsewhere\.example \(this host cannot check whether it still runs\)/);
    const foreign = lockPath();
    writeFileSync(foreign, "not json");
    expect(() => acquireLock(foreign, "x")).toThrow(/not one Revenant wrote; remove it if nothing else uses this folder/);
    expect(readFileSync(foreign, "utf8")).toBe("not json");
  });

  test("release never removes a lock that is no longer ours", () => {
    const path = lockPath();
    const lock = acquireLock(path, "first");
    // Someone replaced it (by hand): our release must leave theirs alone.
    const theirs = JSON.stringify({ pid: process.pid, hostname: hostname(), what: "theirs", started_at: "x" });
    writeFileSync(path, theirs);
    lock.release();
    expect(readFileSync(path, "utf8")).toBe(theirs);
  });

  test("a process that exits without releasing leaves no lock behind; one killed outright leaves a stale one", () => {
    const clean = lockPath();
    const mod = JSON.stringify(join(root, "runtime/core/checkpoint/lock.ts"));
    const exits = spawnSync(process.execPath, ["-e", `import { acquireLock } from ${mod}; acquireLock(${JSON.stringify(clean)}, "exits"); process.exit(3);`]);
    expect(exits.status).toBe(3);
    expect(existsSync(clean)).toBe(false);

    const killed = lockPath();
    const r = spawnSync(process.execPath, ["-e", `import { acquireLock } from ${mod}; acquireLock(${JSON.stringify(killed)}, "killed"); process.kill(process.pid, "SIGKILL");`]);
    expect(r.signal).toBe("SIGKILL");
    expect(holderOf(killed).what).toBe("killed");
    const lines: string[] = [];
    acquireLock(killed, "after", { log: (l) => lines.push(l) }).release();
    expect(lines[0]).toContain("took over a stale lock of killed");
  });
});
