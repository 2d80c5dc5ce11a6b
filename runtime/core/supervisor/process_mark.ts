/**
 * Process marks: every process an actor starts, and everything those start in turn, detached or
 * double-forked included, inherits the environment variable REVENANT_PROCESS_MARK
 * (`<supervisor mark>/<actor>#<incarnation>`). The process tree forgets who started whom once a
 * parent dies (orphans go to init), the environment does not: when an incarnation ends, whatever
 * still carries its mark is killed, and when a supervisor starts or stops, whatever carries its
 * mark is. A process that clears its own environment escapes; nothing a role's code starts by
 * ordinary means does. Linux only (it reads /proc); elsewhere nothing is found.
 *
 * @example
 * ```ts
 * const env = { ...base, [PROCESS_MARK]: incarnationMark("ab12cd34", "reward", 2) };
 * killMarked({ exact: incarnationMark("ab12cd34", "reward", 2) }); // after it exited
 * ```
 */
import { readdirSync, readFileSync } from "node:fs";

export const PROCESS_MARK = "REVENANT_PROCESS_MARK";
const PREFIX = `${PROCESS_MARK}=`;

/** The mark of one incarnation of an actor. */
export function incarnationMark(supervisorMark: string, actor: string, incarnation: number): string {
  return `${supervisorMark}/${actor}#${incarnation}`;
}

/** What to match: one incarnation's mark exactly, or every mark under a supervisor's. */
export type MarkMatch = { exact: string } | { supervisor: string };

/** The ids of this machine's processes (this one excepted) whose environment carries a matching mark. */
export function markedProcesses(match: MarkMatch): number[] {
  let entries: string[];
  try {
    entries = readdirSync("/proc");
  } catch {
    return []; // not Linux
  }
  const found: number[] = [];
  for (const name of entries) {
    const pid = Number(name);
    if (!Number.isInteger(pid) || pid <= 1 || pid === process.pid) continue;
    const mark = markOf(pid);
    if (mark !== undefined && matches(mark, match)) found.push(pid);
  }
  return found;
}

/** SIGKILLs every matching process; returns their ids. */
export function killMarked(match: MarkMatch): number[] {
  const pids = markedProcesses(match);
  for (const pid of pids) {
    try {
      process.kill(pid, "SIGKILL");
    } catch {
      // gone already, or not ours to signal
    }
  }
  return pids;
}

function matches(mark: string, match: MarkMatch): boolean {
  return "exact" in match ? mark === match.exact : mark.startsWith(`${match.supervisor}/`);
}

/** The process's mark; undefined when it has none or its environment cannot be read (another user's, gone). */
function markOf(pid: number): string | undefined {
  let environ: string;
  try {
    environ = readFileSync(`/proc/${pid}/environ`, "latin1");
  } catch {
    return undefined;
  }
  // Entries are NUL-separated: a leading NUL makes the first one look like every other.
  const text = `\0${environ}`;
  const at = text.indexOf(`\0${PREFIX}`);
  if (at < 0) return undefined;
  const from = at + 1 + PREFIX.length;
  const end = text.indexOf("\0", from);
  return text.slice(from, end < 0 ? undefined : end);
}
