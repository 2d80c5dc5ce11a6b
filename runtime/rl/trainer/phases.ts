/**
 * One training step, as named phases: rollout → score → reference/values → advantages → update
 * → metrics. Each phase is a small function of its inputs (the actors it calls come typed
 * against their role classes), so each can be tested on its own; `fit` runs them in order, with
 * score and reference/values side by side (neither reads the other).
 */
import type { GenerateResult, PolicyStepStats, TokenBatch, ValueStepStats } from "../../../native/policy_model.ts";
import type { ActorRollout, BatchLayout } from "../../../roles/actor_rollout.ts";
import { buildBatch, type SequenceBatch } from "../../../roles/batch.ts";
import type { Critic } from "../../../roles/critic.ts";
import type { UpdatePlan } from "../../../roles/index.ts";
import type { RefPolicy } from "../../../roles/ref_policy.ts";
import type { Reward, RewardItem } from "../../../roles/reward.ts";
import type { Sample } from "../loggers/index.ts";
import type { ActorRef } from "../../core/supervisor/actor_ref.ts";
import { gae, grpo, reinforcePlusPlus, rloo } from "./advantages.ts";
import { localReward, responseText, type JobPrompt } from "./job_data.ts";
import type { JobPlan } from "./plan.ts";
import type { RolloutGroup } from "./rollout_group.ts";
import { deriveSeed } from "./seeds.ts";

/** The role actors of a job, typed against their classes; critic, ref and reward only when used. */
export interface JobActors {
  actor: ActorRef<ActorRollout>;
  critic?: ActorRef<Critic>;
  ref?: ActorRef<RefPolicy>;
  /** A LoRA policy scores the reference itself (its base, adapters off): no `ref` actor. */
  refFromActor?: boolean;
  reward?: ActorRef<Reward>;
  /** The rollout worker group (worker.rollout.ranks ≥ 1): it generates instead of `actor`. */
  rolloutGroup?: RolloutGroup;
}

export interface RolloutBatch {
  /** One prompt per row (each prompt repeated rollout_n times). */
  prompts: JobPrompt[];
  gen: GenerateResult;
  batch: SequenceBatch;
}

/** The token view every role consumes. */
export const tokenBatch = (b: SequenceBatch): TokenBatch => ({ tokens: b.tokens, mask: b.mask, batch: b.batch, seqLen: b.seqLen });

/** How a generation samples: temperature (0: greedy), then top-k (0: off) and top-p (1: off). */
interface Sampling {
  temperature: number;
  topK: number;
  topP: number;
}

/** Rollouts sample with worker.actor's temperature, top_k and top_p. */
export function rolloutSampling(plan: JobPlan): Sampling {
  const a = plan.config.worker.actor;
  return { temperature: a.temperature, topK: a.top_k, topP: a.top_p };
}

/** Validation samples with its own val_temperature, val_top_k and val_top_p (greedy by default). */
export function validationSampling(plan: JobPlan): Sampling {
  const a = plan.config.worker.actor;
  return { temperature: a.val_temperature, topK: a.val_top_k, topP: a.val_top_p };
}

/**
 * The temperature PPO's log-probs are taken at (old, reference and the loss's own): the policy's
 * logits divided by the rollout temperature, without top-k/top-p truncation, as verl does.
 */
export function logprobTemperature(plan: JobPlan): number {
  return plan.config.worker.actor.temperature;
}

/** Generation options shared by rollouts and validation: the job's response budget and stop token. */
function generateOptions(plan: JobPlan, sampling: Sampling, seed: number) {
  return { maxNewTokens: plan.maxNew, ...sampling, seed, eosToken: plan.data.tokenizer.eosId };
}

/**
 * Generation by the rollout group when the job has one, else by actor_rollout. The group's first
 * shard keeps the call's seed, so one rollout rank samples exactly what actor_rollout would.
 */
