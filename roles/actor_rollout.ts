/**
 * The `actor_rollout` role: owns the policy's weights and optimizer. Samples rollouts, scores
 * its own old log-probs, and takes PPO updates. Every stochastic call gets its seed from the
 * trainer, so the role has no hidden random state and replays are exact.
 */
import type { GenerateOptions, GenerateResult, PolicyBatch, PolicyHyper, PolicyStepStats, TokenBatch } from "../native/policy_model.ts";
import type { RoleContext } from "../runtime/core/host/role.ts";
import { TrainedModelRole } from "./model_role.ts";
import type { ModelRoleOptions, UpdatePlan } from "./model_options.ts";

export class ActorRollout extends TrainedModelRole {
  static readOnly = ["generate", "logprobs", "info", "exportHf"];

  constructor(options: ModelRoleOptions, _ctx: RoleContext) {
    super(options, false);
  }

  generate(prompts: Int32Array[], options: GenerateOptions): Promise<GenerateResult> {
    return this.model.generate(prompts, options);
  }

  logprobs(batch: TokenBatch): Promise<Float32Array> {
    return this.model.logprobs(batch);
  }

  /** PPO epochs over shuffled mini-batches; the mean of each statistic. */
  update(batch: PolicyBatch, hyper: Partial<PolicyHyper>, plan: UpdatePlan): Promise<PolicyStepStats> {
    return this.updateOver(batch, plan, (mb) => this.model.policyStep(mb, hyper));
  }
}
