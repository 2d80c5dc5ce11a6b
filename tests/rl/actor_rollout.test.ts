/**
 * actor_rollout's old log-probs begun at generate: `generate(prompts, options, scoreAs)` starts
 * the log-probs of the batch the trainer builds from its result, and the trainer's `logprobs`
 * call on that batch returns them. They must be the numbers a fresh call computes, bit for bit;
 * any other batch, temperature or an update in between must compute afresh. On the CPU addon.
 */
import { describe, expect, test } from "bun:test";
import { resolveConfig } from "../../config/index.ts";
import { ActorRollout } from "../../roles/actor_rollout.ts";
import type { RoleContext } from "../../runtime/core/host/role.ts";
import { buildBatch } from "../../roles/batch.ts";
import { taskData } from "../../runtime/rl/trainer/job_data.ts";
import { tokenBatch } from "../../runtime/rl/trainer/phases.ts";
import { JobPlan } from "../../runtime/rl/trainer/plan.ts";

const config = resolveConfig({ file: null, env: {}, args: ["data.train_size=16", "data.val_size=4", "data.train_batch_size=4", "worker.actor.rollout_n=2"] }).config;
const plan = new JobPlan(config, taskData(config));
const ctx: RoleContext = { actor: "a", role: "actor_rollout", rank: 0, incarnation: 1, log: () => {} };
const prompts = plan.data.train.slice(0, 4).map((p) => p.ids);
const options = { maxNewTokens: plan.maxNew, temperature: 1, seed: 7, eosToken: plan.data.tokenizer.eosId };
const layout = { seqLen: plan.seqLen, padId: plan.data.tokenizer.padId, temperature: 1.25 };

function actor(): ActorRollout {
  return new ActorRollout({ ...plan.roleOptions("actor"), device: "cpu" }, ctx);
}

/** The trainer's batch for a generate result, as runtime/rl/trainer/phases.ts builds it. */
function batchOf(gen: { tokens: Int32Array; lengths: Int32Array }) {
  return tokenBatch(buildBatch(prompts, gen.tokens, gen.lengths, plan.maxNew, plan.seqLen, layout.padId));
}

const now = () => performance.timeOrigin + performance.now();
/** Native log-prob passes of `a` begun at or after `since` (epoch ms), among those finished. */
const passesSince = (a: ActorRollout, since: number) => a.computeLog().filter((i) => i.method === "logprobs" && i.start >= since).length;

describe("actor_rollout: old log-probs begun at generate", () => {
  test("the trainer's logprobs call gets them, bit for bit what a fresh call computes, with no second pass", async () => {
    const a = actor(), b = actor();
    const gen = await a.generate(prompts, options, layout);
    const since = now();
    const early = await a.logprobs(batchOf(gen), { temperature: layout.temperature });
    const log = a.computeLog().filter((i) => i.method === "logprobs");
    expect(log).toHaveLength(1); // the pass begun at generate (done: its result is in) ...
    expect(log.filter((i) => i.start >= since)).toHaveLength(0); // ... and none of this call's own
    const genB = await b.generate(prompts, options);
    expect(genB.tokens).toEqual(gen.tokens);
    const fresh = await b.logprobs(batchOf(genB), { temperature: layout.temperature });
    expect(Buffer.from(early.buffer).equals(Buffer.from(fresh.buffer))).toBe(true);
    expect(early.some((x) => x !== 0)).toBe(true);
  });

  test("another batch, another temperature, or an update in between: computed afresh", async () => {
    const a = actor();
    const gen = await a.generate(prompts, options, layout);
    const batch = batchOf(gen);
    const masked = { ...batch, mask: batch.mask.map((m, i) => (i < plan.seqLen ? 0 : m)) };
    let since = now();
    const other = await a.logprobs(masked, { temperature: layout.temperature });
    expect(passesSince(a, since)).toBe(1);
    expect(other.subarray(0, plan.seqLen).every((x) => x === 0)).toBe(true);

    await a.generate(prompts, options, layout);
    since = now();
    await a.logprobs(batch, { temperature: 1 });
    expect(passesSince(a, since)).toBe(1);

    // An update changes the weights: what was begun before it is stale and must not be returned.
    await a.generate(prompts, options, layout);
    const before = await a.logprobs(batch, { temperature: layout.temperature });
    await a.generate(prompts, options, layout);
    const n = batch.batch * batch.seqLen;
    const advantages = new Float32Array(n).map((_, i) => batch.mask[i]! * ((i % 3) - 1));
    await a.update({ ...batch, advantages, oldLogprobs: before }, { temperature: layout.temperature }, { epochs: 1, miniBatchSize: batch.batch, seed: 3 });
    since = now();
    const after = await a.logprobs(batch, { temperature: layout.temperature });
    expect(passesSince(a, since)).toBe(1);
    expect(Buffer.from(after.buffer).equals(Buffer.from(before.buffer))).toBe(false);

    // So does a restore (the supervisor's after a restart, or a checkpoint's).
    const pristine = actor();
    await a.generate(prompts, options, layout);
    await a.loadState(await pristine.getState());
    since = now();
    const restored = await a.logprobs(batch, { temperature: layout.temperature });
    expect(passesSince(a, since)).toBe(1);
    expect(Buffer.from(restored.buffer).equals(Buffer.from((await pristine.logprobs(batch, { temperature: layout.temperature })).buffer))).toBe(true);
  });

  test("a bad layout is refused naming the field and what is allowed", async () => {
    const a = actor();
    const cases: [unknown, RegExp][] = [
      [{ ...layout, seqLen: 0 }, /^generate: scoreAs\.seqLen must be an integer >= 1, got 0$/],
      [{ ...layout, padId: -1 }, /^generate: scoreAs\.padId must be an integer >= 0, got -1$/],
      [{ ...layout, temperature: 0 }, /^generate: scoreAs\.temperature must be a finite number > 0, got 0$/],
      [null, /^generate: scoreAs must be \{ seqLen, padId, temperature \}, got null$/],
    ];
    for (const [bad, message] of cases) {
      await expect(a.generate(prompts, options, bad as typeof layout)).rejects.toThrow(message);
    }
    await expect(a.generate(prompts, { ...options, maxNewTokens: undefined as unknown as number }, layout)).rejects.toThrow(/options\.maxNewTokens must be an integer >= 1/);
  });
});
