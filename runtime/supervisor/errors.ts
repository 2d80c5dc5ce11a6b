/**
 * Typed errors an actor call can end with. Each carries what a user needs to act on it.
 *
 * - ActorDiedError: the actor died and the call could not be (or was no longer) retried.
 * - ActorCallError: the role itself threw; the actor is fine; never retried.
 * - DeadlineExceededError: the call outlived its deadline (the actor was killed as hung) and
 *   could not be retried.
 * - RoleStartError: the role's constructor threw; a configuration error, reported once.
 */

/** How an actor incarnation ended. */
export interface DeathCause {
  /** exit: the process ended; disconnect: its connection closed; protocol: it sent a bad frame;
   *  hang: it stopped answering pings; deadline: a call outlived its deadline; start: it never
   *  became ready; group: killed to restart its group (one_for_all); stopped: an intended stop;
   *  restore: its state could not be restored. */
  kind: "exit" | "disconnect" | "protocol" | "hang" | "deadline" | "start" | "group" | "stopped" | "restore";
  detail: string;
  code: number | null;
  signal: string | null;
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
