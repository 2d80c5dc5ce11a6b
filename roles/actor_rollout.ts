/**
 * The `actor_rollout` role: owns the policy's weights and optimizer. Samples rollouts, scores
 * its own old log-probs, and takes PPO updates. Every stochastic call gets its seed from the
 * trainer, so the role has no hidden random state and replays are exact.
 */
import type { GenerateOptions, GenerateResult, PolicyBatch, PolicyHyper, PolicyStepStats, TokenBatch } from "../native/policy_model.ts";
import type { RoleContext } from "../runtime/core/host/role.ts";
import { aggregation } from "./loss_agg.ts";
import { TrainedModelRole } from "./model_role.ts";
import type { ModelRoleOptions, UpdatePlan } from "./model_options.ts";
import { publishWeights, type WeightSegment } from "./weights.ts";

export class ActorRollout extends TrainedModelRole {
  static readOnly = ["generate", "logprobs", "info", "exportHf", "publishWeights", "params"];

  constructor(options: ModelRoleOptions, _ctx: RoleContext) {
    super(options, false);
  }

  async generate(prompts: Int32Array[], options: GenerateOptions): Promise<GenerateResult> {
    return (await this.ready()).generate(prompts, options);
  }

  async logprobs(batch: TokenBatch): Promise<Float32Array> {
    return (await this.ready()).logprobs(batch);
  }

  /** Writes the current weights into the shared segment at `path` as `version`, for the rollout ranks to map. */
  async publishWeights(path: string, version: number): Promise<WeightSegment> {
    return publishWeights(await this.ready(), path, version);
  }

  /** The current weights, for rollout ranks that cannot map a segment of this host. */
  async params(): Promise<Float32Array> {
    const model = await this.ready();
    const out = new Float32Array(model.numParams);
    await model.copyParamsTo(out);
    return out;
  }

  /** PPO epochs over shuffled mini-batches, the loss aggregated as the plan says; the mean of each statistic. */
  async update(batch: PolicyBatch, hyper: Partial<PolicyHyper>, plan: UpdatePlan): Promise<PolicyStepStats> {
    const model = await this.ready();
    return this.updateOver(batch, plan, (mb) => {
      if (!plan.lossAgg) return model.policyStep(mb, hyper);
      const { mask, lossNorm } = aggregation(mb.mask, mb.batch, mb.seqLen, plan.lossAgg);
      return model.policyStep({ ...mb, mask }, { ...hyper, lossNorm });
    });
  }
}
