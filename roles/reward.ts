/**
 * The `reward` role: a user's reward module (`reward.module`, exporting `scoreBatch(rows)`,
 * `score(prompt, response, answer)` or `compute_score(...)`: see runtime/rl/rewards/user_module.ts)
 * in its own supervised process; async per-row calls run `reward.concurrency` at a time. A module that hangs
 * or crashes takes down this process, not the coordinator: the supervisor restarts it and
 * retries the call, as for any role, and a call past `reward.call_deadline_s` is treated as a
 * hang. A row whose `score` throws or returns something other than a finite number is a reward
 * failure: reported with its reason, never turned into a score of 0.
 */
import type { RoleContext } from "../runtime/core/host/role.ts";
import { DEFAULT_REWARD_CONCURRENCY, loadRewardModule, type LoadedRewardModule, type RewardItem, type RewardScores } from "../runtime/rl/rewards/user_module.ts";

export type { RewardItem, RewardScores };

export interface RewardOptions {
  /** Absolute path of the module. */
  module: string;
  /** Per-row calls in flight at once (`reward.concurrency`); default DEFAULT_REWARD_CONCURRENCY. */
  concurrency?: number;
}

export class Reward {
  static readOnly = ["score", "info"];
  private module: Promise<LoadedRewardModule> | undefined;

  constructor(private readonly options: RewardOptions, _ctx: RoleContext) {}

  /** Imported on first use; a module that cannot load fails every call with the reason. */
  private loaded(): Promise<LoadedRewardModule> {
    return (this.module ??= loadRewardModule(this.options.module));
  }

  /** Every row's score, in row order, whichever call finished first. */
  async score(items: RewardItem[]): Promise<RewardScores> {
    return (await this.loaded()).scoreRows(items, this.options.concurrency ?? DEFAULT_REWARD_CONCURRENCY);
  }

  async info(): Promise<{ module: string }> {
    return { module: (await this.loaded()).path };
  }

  health(): { ok: boolean } {
    return { ok: true };
  }
}
