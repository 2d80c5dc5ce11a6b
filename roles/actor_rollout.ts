/**
 * The `actor_rollout` role: owns the policy's weights and optimizer. Samples rollouts, scores
 * its own old log-probs, and takes PPO updates. Every stochastic call gets its seed from the
 * trainer, so the role has no hidden random state and replays are exact.
 */
import { PolicyModel, type GenerateOptions, type PolicyBatch, type PolicyHyper, type PolicyStepStats, type TokenBatch, type ModelState } from "../native/policy_model.ts";
import type { Role, RoleContext } from "../runtime/supervisor/role.ts";
import { meanStats, miniBatches } from "./minibatch.ts";
import type { ModelRoleOptions, UpdatePlan } from "./model_options.ts";

export class ActorRollout implements Role {
  static readOnly = ["generate", "logprobs", "info"];
  private readonly model: PolicyModel;

  constructor(options: ModelRoleOptions, _ctx: RoleContext) {
    this.model = new PolicyModel({ ...options.model, valueHead: false }, { device: options.device });
  }

  info() {
    return { backend: this.model.backend, params: this.model.numParams, step: this.model.step };
  }

  generate(prompts: Int32Array[], options: GenerateOptions) {
    return this.model.generate(prompts, options);
  }

  logprobs(batch: TokenBatch): Promise<Float32Array> {
    return this.model.logprobs(batch);
  }

  /** PPO epochs over shuffled mini-batches; returns the mean of each statistic. */
  async update(batch: PolicyBatch, hyper: Partial<PolicyHyper>, plan: UpdatePlan): Promise<PolicyStepStats> {
    const stats: PolicyStepStats[] = [];
    for (const mb of miniBatches(batch, plan)) stats.push(await this.model.policyStep(mb, hyper));
    return meanStats(stats);
  }

  getState(): { model: ModelState } {
    return { model: this.model.getState() };
  }

  loadState(state: { model: ModelState }): void {
    this.model.setState(state.model);
  }

  health() {
    return { ok: true, backend: this.model.backend, step: this.model.step };
  }
}
