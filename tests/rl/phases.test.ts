/**
 * The trainer's pure math and its phases, one by one: GAE, GRPO, whitening, batch building,
 * mini-batching and seed derivation against hand-worked numbers; the phases (rollout, score,
 * reference/values, advantages, update, metrics, validation) with the shipped role classes run
 * in-process on the null backend — no processes, no addon.
 */
import { describe, expect, test } from "bun:test";
import { resolveConfig } from "../../config/index.ts";
import { ActorRollout } from "../../roles/actor_rollout.ts";
import { Critic } from "../../roles/critic.ts";
import { meanStats, miniBatches } from "../../roles/minibatch.ts";
import { RefPolicy } from "../../roles/ref_policy.ts";
import type { ActorRef } from "../../runtime/core/supervisor/actor_ref.ts";
import type { RoleContext } from "../../runtime/core/host/role.ts";
import { taskData } from "../../runtime/rl/trainer/job_data.ts";
import { gae, grpo, reinforcePlusPlus, rloo, whiten } from "../../runtime/rl/trainer/advantages.ts";
import { aggregation, type LossAggMode } from "../../roles/loss_agg.ts";
import { buildBatch } from "../../roles/batch.ts";
import { advantages, evaluate, klPenalty, logprobTemperature, referenceAndValues, rollout, score, tokenBatch, trainingMetrics, update, type JobActors } from "../../runtime/rl/trainer/phases.ts";
import { JobPlan } from "../../runtime/rl/trainer/plan.ts";
import { deriveSeed } from "../../runtime/rl/trainer/seeds.ts";

const close = (a: ArrayLike<number>, b: number[]) => b.forEach((v, i) => expect(a[i]!).toBeCloseTo(v, 5));

