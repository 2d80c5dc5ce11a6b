/**
 * One training step, as named phases: rollout → score → reference/values → advantages → update
 * → metrics. Each phase is a small function of its inputs (the actors it calls come typed
 * against their role classes), so each can be tested on its own; `fit` runs them in order.
 */
import type { GenerateResult, PolicyStepStats, TokenBatch, ValueStepStats } from "../../../native/policy_model.ts";
import type { ActorRollout } from "../../../roles/actor_rollout.ts";
import type { Critic } from "../../../roles/critic.ts";
import type { UpdatePlan } from "../../../roles/index.ts";
import type { RefPolicy } from "../../../roles/ref_policy.ts";
import type { Sample } from "../loggers/index.ts";
import type { ActorRef } from "../../core/supervisor/actor_ref.ts";
import { reward } from "../tasks/tasks.ts";
import { decode, EOS, promptTokens } from "../tasks/tokenizer.ts";
import { gae, grpo } from "./advantages.ts";
import { buildBatch, type SequenceBatch } from "./batch.ts";
import type { JobPlan } from "./plan.ts";

/** The role actors of a job, typed against their classes; critic and ref only when used. */
export interface JobActors {
  actor: ActorRef<ActorRollout>;
  critic?: ActorRef<Critic>;
  ref?: ActorRef<RefPolicy>;
}

export interface Rollout {
  /** One prompt per row (each prompt repeated rollout_n times). */
  prompts: string[];
  gen: GenerateResult;
  batch: SequenceBatch;
}

/** The token view every role consumes. */
export const tokenBatch = (b: SequenceBatch): TokenBatch => ({ tokens: b.tokens, mask: b.mask, batch: b.batch, seqLen: b.seqLen });

/** rollout: `rollout_n` sampled responses per prompt, packed into one padded batch. */
export async function rollout(plan: JobPlan, actors: JobActors, step: number, batchPrompts: readonly string[]): Promise<Rollout> {
  const prompts = batchPrompts.flatMap((p) => Array<string>(plan.groupSize).fill(p));
  const promptToks = prompts.map((p) => Int32Array.from(promptTokens(p)));
  const gen = await actors.actor.call("generate", promptToks, {
    maxNewTokens: plan.maxNew, temperature: plan.config.worker.actor.temperature, seed: plan.seed(step, "generate"), eosToken: EOS,
  });
  return { prompts, gen, batch: buildBatch(promptToks, gen.tokens, gen.lengths, plan.maxNew, plan.seqLen) };
}

/** score: each row's task reward (its response decoded up to EOS, judged against its prompt). */
export function score(plan: JobPlan, prompts: readonly string[], gen: GenerateResult): Float32Array {
  const scores = new Float32Array(prompts.length);
  for (let r = 0; r < prompts.length; r++) {
    const row = gen.tokens.subarray(r * plan.maxNew, r * plan.maxNew + gen.lengths[r]!);
    const { text, ended } = decode(row);
    scores[r] = reward(plan.dataset.task, prompts[r]!, text, ended);
  }
  return scores;
}

export interface ReferenceAndValues {
  oldLogprobs: Float32Array;
  refLogprobs?: Float32Array;
  values?: Float32Array;
}

/** reference/values: the policy's own log-probs, the reference's, and the critic's values, at once. */
export async function referenceAndValues(actors: JobActors, batch: TokenBatch): Promise<ReferenceAndValues> {
  const [oldLogprobs, refLogprobs, values] = await Promise.all([
    actors.actor.call("logprobs", batch),
    actors.ref?.call("logprobs", batch),
    actors.critic?.call("values", batch),
  ]);
  return { oldLogprobs, ...(refLogprobs ? { refLogprobs } : {}), ...(values ? { values } : {}) };
}

export interface Advantages {
  advantages: Float32Array;
  /** Critic targets (GAE only). */
  returns?: Float32Array;
}

/** advantages: GAE with the critic's values, or GRPO's group-normalised scores. */
export function advantages(plan: JobPlan, batch: SequenceBatch, scores: Float32Array, values: Float32Array | undefined): Advantages {
  const a = plan.config.algorithm;
  const layout = { rows: batch.batch, seqLen: batch.seqLen, mask: batch.mask };
  if (plan.useCritic) {
    if (!values) throw new TypeError("GAE needs the critic's values");
    return gae(layout, scores, values, a.gamma, a.lam);
  }
  return { advantages: grpo(layout, scores, plan.groupSize, a.norm_adv_by_std_in_grpo) };
}

export interface UpdateStats {
  actor: PolicyStepStats;
  critic?: ValueStepStats;
}

