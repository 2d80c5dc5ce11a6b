/**
 * The compute clock a model role keeps (roles/compute_clock.ts): every native call made through the
 * role's model is logged once, under its method, as an interval that starts no later than it ends
 * and lies inside the wall-clock window around the call; taking the log clears it; the model's
 * getters still work through the wrapper; results are the unwrapped model's. No test looks at
 * durations.
 */
import { describe, expect, test } from "bun:test";
import { PolicyModel } from "../../native/policy_model.ts";
import { ActorRollout } from "../../roles/actor_rollout.ts";
import { ComputeClock } from "../../roles/compute_clock.ts";
import { SMALL, tokenBatch } from "../native/helpers.ts";

const ctx = { actor: "actor_rollout", role: "actor_rollout", rank: 0, incarnation: 0, log: () => {} };
const batch = tokenBatch(3, 2, 8, SMALL.vocab);
const epochNow = () => performance.timeOrigin + performance.now();

describe("ComputeClock", () => {
  test("logs each timed call once, inside the window around it, and clears on take", async () => {
    const clock = new ComputeClock();
    const plain = new PolicyModel(SMALL, { device: "cpu", threads: 1 });
    const m = clock.wrap(plain);
    const before = epochNow();
    const lp = await m.logprobs(batch);
    await m.generate([[1, 2]], { maxNewTokens: 3, seed: 1 });
    const after = epochNow();
    expect(m.step).toBe(0); // a getter reading the model's private state, through the wrapper
    expect(m.numParams).toBe(plain.numParams);
    const log = clock.take();
    expect(log.map((i) => i.method)).toEqual(["logprobs", "generate"]);
    for (const i of log) {
      expect(i.start).toBeGreaterThanOrEqual(before);
      expect(i.end).toBeGreaterThanOrEqual(i.start);
      expect(i.end).toBeLessThanOrEqual(after);
    }
    expect(log[0]!.end).toBeLessThanOrEqual(log[1]!.start);
    expect(clock.take()).toEqual([]);
    expect(Array.from(lp)).toEqual(Array.from(await plain.logprobs(batch)));
    expect(clock.take()).toEqual([]); // calls on the unwrapped model are not logged
    await plain.dispose();
  });

  test("a failed call is logged too, and its error reaches the caller", async () => {
    const clock = new ComputeClock();
    const m = clock.wrap(new PolicyModel(SMALL, { device: "cpu", threads: 1 }));
    await expect(m.logprobs({ ...batch, seqLen: 1, batch: 16 })).rejects.toThrow();
    expect(clock.take().map((i) => i.method)).toEqual(["logprobs"]);
    await m.dispose();
  });

  test("an actor's computeLog returns its native calls", async () => {
    const role = new ActorRollout({ model: { ...SMALL, seed: 5 }, device: "cpu", threads: 1 }, ctx);
    await role.logprobs(batch);
    await role.generate([Int32Array.of(1, 2)], { maxNewTokens: 2, seed: 1 });
    expect(role.computeLog().map((i) => i.method)).toEqual(["logprobs", "generate"]);
    expect(role.computeLog()).toEqual([]);
  });
});
