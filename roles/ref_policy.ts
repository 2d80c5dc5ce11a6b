/**
 * The `ref_policy` role: a frozen copy of the initial policy (built from the same init seed),
 * scoring reference log-probs for the KL term. It never changes, so it has no state to save:
 * a restarted reference is rebuilt from its seed.
 */
import { PolicyModel, type TokenBatch } from "../native/policy_model.ts";
import type { Role, RoleContext } from "../runtime/supervisor/role.ts";
import type { ModelRoleOptions } from "./model_options.ts";

export class RefPolicy implements Role {
  static readOnly = ["logprobs", "info"];
  private readonly model: PolicyModel;

  constructor(options: ModelRoleOptions, _ctx: RoleContext) {
    this.model = new PolicyModel({ ...options.model, valueHead: false }, { device: options.device });
  }

  info() {
    return { backend: this.model.backend, params: this.model.numParams };
  }

  logprobs(batch: TokenBatch): Promise<Float32Array> {
    return this.model.logprobs(batch);
  }

  health() {
    return { ok: true, backend: this.model.backend };
  }
}