function generate(actors: JobActors, prompts: Int32Array[], options: ReturnType<typeof generateOptions>, scoreAs?: BatchLayout): Promise<GenerateResult> {
  if (!actors.rolloutGroup) return scoreAs ? actors.actor.call("generate", prompts, options, scoreAs) : actors.actor.call("generate", prompts, options);
  return actors.rolloutGroup.generate(prompts, options, (shard) => (shard === 0 ? options.seed : deriveSeed(options.seed, "shard", shard)));
}

/** rollout: `rollout_n` sampled responses per prompt, packed into one padded batch. */
export async function rollout(plan: JobPlan, actors: JobActors, step: number, batchPrompts: readonly JobPrompt[]): Promise<RolloutBatch> {
  const prompts = batchPrompts.flatMap((p) => Array<JobPrompt>(plan.groupSize).fill(p));
  const promptToks = prompts.map((p) => p.ids);
  const options = generateOptions(plan, rolloutSampling(plan), plan.seed(step, "generate"));
  const padId = plan.data.tokenizer.padId;
  // actor_rollout begins the old log-probs of this batch as soon as it has sampled it.
  const gen = await generate(actors, promptToks, options, { seqLen: plan.seqLen, padId, temperature: logprobTemperature(plan) });
  return { prompts, gen, batch: buildBatch(promptToks, gen.tokens, gen.lengths, plan.maxNew, plan.seqLen, padId) };
}

/** What the reward made of a batch of responses. */
export interface Scores {
  scores: Float32Array;
  /** 1 where the reward failed for that row (no score: the row is left out of the update). */
  failed: Uint8Array;
  /** "row i: reason" of each failure. */
  errors: string[];
  /** Each row's response text (up to its stop token). */
  responses: string[];
}

/** The response text of row r of a generation. */
function response(plan: JobPlan, gen: GenerateResult, r: number): { text: string; ended: boolean } {
  return responseText(plan.data.tokenizer, gen.tokens.subarray(r * plan.maxNew, r * plan.maxNew + gen.lengths[r]!));
}

/**
 * score: each row's reward (its response decoded up to the stop token, judged against its
 * prompt and answer) by the task or built-in reward here, or by the reward actor.
 */
export async function score(plan: JobPlan, actors: JobActors, prompts: readonly JobPrompt[], gen: GenerateResult): Promise<Scores> {
  const texts = prompts.map((_, r) => response(plan, gen, r));
  const responses = texts.map((t) => t.text);
  if (plan.data.reward.kind === "module") {
    if (!actors.reward) throw new TypeError("a reward module needs the reward actor");
    const items = prompts.map((p, r): RewardItem => ({
      prompt: p.text, response: responses[r]!, answer: p.answer,
      ...(p.dataSource === undefined ? {} : { dataSource: p.dataSource }), ...(p.extraInfo === undefined ? {} : { extraInfo: p.extraInfo }),
    }));
    const out = await actors.reward.callWith({ deadline: plan.config.reward.call_deadline_s }, "score", items);
    return { ...out, responses };
  }
  const scores = new Float32Array(prompts.length);
  const failed = new Uint8Array(prompts.length);
  const errors: string[] = [];
  for (let r = 0; r < prompts.length; r++) {
    try {
      scores[r] = localReward(plan.data.reward, prompts[r]!, texts[r]!)!;
    } catch (e) {
      failed[r] = 1;
      errors.push(`row ${r}: ${(e as Error).message}`);
    }
  }
  return { scores, failed, errors, responses };
}

/**
 * The reward failed on every row of a training step: there is nothing to learn from, and the
 * reward's own first message says why (a broken reward module, a judge that is down).
 */
export class RewardFailedError extends Error {
  override name = "RewardFailedError";
  constructor(readonly step: number, readonly rows: number, readonly firstError: string) {
    super(`the reward failed on all ${rows} rows of step ${step}; the first: ${firstError}`);
  }
}

/** One console line for a batch with reward failures (`what`: "step 3", "validation"), or undefined without any. */
export function rewardFailureLine(what: string, failures: number, rows: number, firstError: string | undefined): string | undefined {
  if (failures === 0) return undefined;
  return `${what}: the reward failed on ${failures} of ${rows} rows (left out, not scored 0); the first: ${firstError ?? "(no message)"}`;
}

