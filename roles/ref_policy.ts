/**
 * The `ref_policy` role: a frozen copy of the initial policy (built from the same init seed),
 * scoring reference log-probs for the KL term. It never changes, so it has no state to save:
 * a restarted reference is rebuilt from its seed.
 */
import type { TokenBatch, LogprobOptions } from "../native/policy_model.ts";
import type { RoleContext } from "../runtime/core/host/role.ts";
import { ModelRole } from "./model_role.ts";
import type { ModelRoleOptions } from "./model_options.ts";

export class RefPolicy extends ModelRole {
  static readOnly = ["logprobs", "info", "computeLog"];

  constructor(options: ModelRoleOptions, _ctx: RoleContext) {
    super(options, false);
  }

  /** Log-probs of softmax(logits / options.temperature) (default 1), without truncation. */
  async logprobs(batch: TokenBatch, options: LogprobOptions = {}): Promise<Float32Array> {
    return (await this.ready()).logprobs(batch, options);
  }
}
