/**
 * What a role is: a class the actor host instantiates in its own process, whose methods the
 * coordinator calls. State hooks make it restorable; `health` feeds `actor_health/<role>`.
 *
 * @example
 * ```ts
 * export class Counter implements Role {
 *   static readOnly = ["value"];           // not replayed after a restart
 *   private n = 0;
 *   constructor(options: { start?: number }, ctx: RoleContext) { this.n = options.start ?? 0; }
 *   add(k: number) { return (this.n += k); }
 *   value() { return this.n; }
 *   getState() { return { n: this.n }; }
 *   loadState(s: { n: number }) { this.n = s.n; }
 * }
 * ```
 */
import type { ActorAddress } from "../ipc/transport.ts";

/** Given to a role's constructor. */
export interface RoleContext {
  actor: string;
  role: string;
  rank: number;
  incarnation: number;
  /** Sends a log line to the coordinator, prefixed with the actor's name there. */
  log(line: string): void;
}

export interface Role {
  /** Returns the state to snapshot; typed arrays travel without copies. */
  getState?(): unknown | Promise<unknown>;
  /** Restores a snapshot taken by getState (possibly in an earlier incarnation). */
  loadState?(state: unknown): void | Promise<void>;
  /** The role's own health report; any throw or a falsy `ok` counts as unhealthy. */
  health?(): Record<string, unknown> | Promise<Record<string, unknown>>;
}

export interface RoleClass {
  new (options: Record<string, unknown>, ctx: RoleContext): Role;
  /** Methods that do not change state: they are not replayed after a restart. */
  readOnly?: readonly string[];
}

/** Where a role's class lives. Only registered roles can be started. */
export interface RoleEntry {
  /** Absolute path or file URL of the module. */
  module: string;
  /** The exported class name. */
  export: string;
}

/** What the coordinator hands a new actor process (as JSON in REVENANT_ACTOR_SPEC). */
export interface SpawnSpec {
  /** Where to connect back to: the coordinator's Unix socket or TCP address (see ipc/transport.ts). */
  address: ActorAddress;
  /** How long the coordinator may take to send its challenge and then prove itself. */
  helloTimeoutMs: number;
  actor: string;
  role: string;
  rank: number;
  incarnation: number;
  token: string;
  module: string;
  export: string;
  options: Record<string, unknown>;
  maxFrameBytes: number;
}

/** Exit codes of the actor host. */
export const EXIT = {
  /** Shut down on request (shutdown message or SIGTERM). */
  OK: 0,
  /** The coordinator's connection was lost: the host exits rather than outlive it. */
  COORDINATOR_LOST: 70,
  /**
   * The compute device failed for good (a sticky CUDA error: the context is unusable): the native
   * addon printed the error and ended the process, so that the supervisor restarts the actor on a
   * fresh context (native/src/core/error.h kDeviceLostExitCode).
   */
  DEVICE_LOST: 74,
  /** The role's module or constructor failed: a configuration error. */
  ROLE_START_FAILED: 78,
} as const;
