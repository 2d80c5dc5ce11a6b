/**
 * What every model-backed role shares: a PolicyModel in native memory, its facts and health,
 * and, for the trained roles, the state hooks and the mini-batch update loop.
 */
import { PolicyModel, type ModelState } from "../native/policy_model.ts";
import type { Role } from "../runtime/core/host/role.ts";
import { meanStats, miniBatches, type RowBatch } from "./minibatch.ts";
import type { ModelRoleOptions, UpdatePlan } from "./model_options.ts";

export class ModelRole implements Role {
  protected readonly model: PolicyModel;

  constructor(options: ModelRoleOptions, valueHead: boolean) {
    this.model = new PolicyModel({ ...options.model, valueHead }, { device: options.device });
  }

  info() {
    return { backend: this.model.backend, params: this.model.numParams, step: this.model.step };
  }

  health() {
    return { ok: true, backend: this.model.backend, step: this.model.step };
  }
}

/** A role whose weights train: restorable, and updated over shuffled mini-batches. */
export class TrainedModelRole extends ModelRole {
  getState(): { model: ModelState } {
    return { model: this.model.getState() };
  }

  loadState(state: { model: ModelState }): void {
    this.model.setState(state.model);
  }

  /** Runs `step` on every mini-batch of the plan; the mean of each statistic. */
  protected async updateOver<B extends RowBatch, S extends object>(batch: B, plan: UpdatePlan, step: (mb: B) => Promise<S>): Promise<S> {
    const stats: S[] = [];
    for (const mb of miniBatches(batch, plan)) stats.push(await step(mb));
    return meanStats(stats);
  }
}