/** Throws RewardFailedError when no row of a training step has a score. */
export function checkSomeScored(step: number, sc: Scores): void {
  if (sc.failed.length > 0 && sc.failed.every((f) => f === 1)) throw new RewardFailedError(step, sc.failed.length, sc.errors[0] ?? "(no message)");
}

/** Rows whose reward failed get no loss weight: they are left out of the update, not scored 0. */
export function dropFailedRows(batch: SequenceBatch, failed: Uint8Array): void {
  for (let r = 0; r < batch.batch; r++) if (failed[r]) batch.mask.fill(0, r * batch.seqLen, (r + 1) * batch.seqLen);
}

export interface ReferenceAndValues {
  oldLogprobs: Float32Array;
  refLogprobs?: Float32Array;
  values?: Float32Array;
  /** Wall seconds of each call (they run side by side): timing_s/old_log_prob, timing_s/ref, timing_s/values. */
  timing: Record<string, number>;
}

/**
 * `rv` as if the rows whose reward failed had been dropped before it was computed: every row's
 * log-probs and values depend on that row alone, and are 0 where the mask is 0.
 */
export function clearFailedRows(rv: ReferenceAndValues, batch: SequenceBatch, failed: Uint8Array): ReferenceAndValues {
  for (let r = 0; r < batch.batch; r++) {
    if (!failed[r]) continue;
    for (const a of [rv.oldLogprobs, rv.refLogprobs, rv.values]) a?.fill(0, r * batch.seqLen, (r + 1) * batch.seqLen);
  }
  return rv;
}

/** reference/values: the policy's own log-probs, the reference's, and the critic's values, at once. */
export async function referenceAndValues(actors: JobActors, batch: TokenBatch, temperature = 1): Promise<ReferenceAndValues> {
  const [[oldLogprobs, oldS], ref, critic] = await Promise.all([
    clocked(actors.actor.call("logprobs", batch, { temperature })),
    actors.ref ? clocked(actors.ref.call("logprobs", batch, { temperature }))
      : actors.refFromActor ? clocked(actors.actor.call("refLogprobs", batch, { temperature })) : undefined,
    actors.critic && clocked(actors.critic.call("values", batch)),
  ]);
  const timing: Record<string, number> = { "timing_s/old_log_prob": oldS };
  if (ref) timing["timing_s/ref"] = ref[1];
  if (critic) timing["timing_s/values"] = critic[1];
  return { oldLogprobs, timing, ...(ref ? { refLogprobs: ref[0] } : {}), ...(critic ? { values: critic[0] } : {}) };
}

export interface Advantages {
  advantages: Float32Array;
  /** Critic targets (GAE only). */
  returns?: Float32Array;
}

/**
 * The KL penalty folded into the reward (algorithm.use_kl_in_reward): per response token,
 * −kl_coef · (log π_old − log π_ref), the "kl" estimator of classic PPO for language models.
 */
export function klPenalty(plan: JobPlan, batch: SequenceBatch, rv: ReferenceAndValues): Float32Array | undefined {
  if (!plan.klInReward || !rv.refLogprobs) return undefined;
  const beta = plan.config.algorithm.kl_coef;
  const out = new Float32Array(batch.mask.length);
  for (let i = 0; i < out.length; i++) if (batch.mask[i] !== 0) out[i] = -beta * (rv.oldLogprobs[i]! - rv.refLogprobs[i]!);
  return out;
}

/**
 * advantages: GAE with the critic's values, or REINFORCE++'s whitened returns (both with the KL
 * penalty as token rewards when it is charged there), or GRPO's and RLOO's group baselines.
 */
