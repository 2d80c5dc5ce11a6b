/** Rewards: the built-in ones by name, and the contract of a user's reward module. */
export { BUILTIN_REWARDS, builtinReward, type BuiltinRewardName, type RewardFunction } from "./builtin_rewards.ts";
export { exactMatchReward, normalizeExactMatch } from "./exact_match.ts";
export { answersEqual, extractFinalAnswer, mathReward, NUMERIC_TOLERANCE, parseNumber, referenceAnswer, type FinalAnswer } from "./math_answer.ts";
export { checkReward, loadRewardModule, RewardError, type LoadedRewardModule, type RewardModule, type ScoreFunction } from "../../../roles/reward_module.ts";
