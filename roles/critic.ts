/**
 * The `critic` role: the policy's trunk with a scalar value head. Estimates values and fits
 * them to returns with a clipped value loss.
 */
import { PolicyModel, type ModelState, type TokenBatch, type ValueBatch, type ValueHyper, type ValueStepStats } from "../native/policy_model.ts";
import type { Role, RoleContext } from "../runtime/supervisor/role.ts";
import { meanStats, miniBatches } from "./minibatch.ts";
import type { ModelRoleOptions, UpdatePlan } from "./model_options.ts";

export class Critic implements Role {
  static readOnly = ["values", "info"];
  private readonly model: PolicyModel;

  constructor(options: ModelRoleOptions, _ctx: RoleContext) {
    this.model = new PolicyModel({ ...options.model, valueHead: true }, { device: options.device });
  }

  info() {
    return { backend: this.model.backend, params: this.model.numParams, step: this.model.step };
  }

  values(batch: TokenBatch): Promise<Float32Array> {
    return this.model.values(batch);
  }

  async update(batch: ValueBatch, hyper: Partial<ValueHyper>, plan: UpdatePlan): Promise<ValueStepStats> {
    const stats: ValueStepStats[] = [];
    for (const mb of miniBatches(batch, plan)) stats.push(await this.model.valueStep(mb, hyper));
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
