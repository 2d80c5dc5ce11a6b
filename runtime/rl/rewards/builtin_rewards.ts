/**
 * The built-in rewards by name: pure, synchronous functions of (prompt, response, answer) that
 * score a response in [0, 1]. A user's own reward is a module instead (roles/reward_module.ts).
 *
 * @example
 * ```ts
 * const reward = builtinReward("math");
 * reward("What is 3+4?", "3 + 4 = 7", "7"); // 1
 * ```
 */
import { exactMatchReward } from "./exact_match.ts";
import { mathReward } from "./math_answer.ts";

/** A reward: the score of `response` to `prompt`, given the reference `answer`. */
export type RewardFunction = (prompt: string, response: string, answer: string) => number;

/** The built-in rewards. */
export const BUILTIN_REWARDS = {
  /** Final numeric answer (GSM8K "#### n", \boxed{n}, else the last number) equal to the answer's: 1, else 0. */
  math: mathReward,
  /** Trimmed, NFC-normalised response equal to the answer: 1, else 0. */
  exact_match: exactMatchReward,
} as const satisfies Record<string, RewardFunction>;

/** A built-in reward's name. */
export type BuiltinRewardName = keyof typeof BUILTIN_REWARDS;

/** The built-in reward called `name`; a RangeError listing the names when there is none. */
export function builtinReward(name: string): RewardFunction {
  if (!Object.hasOwn(BUILTIN_REWARDS, name)) {
    throw new RangeError(`unknown reward ${JSON.stringify(name)}; the built-in rewards are: ${Object.keys(BUILTIN_REWARDS).sort().join(", ")}`);
  }
  return BUILTIN_REWARDS[name as BuiltinRewardName];
}
