/**
 * The `reward` role: a user's reward module (`reward.module`, exporting
 * `score(prompt, response, answer) → number`) in its own supervised process. A module that hangs
 * or crashes takes down this process, not the coordinator: the supervisor restarts it and
 * retries the call, as for any role, and a call past `reward.call_deadline_s` is treated as a
 * hang. A row whose `score` throws or returns something other than a finite number is a reward
 * failure: reported with its reason, never turned into a score of 0.
 */
import type { RoleContext } from "../runtime/core/host/role.ts";
import { loadRewardModule, type LoadedRewardModule } from "../runtime/rl/rewards/user_module.ts";

export interface RewardOptions {
  /** Absolute path of the module. */
  module: string;
}

/** One response to judge. */
export interface RewardItem {
  prompt: string;
  response: string;
  answer: string;
}

/** Scores of a batch: `failed[i]` = 1 where row i has no score (its reason in `errors`). */
export interface RewardScores {
  scores: Float32Array;
  failed: Uint8Array;
  /** "row i: reason" for each failed row. */
  errors: string[];
}

export class Reward {
  static readOnly = ["score", "info"];
  private module: Promise<LoadedRewardModule> | undefined;

  constructor(private readonly options: RewardOptions, _ctx: RoleContext) {}

  /** Imported on first use; a module that cannot load fails every call with the reason. */
  private loaded(): Promise<LoadedRewardModule> {
    return (this.module ??= loadRewardModule(this.options.module));
  }

  async score(items: RewardItem[]): Promise<RewardScores> {
    const mod = await this.loaded();
    const out: RewardScores = { scores: new Float32Array(items.length), failed: new Uint8Array(items.length), errors: [] };
    for (let i = 0; i < items.length; i++) {
      const { prompt, response, answer } = items[i]!;
      try {
        out.scores[i] = await mod.score(prompt, response, answer);
      } catch (e) {
        out.failed[i] = 1;
        out.errors.push(`row ${i}: ${(e as Error).message}`);
      }
    }
    return out;
  }

  async info(): Promise<{ module: string }> {
    return { module: (await this.loaded()).path };
  }

  health(): { ok: boolean } {
    return { ok: true };
  }
}
