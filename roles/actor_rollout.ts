/**
 * The `actor_rollout` role: owns the policy's weights and optimizer. Samples rollouts, scores
 * its own old log-probs, and takes PPO updates. Every stochastic call gets its seed from the
 * trainer, so the role has no hidden random state and replays are exact.
 */
import type { GenerateOptions, GenerateResult, PolicyBatch, PolicyHyper, PolicyStepStats, TokenBatch, LogprobOptions } from "../native/policy_model.ts";
import type { RoleContext } from "../runtime/core/host/role.ts";
import { buildBatch } from "./batch.ts";
import { aggregation } from "./loss_agg.ts";
import { TrainedModelRole } from "./model_role.ts";
import type { ModelRoleOptions, UpdatePlan } from "./model_options.ts";
import { publishWeights, type WeightSegment } from "./weights.ts";

export class ActorRollout extends TrainedModelRole {
  static readOnly = ["generate", "logprobs", "refLogprobs", "info", "exportHf", "publishWeights", "params", "computeLog"];

  constructor(options: ModelRoleOptions, _ctx: RoleContext) {
    super(options, false);
  }

  /** The log-probs the next `logprobs` call is likely to ask for, begun when the rollout was sampled. */
  #ahead: { batch: TokenBatch; temperature: number; logprobs: Promise<Float32Array> } | undefined;

  /**
   * Samples responses. With `scoreAs`, the log-probs of the batch the trainer will build from them
   * (buildBatch: prompt, response, `scoreAs.padId` up to `scoreAs.seqLen`, the response masked)
   * start right after, at `scoreAs.temperature`, while the result travels: the trainer's
   * `logprobs` call for that batch then finds them computed, or running, instead of waiting a
   * round trip to start them.
   */
  async generate(prompts: Int32Array[], options: GenerateOptions, scoreAs?: BatchLayout): Promise<GenerateResult> {
    if (scoreAs !== undefined) checkLayout(scoreAs, options);
    const model = await this.ready();
    this.#ahead = undefined;
    const gen = await model.generate(prompts, options);
    if (scoreAs) {
      const batch = buildBatch(prompts, gen.tokens, gen.lengths, options.maxNewTokens!, scoreAs.seqLen, scoreAs.padId);
      const logprobs = model.logprobs(batch, { temperature: scoreAs.temperature });
      logprobs.catch(() => {}); // a batch nobody asks for again is dropped unread
      this.#ahead = { batch, temperature: scoreAs.temperature, logprobs };
    }
    return gen;
  }

  /**
   * Log-probs of softmax(logits / options.temperature) (default 1), without truncation. The ones
   * begun by `generate` are returned when the batch and temperature are the same: the weights
   * cannot have changed since, as every call that changes them drops them first.
   */
  async logprobs(batch: TokenBatch, options: LogprobOptions = {}): Promise<Float32Array> {
    const ahead = this.#ahead;
    this.#ahead = undefined;
    if (ahead && options.adapters === undefined && sameBatch(ahead.batch, batch) && ahead.temperature === (options.temperature ?? 1)) return ahead.logprobs;
    return (await this.ready()).logprobs(batch, options);
  }

  override async loadState(state: Parameters<TrainedModelRole["loadState"]>[0]): Promise<void> {
    this.#ahead = undefined;
    return super.loadState(state);
  }

  /**
   * The reference policy's log-probs, when the policy trains LoRA adapters: its frozen base with
   * the adapters off (no second copy of the weights, no ref_policy actor).
   */
  async refLogprobs(batch: TokenBatch, options: LogprobOptions = {}): Promise<Float32Array> {
    const model = await this.ready();
    if (!model.config.lora) throw new TypeError("refLogprobs: this policy trains every weight (no LoRA adapters), so its base is not the reference; the ref_policy actor scores it");
    return model.logprobs(batch, { ...options, adapters: false });
  }

  /** Writes the current weights into the shared segment at `path` as `version`, for the rollout ranks to map. */
  async publishWeights(path: string, version: number): Promise<WeightSegment> {
    return publishWeights(await this.ready(), path, version);
  }

  /** The current weights (a LoRA policy's adapters alone), for rollout ranks that cannot map a segment of this host. */
  async params(): Promise<Float32Array> {
    const model = await this.ready();
    const out = new Float32Array(model.numTrained);
    await model.copyParamsTo(out);
    return out;
  }

  /** PPO epochs over shuffled mini-batches, the loss aggregated as the plan says; the mean of each statistic. */
  async update(batch: PolicyBatch, hyper: Partial<PolicyHyper>, plan: UpdatePlan): Promise<PolicyStepStats> {
    this.#ahead = undefined;
    const model = await this.ready();
    const dropout = (model.config.lora?.dropout ?? 0) > 0;
    return this.updateOver(batch, plan, (mb, index) => {
      // LoRA dropout's mask: a pure function of the update's seed and the mini-batch, so a replay is exact.
      const h = dropout ? { ...hyper, dropoutSeed: (plan.seed % 2 ** 32) * 2 ** 20 + (index % 2 ** 20) } : hyper;
      if (!plan.lossAgg) return model.policyStep(mb, h);
      const { mask, lossNorm } = aggregation(mb.mask, mb.batch, mb.seqLen, plan.lossAgg);
      return model.policyStep({ ...mb, mask }, { ...h, lossNorm });
    });
  }
}

/** How `generate` lays out the batch whose log-probs it begins: as the trainer builds its batches. */
export interface BatchLayout {
  seqLen: number;
  padId: number;
  temperature: number;
}

function checkLayout(layout: BatchLayout, options: GenerateOptions): void {
  const whole = (v: unknown, min: number) => typeof v === "number" && Number.isInteger(v) && v >= min;
  const fail = (what: string, v: unknown, allowed: string): never => {
    throw new TypeError(`generate: ${what} must be ${allowed}, got ${JSON.stringify(v) ?? String(v)}`);
  };
  if (typeof layout !== "object" || layout === null) fail("scoreAs", layout, "{ seqLen, padId, temperature }");
  if (!whole(layout.seqLen, 1)) fail("scoreAs.seqLen", layout.seqLen, "an integer >= 1");
  if (!whole(layout.padId, 0)) fail("scoreAs.padId", layout.padId, "an integer >= 0");
  if (typeof layout.temperature !== "number" || !(layout.temperature > 0) || !Number.isFinite(layout.temperature)) fail("scoreAs.temperature", layout.temperature, "a finite number > 0");
  if (!whole(options?.maxNewTokens, 1)) fail("options.maxNewTokens", options?.maxNewTokens, "an integer >= 1 with scoreAs (the batch's response stride)");
}

function sameBatch(a: TokenBatch, b: TokenBatch): boolean {
  if (a.batch !== b.batch || a.seqLen !== b.seqLen || a.tokens.length !== b.tokens?.length || a.mask.length !== b.mask?.length) return false;
  for (let i = 0; i < a.tokens.length; i++) if (a.tokens[i] !== b.tokens[i] || a.mask[i] !== b.mask[i]) return false;
  return true;
}