describe("advantage math", () => {
  // One row, seqLen 4: a prompt token, then three response tokens.
  const layout = { rows: 1, seqLen: 4, mask: Float32Array.of(0, 1, 1, 1) };

  test("GAE: δ_t = r_t + γV_{t+1} − V_t, A_t = Σ(γλ)^k δ_{t+k}, R = A + V, then whitened", () => {
    const values = Float32Array.of(9, 0.5, 0.25, 0.125);
    const { advantages: a, returns } = gae(layout, [1], values, 1, 0.5);
    // δ3 = 1 − 0.125 = 0.875; δ2 = 0.125 − 0.25 = −0.125; δ1 = 0.25 − 0.5 = −0.25
    // A3 = 0.875; A2 = −0.125 + 0.5·0.875 = 0.3125; A1 = −0.25 + 0.5·0.3125 = −0.09375
    close(returns, [0, 0.40625, 0.5625, 1]);
    const raw = Float32Array.of(0, -0.09375, 0.3125, 0.875);
    close(a, [...whiten(raw, layout.mask)]);
    expect(a[0]).toBe(0);
  });

  test("GAE with γ < 1: γ discounts both the next value in δ_t and the λ-trace", () => {
    // γ = 1 (above, and in the shipped config) cannot tell γ·λ from λ alone; γ = 0.9 can.
    const values = Float32Array.of(9, 0.5, 0.25, 0.125);
    const { advantages: a, returns } = gae(layout, [1], values, 0.9, 0.95);
    // δ3 = 1 − 0.125 = 0.875; δ2 = 0.9·0.125 − 0.25 = −0.1375; δ1 = 0.9·0.25 − 0.5 = −0.275
    // γλ = 0.855: A3 = 0.875; A2 = −0.1375 + 0.855·0.875 = 0.610625;
    // A1 = −0.275 + 0.855·0.610625 = 0.247084375; R = A + V
    const raw = [0, 0.247084375, 0.610625, 0.875];
    close(returns, [0, 0.747084375, 0.860625, 1]);
    close(a, [...whiten(Float32Array.from(raw), layout.mask)]);
  });

  test("whitening: zero mean, unit (sample) variance over masked entries only", () => {
    const w = whiten(Float32Array.of(100, 1, 2, 3), layout.mask);
    expect(w[0]).toBe(0);
    close(w, [0, -1, 0, 1]);
    expect(whiten(Float32Array.of(5, 7), Float32Array.of(0, 1))).toEqual(Float32Array.of(5, 7)); // < 2 entries: unchanged
  });

  test("GRPO: scores normalised within each group, given to every response token", () => {
    const two = { rows: 4, seqLen: 2, mask: Float32Array.of(0, 1, 0, 1, 0, 1, 0, 1) };
    const a = grpo(two, [1, 0, 0.5, 0.5], 2);
    // group 1: mean 0.5, std √0.5 → ±0.7071; group 2: identical scores → 0
    close(a, [0, Math.SQRT1_2, 0, -Math.SQRT1_2, 0, 0, 0, 0]);
    close(grpo(two, [1, 0, 0.5, 0.5], 2, false), [0, 0.5, 0, -0.5, 0, 0, 0, 0]);
    expect(() => grpo(two, [1, 0, 1, 0], 3)).toThrow("4 rows do not split into groups of 3");
  });

  test("RLOO: each response's score minus the mean of the others' in its group, on every response token", () => {
    const three = { rows: 3, seqLen: 3, mask: Float32Array.of(0, 1, 1, 0, 1, 0, 0, 1, 1) };
    // scores 1, 0, 0.5: 1 − (0 + 0.5)/2 = 0.75; 0 − (1 + 0.5)/2 = −0.75; 0.5 − (1 + 0)/2 = 0
    close(rloo(three, [1, 0, 0.5], 3), [0, 0.75, 0.75, 0, -0.75, 0, 0, 0, 0]);
    // Two groups of two: s_i − s_j.
    const two = { rows: 4, seqLen: 2, mask: Float32Array.of(0, 1, 0, 1, 0, 1, 0, 1) };
    close(rloo(two, [1, 0, 0.25, 0.75], 2), [0, 1, 0, -1, 0, -0.5, 0, 0.5]);
    expect(() => rloo(two, [1, 0, 1, 0], 1)).toThrow("needs groups of at least 2 responses");
  });

  test("REINFORCE++: discounted token returns G_t = r_t + γG_{t+1} (γ = 0.9), whitened over the batch", () => {
    // Row 0: three response tokens, score 1 on the last; row 1: two, score −1, and a token reward of 0.5 on its first.
    const l = { rows: 2, seqLen: 4, mask: Float32Array.of(0, 1, 1, 1, 0, 0, 1, 1) };
    const tokenRewards = Float32Array.of(0, 0, 0, 0, 0, 0, 0.5, 0);
    const { advantages: a, returns } = reinforcePlusPlus(l, [1, -1], 0.9, tokenRewards);
    // Row 0: G3 = 1, G2 = 0.9, G1 = 0.81. Row 1: G3 = −1, G2 = 0.5 + 0.9·(−1) = −0.4.
    close(returns, [0, 0.81, 0.9, 1, 0, 0, -0.4, -1]);
    // Whitened over the five response tokens: mean 0.262, sample std 0.8224...
    const g = [0.81, 0.9, 1, -0.4, -1];
    const m = g.reduce((x, y) => x + y) / 5;
    const sd = Math.sqrt(g.reduce((x, y) => x + (y - m) ** 2, 0) / 4 + 1e-8);
    close(a, [0, (0.81 - m) / sd, (0.9 - m) / sd, (1 - m) / sd, 0, 0, (-0.4 - m) / sd, (-1 - m) / sd]);
  });
});

describe("loss aggregation (verl's loss_agg_mode) as weights and a denominator", () => {
  // Two rows of seqLen 4: row 0 has 3 response tokens, row 1 has 1; a third row has none.
  const mask = Float32Array.of(0, 1, 1, 1, 0, 0, 0, 1, 0, 0, 0, 0);
  const loss = Float32Array.of(0, 2, 4, 6, 0, 0, 0, 10, 0, 0, 0, 0);
  /** What the native loss computes: sum(w · l) / lossNorm, or / sum(w) when lossNorm is 0. */
  const nativeLoss = (mode: LossAggMode) => {
    const { mask: w, lossNorm } = aggregation(mask, 3, 4, { mode, maxResponse: 8 });
    let num = 0, den = 0;
    for (let i = 0; i < w.length; i++) {
      num += w[i]! * loss[i]!;
      den += w[i]!;
    }
    return num / (lossNorm > 0 ? lossNorm : den);
  };

  test("each mode gives verl's formula on a hand-worked batch", () => {
    expect(nativeLoss("token-mean")).toBeCloseTo((2 + 4 + 6 + 10) / 4, 6); // 5.5
    expect(nativeLoss("seq-mean-token-sum")).toBeCloseTo((12 + 10) / 2, 6); // 11: rows with a response token
    expect(nativeLoss("seq-mean-token-mean")).toBeCloseTo((12 / 3 + 10 / 1) / 2, 6); // 7
    expect(nativeLoss("seq-mean-token-sum-norm")).toBeCloseTo(22 / 8, 6); // Dr. GRPO: / the response budget
  });
});

