/**
 * Typed calls across the actor boundary: `ActorRef<R>` checks `call(method, ...args)` against the
 * role class R — the method must exist, the arguments must fit its parameters, and the result is
 * its awaited return type. Renaming or re-typing a role method breaks every caller at type-check
 * time instead of at run time in another process.
 *
 * @example
 * ```ts
 * const rollout = new ActorRef<ActorRollout>(supervisor.actor("actor_rollout"));
 * const gen = await rollout.call("generate", prompts, { maxNewTokens: 8, temperature: 1, seed: 1 });
 * ```
 */
import type { Actor, CallOptions } from "./actor.ts";

// deno-lint-ignore no-explicit-any
type AnyFunction = (...args: any[]) => unknown;

/** The names of R's methods (string keys whose value is a function). */
export type RoleMethod<R> = { [K in keyof R & string]: R[K] extends AnyFunction ? K : never }[keyof R & string];
/** The parameters of R's method K. */
export type RoleArgs<R, K extends RoleMethod<R>> = R[K] extends AnyFunction ? Parameters<R[K]> : never;
/** What R's method K resolves to. */
export type RoleResult<R, K extends RoleMethod<R>> = R[K] extends AnyFunction ? Awaited<ReturnType<R[K]>> : never;

export class ActorRef<R> {
  /**
   * @param afterSend called right after each call is handed to the actor, before anything else
   *   runs (fault plans strike there).
   */
  constructor(readonly actor: Actor, private readonly afterSend?: (actor: Actor, method: string) => void) {}

  get id(): string {
    return this.actor.id;
  }

  call<K extends RoleMethod<R>>(method: K, ...args: RoleArgs<R, K>): Promise<RoleResult<R, K>> {
    return this.callWith({}, method, ...args);
  }

  /** `call` with options (a deadline of its own). */
  callWith<K extends RoleMethod<R>>(options: CallOptions, method: K, ...args: RoleArgs<R, K>): Promise<RoleResult<R, K>> {
    const result = this.actor.call<RoleResult<R, K>>(method, args, options);
    this.afterSend?.(this.actor, method);
    return result;
  }
}
