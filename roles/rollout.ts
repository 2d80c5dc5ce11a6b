/**
 * The `rollout` role: one rank of a rollout worker group. It holds a copy of the policy, generates
 * the shards of prompts the trainer hands it, and takes the new weights after every update (a
 * push, or on its own from the shared segment a generate call names). It keeps no state a restart
 * must restore: the weights come back with the next push or call, by version.
 */
import type { GenerateOptions, GenerateResult } from "../native/policy_model.ts";
import type { RoleContext } from "../runtime/core/host/role.ts";
import { ModelRole } from "./model_role.ts";
import type { ModelRoleOptions } from "./model_options.ts";
import { checkSegmentVersion, loadWeights, StaleWeightsError, type WeightPush, type WeightRef, type WeightSegment } from "./weights.ts";

export class RolloutRank extends ModelRole {
  /** The weights version this rank holds; -1 until the first push. */
  #version = -1;
  /** The segment the model computes from without a copy (a CPU rank), whose version can change under it. */
  #live: WeightSegment | undefined;

  constructor(options: ModelRoleOptions, _ctx: RoleContext) {
    super(options, false);
  }

  /** Takes version `push.version` of the weights; the version now held. */
  async syncWeights(push: WeightPush): Promise<{ version: number }> {
    if (push.version !== this.#version || this.#live) {
      this.#version = -1; // until the load below completes: a failed one leaves no version held
      this.#live = await loadWeights(await this.ready(), push);
      this.#version = push.version;
    }
    return { version: this.#version };
  }

  /** Generates with version `weights.version` of the policy (read from its segment first if this rank holds another). */
  async generate(prompts: Int32Array[], options: GenerateOptions, weights: WeightRef): Promise<GenerateResult> {
    if (weights.version !== this.#version) {
      if (!weights.segment) throw new StaleWeightsError(`this rank holds weights version ${this.#version}; the call needs version ${weights.version}`);
      await this.syncWeights(weights);
    }
    if (this.#live) checkSegmentVersion(this.#live, weights.version);
    const out = await (await this.ready()).generate(prompts, options);
    // Computed from the segment itself: a write that began meanwhile may have changed the weights.
    if (this.#live) checkSegmentVersion(this.#live, weights.version, "was rewritten while generating with");
    return out;
  }

  override info() {
    return { ...super.info(), weightsVersion: this.#version };
  }
}
