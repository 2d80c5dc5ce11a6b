/**
 * The `actor_rollout` role: owns the policy's weights and optimizer. Samples rollouts, scores
 * its own old log-probs, and takes PPO updates. Every stochastic call gets its seed from the
 * trainer, so the role has no hidden random state and replays are exact.
 */
import type { GenerateOptions, GenerateResult, PolicyBatch, PolicyHyper, PolicyStepStats, TokenBatch, LogprobOptions } from "../native/policy_model.ts";
import type { RoleContext } from "../runtime/core/host/role.ts";
import { aggregation } from "./loss_agg.ts";
import { TrainedModelRole } from "./model_role.ts";
import type { ModelRoleOptions, UpdatePlan } from "./model_options.ts";
import { publishWeights, type WeightSegment } from "./weights.ts";

export class ActorRollout extends TrainedModelRole {
  static readOnly = ["generate", "logprobs", "refLogprobs", "info", "exportHf", "publishWeights", "params", "computeLog"];

  constructor(options: ModelRoleOptions, _ctx: RoleContext) {
    super(options, false);
  }

  async generate(prompts: Int32Array[], options: GenerateOptions): Promise<GenerateResult> {
    return (await this.ready()).generate(prompts, options);
  }

  /** Log-probs of softmax(logits / options.temperature) (default 1), without truncation. */
  async logprobs(batch: TokenBatch, options: LogprobOptions = {}): Promise<Float32Array> {
    return (await this.ready()).logprobs(batch, options);
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