describe("batches and seeds", () => {
  test("buildBatch pads after each sequence and masks exactly the response tokens", () => {
    const b = buildBatch([[1, 2], [3]], Int32Array.of(7, 8, 9, 4, 0, 0), Int32Array.of(3, 1), 3, 5);
    expect([...b.tokens.subarray(0, 5)]).toEqual([1, 2, 7, 8, 9]);
    expect([...b.mask.subarray(0, 5)]).toEqual([0, 0, 1, 1, 1]);
    expect([...b.mask.subarray(5)]).toEqual([0, 1, 0, 0, 0]);
    expect(() => buildBatch([[1, 2, 3]], Int32Array.of(1, 2, 3), Int32Array.of(3), 3, 5)).toThrow("exceed seqLen 5");
  });

  test("mini-batches cover every row once per epoch, in a seeded order", () => {
    const full = { batch: 6, seqLen: 1, x: Float32Array.of(0, 1, 2, 3, 4, 5) };
    const plan = { epochs: 2, miniBatchSize: 2, seed: 3 };
    const mbs = [...miniBatches(full, plan)];
    expect(mbs).toHaveLength(6);
    for (const epoch of [0, 1]) expect(mbs.slice(epoch * 3, epoch * 3 + 3).flatMap((m) => [...m.x]).sort()).toEqual([0, 1, 2, 3, 4, 5]);
    expect([...miniBatches(full, plan)]).toEqual(mbs);
    expect([...miniBatches(full, { ...plan, seed: 4 })]).not.toEqual(mbs);
  });

  test("each PPO epoch reshuffles: two epochs with one seed visit the rows in different orders, every run", () => {
    // Row r holds the value r, so a mini-batch's values are the row indices it drew.
    const full = { batch: 8, seqLen: 1, x: Float32Array.from({ length: 8 }, (_, r) => r) };
    const plan = { epochs: 2, miniBatchSize: 2, seed: 17 };
    const epochOrders = () => {
      const rows = [...miniBatches(full, plan)].flatMap((m) => [...m.x]);
      return [rows.slice(0, 8), rows.slice(8)];
    };
    const [first, second] = epochOrders();
    expect([...first!].sort()).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
    expect([...second!].sort()).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
    // The same order twice would fit the same mini-batches in the same sequence each epoch.
    expect(second).not.toEqual(first);
    // A replayed update must take exactly the same steps: the orders come from the seed alone.
    expect(epochOrders()).toEqual([first!, second!]);
  });

  test("an update's statistics are the means over its mini-batch steps", () => {
    const steps = [{ loss: 1, gradNorm: 4 }, { loss: 2, gradNorm: 2 }, { loss: 6, gradNorm: 0 }];
    expect(meanStats(steps)).toEqual({ loss: 3, gradNorm: 2 });
  });

  test("seeds derive from (job seed, tags): stable, and different for any different tag", () => {
    expect(deriveSeed(1, 5, "generate")).toBe(deriveSeed(1, 5, "generate"));
    const seen = new Set([deriveSeed(1, 5, "generate"), deriveSeed(2, 5, "generate"), deriveSeed(1, 6, "generate"), deriveSeed(1, 5, "update"), deriveSeed(1, "5", "generate")]);
    expect(seen.size).toBe(5);
    for (const s of seen) expect(Number.isSafeInteger(s) && s >= 0).toBe(true);
  });
});

