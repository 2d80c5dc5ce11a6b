/** Shared set-up for supervision tests: quiet supervisors with fast failure detection. */
import { existsSync, readFileSync } from "node:fs";
import { FaultToleranceSchema, type FaultTolerance } from "../../config/schema.ts";
import { localLauncher, type Launcher } from "../../runtime/core/supervisor/launcher.ts";
import { Supervisor, type SupervisorOptions } from "../../runtime/core/supervisor/supervisor.ts";
import { testRoles } from "../fixtures/registry.ts";

/** Fault-tolerance settings tuned for tests: hangs found in ~0.5 s, restarts quick. */
export function testFt(overrides: Partial<FaultTolerance> = {}): FaultTolerance {
  return FaultToleranceSchema.parse({
    ping_interval_s: 0.1,
    ping_timeout_s: 0.5,
    restart_backoff_initial_s: 0.005,
    restart_backoff_max_s: 0.05,
    restart_intensity: 1000,
    shutdown_grace_s: 1,
    health_check_timeout_s: 1,
    ...overrides,
  });
}

export interface Harness {
  sup: Supervisor;
  /** Every line actors printed, as `[actor#incarnation] line`. */
  output: string[];
}

export function makeSupervisor(ft: Partial<FaultTolerance> = {}, extra: Partial<SupervisorOptions> = {}): Harness {
  const output: string[] = [];
  const sup = new Supervisor({
    faultTolerance: testFt(ft),
    roles: testRoles,
    output: (actor, inc, stream, line) => output.push(`[${actor}#${inc}] ${stream}: ${line}`),
    ...extra,
  });
  return { sup, output };
}

/** True while a process with this pid exists and is not a zombie. */
export function processRuns(pid: number): boolean {
  const status = `/proc/${pid}/status`;
  if (!existsSync(status)) return false;
  try {
    return !/^State:\s+Z/m.test(readFileSync(status, "utf8"));
  } catch {
    return false;
  }
}

/** Every pid the supervisor's actors had, from its event log and live actors. */
export function allPids(sup: Supervisor): number[] {
  const pids = new Set<number>();
  for (const e of sup.events.events) if (typeof e.pid === "number") pids.add(e.pid);
  for (const a of sup.actors()) if (a.current?.pid !== undefined) pids.add(a.current.pid);
  return [...pids];
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Waits until `cond()` holds, polling; throws with `what` after `timeoutMs`. */
export async function waitFor(cond: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await sleep(10);
  }
}

const ERRNO_TEXT: Record<string, string> = { EMFILE: "too many open files", EAGAIN: "resource temporarily unavailable" };

/** An error shaped like the runtimes' spawn errors: `code`, `syscall`, the code in the message. */
export function spawnError(code: string): NodeJS.ErrnoException {
  return Object.assign(new Error(`${code}: ${ERRNO_TEXT[code] ?? "spawn failed"}, posix_spawn`), { code, syscall: "posix_spawn" });
}

export interface FlakyLauncher extends Launcher {
  /** Launches attempted so far. */
  readonly attempts: number;
}

/**
 * The local launcher, except that the launches numbered in `failing` (1-based, counted across
 * all actors) throw a spawn error with `code`: faults by count, never by time. `failing` may
 * also be a predicate over the attempt number.
 */
export function flakyLauncher(failing: readonly number[] | ((attempt: number) => boolean), code = "EMFILE"): FlakyLauncher {
  const fails = typeof failing === "function" ? failing : (n: number) => failing.includes(n);
  let attempts = 0;
  return {
    name: "flaky",
    get attempts() {
      return attempts;
    },
    launch(request) {
      if (fails(++attempts)) throw spawnError(code);
      return localLauncher.launch(request);
    },
    inspect: localLauncher.inspect,
  };
}