export function advantages(plan: JobPlan, batch: SequenceBatch, scores: Float32Array, values: Float32Array | undefined, tokenRewards?: Float32Array): Advantages {
  const a = plan.config.algorithm;
  const layout = { rows: batch.batch, seqLen: batch.seqLen, mask: batch.mask };
  switch (a.adv_estimator) {
    case "gae":
      if (!values) throw new TypeError("GAE needs the critic's values");
      return gae(layout, scores, values, a.gamma, a.lam, tokenRewards);
    case "reinforce_plus_plus":
      return { advantages: reinforcePlusPlus(layout, scores, a.gamma, tokenRewards).advantages };
    case "rloo":
      return { advantages: rloo(layout, scores, plan.groupSize) };
    case "grpo":
      return { advantages: grpo(layout, scores, plan.groupSize, a.norm_adv_by_std_in_grpo) };
  }
}

export interface UpdateStats {
  actor: PolicyStepStats;
  critic?: ValueStepStats;
  /** Wall seconds of each role's update (they run side by side). */
  actorS: number;
  criticS?: number;
}

/** The epochs/mini-batch plan of one role's update, seeded by (step, role). */
export function updatePlan(plan: JobPlan, step: number, role: "actor" | "critic"): UpdatePlan {
  const w = plan.config.worker[role];
  const base = { epochs: w.ppo_epochs, miniBatchSize: w.ppo_mini_batch_size, seed: plan.seed(step, "update", role) };
  const actor = plan.config.worker.actor;
  return role === "actor" ? { ...base, lossAgg: { mode: actor.loss_agg_mode, maxResponse: actor.max_new_tokens } } : base;
}

/** Awaits `p`, with the wall seconds from now until it settled. */
async function clocked<T>(p: Promise<T>): Promise<[T, number]> {
  const t = performance.now();
  const out = await p;
  return [out, (performance.now() - t) / 1000];
}

/**
 * update: the policy's PPO update and the critic's value update, side by side. The policy's is
 * sent first: it is the longer chain (the next rollout queues behind it), and on a busy machine
 * the first write can wake its reader in the trainer's place for a while.
 */
