/**
 * Typed errors an actor call can end with. Each carries what a user needs to act on it.
 *
 * - ActorDiedError: the actor died and the call could not be (or was no longer) retried.
 * - ActorCallError: the role itself threw; the actor is fine; never retried.
 * - DeadlineExceededError: the call outlived its deadline (the actor was killed as hung) and
 *   could not be retried.
 * - RoleStartError: the role's constructor threw; a configuration error, reported once.
 * - ActorSpawnError (an ActorDiedError): the process could not even be started (EMFILE, EAGAIN,
 *   ...) and the restart limits ran out; it names the launcher's error.
 */

/** How an actor incarnation ended. */
export interface DeathCause {
  /** exit: the process ended; disconnect: its connection closed; protocol: it sent a bad frame;
   *  hang: it stopped answering pings; deadline: a call outlived its deadline; start: it never
   *  became ready; group: killed to restart its group (one_for_all); stopped: an intended stop;
   *  restore: its state could not be restored; spawn: the launcher could not start the process. */
  kind: "exit" | "disconnect" | "protocol" | "hang" | "deadline" | "start" | "group" | "stopped" | "restore" | "spawn";
  detail: string;
  code: number | null;
  signal: string | null;
  /** For an actor killed as hung (hang, deadline): its state just before the kill. */
  forensics?: Forensics;
}

/** What was recorded about a hung actor before it was killed. */
export interface Forensics {
  /** The last lines it printed (stdout, stderr, log), up to its death. */
  last_lines: string[];
  /** The launcher's view of the process (for a local one: /proc state, wchan, threads, kernel stack). */
  process: Record<string, unknown>;
}

/** `EMFILE: too many open files`, from a spawn error, whatever its runtime's wording. */
export function describeSpawnError(e: unknown): string {
  if (!(e instanceof Error)) return String(e);
  const code = (e as NodeJS.ErrnoException).code;
  return code && !e.message.includes(code) ? `${code}: ${e.message}` : e.message;
}

export function describeCause(c: DeathCause): string {
  const how = c.signal ? `signal ${c.signal}` : c.code !== null ? `exit code ${c.code}` : "no exit status";
  return `${c.kind}: ${c.detail} (${how})`;
}

export class ActorDiedError extends Error {
  override name = "ActorDiedError";
  constructor(
    readonly actor: string,
    readonly role: string,
    readonly incarnation: number,
    readonly cause_: DeathCause,
    /** The last lines the actor printed (stdout and stderr). */
    readonly lastLines: string[],
    why: string,
  ) {
    super(
      `actor ${actor} (role ${role}, incarnation ${incarnation}) died: ${describeCause(cause_)}; ${why}` +
        (lastLines.length ? `\n  last output:\n    ${lastLines.join("\n    ")}` : ""),
    );
  }
  get exitCode(): number | null {
    return this.cause_.code;
  }
  get signal(): string | null {
    return this.cause_.signal;
  }
}

/** The actor could not be started at all, and restarts ran out: `spawnError` is the launcher's error. */
export class ActorSpawnError extends ActorDiedError {
  override name = "ActorSpawnError";
  constructor(actor: string, role: string, incarnation: number, cause_: DeathCause, readonly spawnError: Error, why: string) {
    super(actor, role, incarnation, cause_, [], why);
  }
  /** The error code (`EMFILE`, `EAGAIN`, ...), when the launcher's error had one. */
  get errno(): string | undefined {
    return (this.spawnError as NodeJS.ErrnoException).code;
  }
}

export class ActorCallError extends Error {
  override name = "ActorCallError";
  constructor(
    readonly actor: string,
    readonly method: string,
    /** The name of the error the role threw. */
    readonly remoteName: string,
    remoteMessage: string,
    /** The stack as printed in the actor. */
    readonly remoteStack: string,
  ) {
    super(`${actor}.${method} threw ${remoteName}: ${remoteMessage}`);
    this.remoteMessage = remoteMessage;
  }
  readonly remoteMessage: string;
}

export class DeadlineExceededError extends Error {
  override name = "DeadlineExceededError";
  constructor(readonly actor: string, readonly method: string, readonly deadlineS: number, attempts: number) {
    super(`${actor}.${method} exceeded its ${deadlineS}s deadline (${attempts} attempt${attempts === 1 ? "" : "s"}); the actor was killed as hung`);
  }
}

export class RoleStartError extends Error {
  override name = "RoleStartError";
  constructor(readonly actor: string, readonly role: string, remoteName: string, remoteMessage: string, readonly remoteStack: string) {
    super(`role ${role} of actor ${actor} failed to start: ${remoteName}: ${remoteMessage}`);
  }
}

/** A child spec, or a set of them, that is invalid; raised before anything is started. */
export class ChildSpecError extends Error {
  override name = "ChildSpecError";
}