describe("phases on the null backend, in-process", () => {
  const config = resolveConfig({
    file: null, env: {},
    args: ["data.train_size=32", "data.val_size=8", "data.train_batch_size=4", "worker.actor.rollout_n=2",
      "worker.actor.ppo_mini_batch_size=4", "worker.critic.ppo_mini_batch_size=4", "algorithm.kl_coef=0.01"],
  }).config;
  const plan = new JobPlan(config, taskData(config));
  const ctx: RoleContext = { actor: "a", role: "r", rank: 0, incarnation: 1, log: () => {} };
  /** The role object itself behind the ActorRef interface: what the actor host would call. */
  const local = <R extends object>(role: R) => ({ id: "local", call: async (m: keyof R, ...args: unknown[]) => (role[m] as (...a: unknown[]) => unknown)(...args) }) as unknown as ActorRef<R>;
  const opts = (r: "actor" | "critic" | "ref") => ({ ...plan.roleOptions(r), device: "null" as const });
  const actors: JobActors = {
    actor: local(new ActorRollout(opts("actor"), ctx)),
    critic: local(new Critic(opts("critic"), ctx)),
    ref: local(new RefPolicy(opts("ref"), ctx)),
  };

  test("rollout → score → reference/values → advantages → update → metrics", async () => {
    const prompts = plan.data.train.slice(0, 4);
    const r = await rollout(plan, actors, 1, prompts);
    expect(r.prompts).toEqual(prompts.flatMap((p) => [p, p])); // rollout_n = 2
    expect(r.batch.batch).toBe(8);
    expect(r.batch.seqLen).toBe(plan.seqLen);
    const sc = await score(plan, actors, r.prompts, r.gen);
    const scores = sc.scores;
    expect(scores).toHaveLength(8);
    for (const s of scores) expect(s >= 0 && s <= 1).toBe(true);
    expect(sc.errors).toEqual([]);
    const rv = await referenceAndValues(actors, tokenBatch(r.batch));
    expect(rv.oldLogprobs).toHaveLength(8 * plan.seqLen);
    expect(rv.refLogprobs).toHaveLength(8 * plan.seqLen);
    expect(rv.values).toHaveLength(8 * plan.seqLen);
    const adv = advantages(plan, r.batch, scores, rv.values);
    expect(adv.returns).toHaveLength(8 * plan.seqLen);
    const stats = await update(plan, actors, 1, tokenBatch(r.batch), rv, adv);
    expect(stats.critic).toBeDefined();
    const m = trainingMetrics(plan, r, sc, rv, adv, stats);
    expect(Object.keys(m).sort()).toEqual([
      "actor/entropy", "actor/grad_norm", "actor/kl_coef", "actor/kl_loss", "actor/lr", "actor/pg_clipfrac", "actor/pg_loss", "actor/ppo_kl",
      "critic/advantages/mean", "critic/grad_norm", "critic/returns/mean", "critic/score/max", "critic/score/mean", "critic/score/min",
      "critic/values/mean", "critic/vf_clipfrac", "critic/vf_loss", "response_length/mean", "reward/failures", "timing_s/update_actor", "timing_s/update_critic",
    ]);
    expect(Object.keys(rv.timing).sort()).toEqual(["timing_s/old_log_prob", "timing_s/ref", "timing_s/values"]);
    expect(m["critic/score/mean"]).toBeCloseTo(scores.reduce((a, b) => a + b, 0) / 8, 6);
  });

  test("KL in the reward: −kl_coef·(log π_old − log π_ref) on each response token, none in the loss", async () => {
    const inReward = new JobPlan({ ...config, algorithm: { ...config.algorithm, use_kl_in_reward: true } }, plan.data);
    const r = await rollout(inReward, actors, 3, inReward.data.train.slice(0, 4));
    const rv = await referenceAndValues(actors, tokenBatch(r.batch));
    // Pin the reference half a nat below the policy on every token to see the charge.
    const shifted = { ...rv, refLogprobs: rv.oldLogprobs.map((x, i) => (r.batch.mask[i] ? x - 0.5 : x)) };
    const pen = klPenalty(inReward, r.batch, shifted)!;
    for (let i = 0; i < pen.length; i++) expect(pen[i]).toBeCloseTo(r.batch.mask[i] ? -0.01 * 0.5 : 0, 6);
    expect(klPenalty(plan, r.batch, shifted)).toBeUndefined(); // KL in the loss: no token rewards
    const sc = await score(inReward, actors, r.prompts, r.gen);
    const adv = advantages(inReward, r.batch, sc.scores, shifted.values, pen);
    expect(adv.returns).not.toEqual(advantages(inReward, r.batch, sc.scores, shifted.values).returns);
    const m = trainingMetrics(inReward, r, sc, shifted, adv, await update(inReward, actors, 3, tokenBatch(r.batch), shifted, adv));
    expect(m["actor/reward_kl_penalty"]).toBeCloseTo(0.5, 6);
    expect(m["actor/reward_kl_penalty_coeff"]).toBe(0.01);
    expect(m["actor/kl_loss"]).toBeUndefined();
  });

  test("KL in the reward needs an estimator that reads token rewards (gae, reinforce_plus_plus)", () => {
    for (const est of ["grpo", "rloo"] as const) {
      const cfg = { ...config, algorithm: { ...config.algorithm, adv_estimator: est, use_kl_in_reward: true }, worker: { ...config.worker, actor: { ...config.worker.actor, rollout_n: 2 } } };
      expect(() => new JobPlan(cfg, plan.data)).toThrow(`algorithm.use_kl_in_reward=true charges the KL in each response token's reward, which only gae and reinforce_plus_plus use (${est} scores`);
    }
    const rpp = { ...config, algorithm: { ...config.algorithm, adv_estimator: "reinforce_plus_plus" as const, use_kl_in_reward: true } };
    expect(new JobPlan(rpp, plan.data).useCritic).toBe(false);
  });

  test("RLOO and GRPO need rollout_n ≥ 2", () => {
    for (const est of ["grpo", "rloo"] as const) {
      const cfg = { ...config, algorithm: { ...config.algorithm, adv_estimator: est } };
      expect(new JobPlan(cfg, plan.data).groupSize).toBe(2);
      const single = { ...cfg, worker: { ...config.worker, actor: { ...config.worker.actor, rollout_n: 1 } } };
      expect(() => new JobPlan(single, plan.data)).toThrow(`algorithm.adv_estimator=${est} needs worker.actor.rollout_n ≥ 2`);
    }
  });

  test("the same step twice gives the same numbers (every seed comes from the step)", async () => {
    const prompts = plan.data.train.slice(0, 4);
    const [a, b] = [await rollout(plan, actors, 7, prompts), await rollout(plan, actors, 7, prompts)];
    expect(a.gen.tokens).toEqual(b.gen.tokens);
    expect((await rollout(plan, actors, 8, prompts)).gen.tokens).not.toEqual(a.gen.tokens);
  });

  test("GRPO needs no critic; GAE without values is refused", async () => {
    const r = await rollout(plan, actors, 2, plan.data.train.slice(0, 4));
    expect(() => advantages(plan, r.batch, new Float32Array(r.batch.batch), undefined)).toThrow("GAE needs the critic's values");
  });

  test("validation scores the whole held-out set and keeps a few samples", async () => {
    const v = await evaluate(plan, actors, 3);
    expect(v.score >= 0 && v.score <= 1).toBe(true);
    expect(v.samples.map((s) => s.prompt)).toEqual(plan.data.val.slice(0, 3).map((p) => p.text));
    expect(v.failures).toBe(0);
  });
});

