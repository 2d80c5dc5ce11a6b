/**
 * Typed actor calls: `ActorRef<R>.call` is checked against the role class at type-check time
 * (`bun run typecheck` fails if any @ts-expect-error below stops being an error, i.e. if a wrong
 * method name or argument type were accepted), and at run time it forwards to the actor.
 */
import { expect, test } from "bun:test";
import type { ActorRollout } from "../../roles/actor_rollout.ts";
import type { Actor } from "../../runtime/core/supervisor/actor.ts";
import { ActorRef } from "../../runtime/core/supervisor/actor_ref.ts";

class Counter {
  private n = 0;
  add(k: number): number {
    return (this.n += k);
  }
  async label(prefix: string): Promise<string> {
    return `${prefix}${this.n}`;
  }
}

/** Records calls like a supervised actor would receive them. */
function fakeActor(): { actor: Actor; calls: unknown[][] } {
  const calls: unknown[][] = [];
  const role = new Counter();
  const actor = {
    id: "c0",
    call: async (method: string, args: unknown[]) => {
      calls.push([method, ...args]);
      return (role as unknown as Record<string, (...a: unknown[]) => unknown>)[method]!(...args);
    },
  } as unknown as Actor;
  return { actor, calls };
}

test("calls forward the method and arguments and resolve with the awaited result type", async () => {
  const { actor, calls } = fakeActor();
  const sent: string[] = [];
  const ref = new ActorRef<Counter>(actor, (_a, method) => sent.push(method));
  const n: number = await ref.call("add", 2);
  const s: string = await ref.call("label", "n=");
  expect([n, s]).toEqual([2, "n=2"]);
  expect(calls).toEqual([["add", 2], ["label", "n="]]);
  expect(sent).toEqual(["add", "label"]);
});

test("wrong method names and argument types do not type-check", () => {
  const ref = new ActorRef<Counter>(fakeActor().actor);
  const rollout = new ActorRef<ActorRollout>(fakeActor().actor);
  const never = false as boolean; // type-level checks only: nothing below runs
  if (never) {
    // @ts-expect-error: no such method (a renamed role method breaks its callers)
    void ref.call("increment", 1);
    // @ts-expect-error: wrong argument type
    void ref.call("add", "2");
    // @ts-expect-error: missing argument
    void ref.call("add");
    // @ts-expect-error: the rollout role's generate takes prompts and options
    void rollout.call("generate", [Int32Array.of(1)]);
    // @ts-expect-error: `model` is a field, not a callable method
    void rollout.call("model");
  }
  expect(never).toBe(false);
});