/** The epochs/mini-batch plan of one role's update, seeded by (step, role). */
export function updatePlan(plan: JobPlan, step: number, role: "actor" | "critic"): UpdatePlan {
  const w = plan.config.worker[role];
  return { epochs: w.ppo_epochs, miniBatchSize: w.ppo_mini_batch_size, seed: plan.seed(step, "update", role) };
}

/** update: the critic's value update and the policy's PPO update, side by side. */
export async function update(plan: JobPlan, actors: JobActors, step: number, batch: TokenBatch, rv: ReferenceAndValues, adv: Advantages): Promise<UpdateStats> {
  const w = plan.config.worker;
  const [critic, actor] = await Promise.all([
    actors.critic?.call("update",
      { ...batch, returns: adv.returns!, oldValues: rv.values! },
      { lr: w.critic.lr, weightDecay: w.critic.weight_decay, maxGradNorm: w.critic.grad_clip, clipRange: w.critic.cliprange_value },
      updatePlan(plan, step, "critic")),
    actors.actor.call("update",
      { ...batch, advantages: adv.advantages, oldLogprobs: rv.oldLogprobs, ...(rv.refLogprobs ? { refLogprobs: rv.refLogprobs } : {}) },
      {
        lr: w.actor.lr, weightDecay: w.actor.weight_decay, maxGradNorm: w.actor.grad_clip,
        clipRatio: w.actor.clip_ratio, klCoef: plan.useRef ? plan.config.algorithm.kl_coef : 0, entropyCoef: w.actor.entropy_coeff,
      },
      updatePlan(plan, step, "actor")),
  ]);
  return { actor, ...(critic ? { critic } : {}) };
}

export function mean(xs: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < xs.length; i++) s += xs[i]!;
  return xs.length ? s / xs.length : 0;
}

export function maskedMean(x: Float32Array, mask: Float32Array): number {
  let s = 0;
  let n = 0;
  for (let i = 0; i < x.length; i++) if (mask[i] !== 0) {
    s += x[i]!;
    n++;
  }
  return n ? s / n : 0;
}

/** metrics: the step's training metrics, named as RL trainers name them. */
export function trainingMetrics(r: Rollout, scores: Float32Array, rv: ReferenceAndValues, adv: Advantages, stats: UpdateStats): Record<string, number> {
  const m: Record<string, number> = {
    "critic/score/mean": mean(scores),
    "critic/score/max": Math.max(...scores),
    "critic/score/min": Math.min(...scores),
    "response_length/mean": mean(r.gen.lengths),
    "actor/pg_loss": stats.actor.pgLoss,
    "actor/kl": stats.actor.klLoss,
    "actor/approx_kl": stats.actor.approxKl,
    "actor/entropy": stats.actor.entropy,
    "actor/clip_frac": stats.actor.clipFrac,
    "actor/grad_norm": stats.actor.gradNorm,
  };
  if (stats.critic && rv.values) {
    m["critic/vf_loss"] = stats.critic.vfLoss;
    m["critic/vf_clipfrac"] = stats.critic.vfClipFrac;
    m["critic/grad_norm"] = stats.critic.gradNorm;
    m["critic/values/mean"] = maskedMean(rv.values, r.batch.mask);
  }
  m["actor/advantages/mean"] = maskedMean(adv.advantages, r.batch.mask);
  return m;
}

export interface Validation {
  /** Mean reward over the held-out set. */
  score: number;
  /** The first few generations, for a look at what the policy writes. */
  samples: Sample[];
}

/** validation: greedy decoding on the held-out set, in chunks; the mean reward and a few samples. */
export async function evaluate(plan: JobPlan, actors: JobActors, sampleCount = 4): Promise<Validation> {
  const scores: number[] = [];
  const samples: Sample[] = [];
  const chunk = 256;
  for (let i = 0; i < plan.dataset.val.length; i += chunk) {
    const prompts = plan.dataset.val.slice(i, i + chunk);
    const gen = await actors.actor.call("generate", prompts.map((p) => Int32Array.from(promptTokens(p))), {
      maxNewTokens: plan.maxNew, temperature: 0, seed: 0, eosToken: EOS,
    });
    const rewards = score(plan, prompts, gen);
    for (let r = 0; r < prompts.length && samples.length < sampleCount; r++) {
      samples.push({ prompt: prompts[r]!, response: decode(gen.tokens.subarray(r * plan.maxNew, r * plan.maxNew + gen.lengths[r]!)).text, reward: rewards[r]! });
    }
    scores.push(...rewards);
  }
  return { score: mean(scores), samples };
}