export async function update(plan: JobPlan, actors: JobActors, step: number, batch: TokenBatch, rv: ReferenceAndValues, adv: Advantages): Promise<UpdateStats> {
  const w = plan.config.worker;
  const [actor, critic] = await Promise.all([
    clocked(actors.actor.call("update",
      { ...batch, advantages: adv.advantages, oldLogprobs: rv.oldLogprobs, ...(rv.refLogprobs && !plan.klInReward ? { refLogprobs: rv.refLogprobs } : {}) },
      {
        lr: w.actor.lr, weightDecay: w.actor.weight_decay, maxGradNorm: w.actor.grad_clip,
        clipRatio: w.actor.clip_ratio, klCoef: plan.useRef && !plan.klInReward ? plan.config.algorithm.kl_coef : 0, entropyCoef: w.actor.entropy_coeff,
        temperature: logprobTemperature(plan),
      },
      updatePlan(plan, step, "actor"))),
    actors.critic && clocked(actors.critic.call("update",
      { ...batch, returns: adv.returns!, oldValues: rv.values! },
      { lr: w.critic.lr, weightDecay: w.critic.weight_decay, maxGradNorm: w.critic.grad_clip, clipRange: w.critic.cliprange_value },
      updatePlan(plan, step, "critic"))),
  ]);
  return { actor: actor[0], actorS: actor[1], ...(critic ? { critic: critic[0], criticS: critic[1] } : {}) };
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

/** Mean over rows of each row's masked mean (verl's sequence-mean of a token quantity). */
function sequenceMean(x: Float32Array, mask: Float32Array, rows: number, seqLen: number): number {
  let s = 0;
  for (let r = 0; r < rows; r++) s += maskedMean(x.subarray(r * seqLen, (r + 1) * seqLen), mask.subarray(r * seqLen, (r + 1) * seqLen));
  return rows ? s / rows : 0;
}

/** metrics: the step's training metrics, named as verl names them. */
export function trainingMetrics(plan: JobPlan, r: RolloutBatch, sc: Scores, rv: ReferenceAndValues, adv: Advantages, stats: UpdateStats): Record<string, number> {
  const { mask, batch: rows, seqLen } = r.batch;
  const scored = sc.scores.filter((_, i) => !sc.failed[i]);
  const m: Record<string, number> = {
    "critic/score/mean": mean(scored),
    "critic/score/max": scored.length ? Math.max(...scored) : 0,
    "critic/score/min": scored.length ? Math.min(...scored) : 0,
    "reward/failures": sc.errors.length,
    "response_length/mean": mean(r.gen.lengths),
    "actor/pg_loss": stats.actor.pgLoss,
    "actor/pg_clipfrac": stats.actor.clipFrac,
    "actor/ppo_kl": stats.actor.approxKl,
    "actor/entropy": stats.actor.entropy,
    "actor/grad_norm": stats.actor.gradNorm,
    "actor/lr": plan.config.worker.actor.lr,
    "timing_s/update_actor": stats.actorS,
  };
  if (plan.useRef && rv.refLogprobs) {
    if (plan.klInReward) {
      // k1 estimate of KL(π_old ‖ π_ref) per sequence, averaged: what the reward was charged.
      const kl = new Float32Array(mask.length);
      for (let i = 0; i < kl.length; i++) kl[i] = rv.oldLogprobs[i]! - rv.refLogprobs[i]!;
      m["actor/reward_kl_penalty"] = sequenceMean(kl, mask, rows, seqLen);
      m["actor/reward_kl_penalty_coeff"] = plan.config.algorithm.kl_coef;
    } else {
      m["actor/kl_loss"] = stats.actor.klLoss;
      m["actor/kl_coef"] = plan.config.algorithm.kl_coef;
    }
  }
  if (stats.critic && rv.values) {
    m["critic/vf_loss"] = stats.critic.vfLoss;
    m["critic/vf_clipfrac"] = stats.critic.vfClipFrac;
    m["critic/grad_norm"] = stats.critic.gradNorm;
    m["critic/values/mean"] = maskedMean(rv.values, mask);
    m["critic/returns/mean"] = maskedMean(adv.returns!, mask);
    m["timing_s/update_critic"] = stats.criticS!;
  }
  m["critic/advantages/mean"] = maskedMean(adv.advantages, mask);
  return m;
}

export interface Validation {
  /** Mean reward over the held-out rows the reward could score. */
  score: number;
  /** Held-out rows the reward failed on (left out of `score`). */
  failures: number;
  /** Held-out rows scored or failed. */
  rows: number;
  /** The first failure's message, when there was one. */
  firstError?: string;
  /** The first few generations, for a look at what the policy writes. */
  samples: Sample[];
}

/**
 * validation: decoding on the held-out set with validation's sampling (greedy by default), in
 * chunks, each with its own seed; the mean reward and a few samples.
 */
export async function evaluate(plan: JobPlan, actors: JobActors, sampleCount = 4): Promise<Validation> {
  const scores: number[] = [];
  const samples: Sample[] = [];
  let failures = 0;
  let firstError: string | undefined;
  const chunk = 256;
  for (let i = 0; i < plan.data.val.length; i += chunk) {
    const prompts = plan.data.val.slice(i, i + chunk);
    const gen = await generate(actors, prompts.map((p) => p.ids), generateOptions(plan, validationSampling(plan), plan.seed("validate", i)));
    const sc = await score(plan, actors, prompts, gen);
    firstError ??= sc.errors[0];
    for (let r = 0; r < prompts.length && samples.length < sampleCount; r++) {
      samples.push({ prompt: prompts[r]!.text, response: sc.responses[r]!, reward: sc.failed[r] ? null : sc.scores[r]! });
    }
    for (let r = 0; r < prompts.length; r++) {
      if (sc.failed[r]) failures++;
      else scores.push(sc.scores[r]!);
    }
  }
  return { score: mean(scores), failures, rows: plan.data.val.length, samples, ...(firstError === undefined ? {} : { firstError }) };
}