describe("sampling settings reach the calls that use them", () => {
  const configWith = (...args: string[]) => resolveConfig({
    file: null, env: {},
    args: ["data.train_size=32", "data.val_size=8", "data.train_batch_size=4", "worker.actor.rollout_n=2",
      "worker.actor.ppo_mini_batch_size=4", "worker.critic.ppo_mini_batch_size=4", "algorithm.kl_coef=0.01", ...args],
  }).config;
  const ctx: RoleContext = { actor: "a", role: "r", rank: 0, incarnation: 1, log: () => {} };
  /** The role behind the ActorRef interface, recording each call's method and arguments. */
  function recorded<R extends object>(role: R, calls: [string, unknown[]][]) {
    return { id: "local", call: async (m: keyof R, ...args: unknown[]) => {
      calls.push([String(m), args]);
      return (role[m] as (...a: unknown[]) => unknown).apply(role, args);
    } } as unknown as ActorRef<R>;
  }
  function setup(config: ReturnType<typeof configWith>) {
    const plan = new JobPlan(config, taskData(config));
    const calls: [string, unknown[]][] = [];
    const opts = (r: "actor" | "critic" | "ref") => ({ ...plan.roleOptions(r), device: "null" as const });
    const actors: JobActors = {
      actor: recorded(new ActorRollout(opts("actor"), ctx), calls),
      critic: recorded(new Critic(opts("critic"), ctx), calls),
      ref: recorded(new RefPolicy(opts("ref"), ctx), calls),
    };
    const args = (method: string) => calls.filter(([m]) => m === method).map(([, a]) => a);
    return { plan, actors, args };
  }

  test("rollouts sample with temperature, top_k and top_p; PPO's log-probs and loss are at the rollout temperature", async () => {
    const { plan, actors, args } = setup(configWith("worker.actor.temperature=1.5", "worker.actor.top_k=7", "worker.actor.top_p=0.8"));
    const r = await rollout(plan, actors, 1, plan.data.train.slice(0, 4));
    expect(args("generate")[0]![1]).toMatchObject({ temperature: 1.5, topK: 7, topP: 0.8 });
    // The old log-probs actor_rollout begins at generate: the trainer's batch, at the same temperature.
    expect(args("generate")[0]![2]).toEqual({ seqLen: plan.seqLen, padId: plan.data.tokenizer.padId, temperature: 1.5 });
    const rv = await referenceAndValues(actors, tokenBatch(r.batch), logprobTemperature(plan));
    // The old and the reference log-probs: logits / 1.5, untruncated (no topK/topP passed).
    expect(args("logprobs").map((a) => a[1])).toEqual([{ temperature: 1.5 }, { temperature: 1.5 }]);
    const sc = await score(plan, actors, r.prompts, r.gen);
    await update(plan, actors, 1, tokenBatch(r.batch), rv, advantages(plan, r.batch, sc.scores, rv.values));
    const actorUpdate = args("update").find((a) => (a[0] as { oldLogprobs?: unknown }).oldLogprobs !== undefined)!;
    expect(actorUpdate[1]).toMatchObject({ temperature: 1.5 });
  });

  test("validation samples with its own val_temperature, val_top_k and val_top_p; greedy by default", async () => {
    const own = setup(configWith("worker.actor.val_temperature=0.5", "worker.actor.val_top_k=3", "worker.actor.val_top_p=0.9", "worker.actor.top_k=7"));
    await evaluate(own.plan, own.actors, 1);
    expect(own.args("generate")[0]![1]).toMatchObject({ temperature: 0.5, topK: 3, topP: 0.9 });
    const byDefault = setup(configWith("worker.actor.temperature=1.5", "worker.actor.top_k=7"));
    await evaluate(byDefault.plan, byDefault.actors, 1);
    expect(byDefault.args("generate")[0]![1]).toMatchObject({ temperature: 0, topK: 0, topP: 1 });
  });

  test("bad sampling settings are refused naming the key and what is allowed", () => {
    expect(() => configWith("worker.actor.top_p=0")).toThrow(/worker\.actor\.top_p/);
    expect(() => configWith("worker.actor.top_p=1.5")).toThrow(/worker\.actor\.top_p/);
    expect(() => configWith("worker.actor.top_k=-1")).toThrow(/worker\.actor\.top_k/);
    expect(() => configWith("worker.actor.val_temperature=-0.5")).toThrow(/worker\.actor\.val_temperature/);
  });
});

describe("GAE with token rewards", () => {
  test("a per-token reward enters δ_t at its own position", () => {
    const layout = { rows: 1, seqLen: 3, mask: Float32Array.of(0, 1, 1) };
    const values = Float32Array.of(0, 0, 0);
    // γ = λ = 1, V = 0: R_t = Σ_{k≥t} r_k; the score lands on the last token.
    const { returns } = gae(layout, [1], values, 1, 1, Float32Array.of(0, -0.25, -0.5));
    close(returns, [0, 0.25, 0.5]);
  });
});
