/**
 * A model's calls run one at a time in the order they were made, off the JS thread: results of
 * calls issued without awaiting equal a sequential run, getState sees exactly the calls made
 * before it, the event loop keeps turning while a long call runs, and dispose during a call is
 * safe. No test looks at durations.
 */
import { describe, expect, test } from "bun:test";
import { NativeComputeError, PolicyModel } from "../../native/policy_model.ts";
import { ActorRollout } from "../../roles/actor_rollout.ts";
import { fingerprint, model, SMALL, tokenBatch } from "./helpers.ts";

const batch = tokenBatch(31, 4, 10, SMALL.vocab);
const stepBatch = { ...batch, advantages: batch.mask.map((x, i) => x * ((i % 3) - 1)), oldLogprobs: batch.mask.map((x) => -2 * x) };

/** policyStep, logprobs, policyStep, logprobs, ...: every log-prob depends on the steps before it. */
function interleaved(m: PolicyModel, steps: number): Promise<unknown>[] {
  const calls: Promise<unknown>[] = [];
  for (let i = 0; i < steps; i++) {
    calls.push(m.policyStep(stepBatch, { lr: 1e-2 }));
    calls.push(m.logprobs(batch));
  }
  return calls;
}

/** Resolves with how many event-loop turns (setImmediate) ran before `p` settled. */
function turnsUntilSettled(p: Promise<unknown>): Promise<number> {
  let settled = false;
  p.then(() => (settled = true), () => (settled = true));
  return new Promise((resolve) => {
    let turns = 0;
    const turn = () => (settled ? resolve(turns) : (turns++, setImmediate(turn)));
    setImmediate(turn);
  });
}

/** A generate long enough to span many event-loop turns (a few thousand sampled tokens). */
function longGenerate(m: PolicyModel) {
  const prompts = Array.from({ length: 48 }, (_, i) => Int32Array.of(1 + (i % 7), 2));
  return m.generate(prompts, { maxNewTokens: 60, seed: 3 });
}

const big = () => new PolicyModel({ vocab: 16, context: 64, width: 64, layers: 2, heads: 4, seed: 8 }, { device: "cpu" });

describe("calls on one model run in the order made", () => {
  test("policySteps and logprobs issued without awaiting give the results of a sequential run", async () => {
    const sequential = model();
    const expected: unknown[] = [];
    for (let i = 0; i < 4; i++) {
      expected.push(await sequential.policyStep(stepBatch, { lr: 1e-2 }));
      expected.push(await sequential.logprobs(batch));
    }
    const queued = model();
    const got = await Promise.all(interleaved(queued, 4));
    expect(got).toEqual(expected);
    const [a, b] = [await sequential.getState(), await queued.getState()];
    expect(fingerprint(b.params, b.adamM, b.adamV)).toBe(fingerprint(a.params, a.adamM, a.adamV));
    // The log-probs moved with every step: a run out of order could not have matched.
    expect(new Set(got.filter((x) => x instanceof Float32Array).map((x) => fingerprint(x as Float32Array))).size).toBe(4);
  });

  test("getState issued while a long generate runs returns the state after the calls made before it", async () => {
    const reference = big();
    await reference.policyStep(stepBatch, { lr: 1e-2 });
    const afterOne = await reference.getState();

    const m = big();
    const step1 = m.policyStep(stepBatch, { lr: 1e-2 });
    const gen = longGenerate(m);
    const state = m.getState();
    const step2 = m.policyStep(stepBatch, { lr: 1e-2 });
    const s = await state;
    expect(s.step).toBe(1);
    expect(fingerprint(s.params, s.adamM, s.adamV)).toBe(fingerprint(afterOne.params, afterOne.adamM, afterOne.adamV));
    await Promise.all([step1, gen, step2]);
    expect(m.step).toBe(2);
  });

  test("setState applies in order: calls made after it see it, awaited or not", async () => {
    const a = model();
    await a.policyStep(stepBatch, { lr: 1e-2 });
    const trained = await a.getState();
    const b = model({ seed: 77 });
    const restore = b.setState(trained);
    const lp = b.logprobs(batch);
    await restore;
    expect(fingerprint(await lp)).toBe(fingerprint(await a.logprobs(batch)));
  });
});

describe("the JS thread never waits for the model", () => {
  test("the event loop turns while a long generate runs, with a getState queued behind it", async () => {
    const m = big();
    const gen = longGenerate(m);
    const state = m.getState(); // queued, not waited for
    expect(m.step).toBe(0); // answers at once
    expect(await turnsUntilSettled(gen)).toBeGreaterThan(0);
    expect((await state).step).toBe(0);
  });

  test("a role's health answers at once, not through the model, while a long call runs", async () => {
    const ctx = { actor: "actor_rollout", role: "actor_rollout", rank: 0, incarnation: 0, log: () => {} };
    const role = new ActorRollout({ model: { vocab: 16, context: 64, width: 64, layers: 2, heads: 4, seed: 8 }, device: "cpu", threads: 1 }, ctx);
    const prompts = Array.from({ length: 48 }, (_, i) => Int32Array.of(1 + (i % 7), 2));
    const gen = role.generate(prompts, { maxNewTokens: 60, seed: 3 });
    const health = role.health();
    expect(health).not.toBeInstanceOf(Promise);
    expect(health).toEqual({ ok: true, backend: "cpu", device: "cpu", fallback: null, step: 0 });
    expect(await turnsUntilSettled(gen)).toBeGreaterThan(0);
  });
});

describe("dispose", () => {
  test("dispose during a call: the call finishes, later calls reject clearly, nothing crashes", async () => {
    const m = big();
    const gen = longGenerate(m);
    const state = m.getState();
    const disposed = m.dispose();
    let err: unknown;
    try {
      await m.logprobs(batch);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(NativeComputeError);
    expect((err as Error).message).toMatch(/model: this model was disposed; calls made after dispose\(\) are refused/);
    expect((await gen).lengths).toHaveLength(48); // made before dispose: it ran
    expect((await state).step).toBe(0);
    await disposed;
    await expect(m.getState()).rejects.toThrow(/this model was disposed/);
    expect(() => m.step).toThrow(/this model was disposed/);
    await m.dispose(); // a second dispose changes nothing
  });
});
