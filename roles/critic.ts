/**
 * The `critic` role: the policy's trunk with a scalar value head. Estimates values and fits
 * them to returns with a clipped value loss.
 */
import type { TokenBatch, ValueBatch, ValueHyper, ValueStepStats } from "../native/policy_model.ts";
import type { RoleContext } from "../runtime/core/host/role.ts";
import { TrainedModelRole } from "./model_role.ts";
import type { ModelRoleOptions, UpdatePlan } from "./model_options.ts";

export class Critic extends TrainedModelRole {
  static readOnly = ["values", "info", "exportHf", "computeLog"];

  constructor(options: ModelRoleOptions, _ctx: RoleContext) {
    super(options, true);
  }

  async values(batch: TokenBatch): Promise<Float32Array> {
    return (await this.ready()).values(batch);
  }

  async update(batch: ValueBatch, hyper: Partial<ValueHyper>, plan: UpdatePlan): Promise<ValueStepStats> {
    const model = await this.ready();
    return this.updateOver(batch, plan, (mb) => model.valueStep(mb, hyper));
  }
}
