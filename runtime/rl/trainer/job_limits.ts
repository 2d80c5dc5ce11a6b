/**
 * The limits a job must meet as a whole, in one place: the trainer's plan checks them against the
 * data it made, and the service's request check (service/server/job_check.ts) against the task's
 * bounds, before any data exists. Each throws a JobConfigError naming the key.
 *
 * @example
 * ```ts
 * checkResponseBudget(config, answerTokens);
 * checkContext("actor", ctx, longestPrompt, config.worker.actor.max_new_tokens);
 * ```
 */
import type { Config } from "../../../config/schema.ts";

/** A configuration that validates key by key but cannot run as a whole (shapes, data sizes). */
export class JobConfigError extends RangeError {
  override name = "JobConfigError";
  constructor(readonly path: string, message: string) {
    super(message);
  }
}

/** The estimators that read per-token rewards (a KL penalty charged there). */
export const TOKEN_REWARD_ESTIMATORS: ReadonlySet<string> = new Set(["gae", "reinforce_plus_plus"]);
/** The estimators whose baseline is the other responses to the same prompt. */
const GROUP_ESTIMATORS: ReadonlySet<string> = new Set(["grpo", "rloo"]);

/** A group baseline needs a group: refused, naming the key, when rollout_n is 1. */
export function checkGroupSize(config: Config): void {
  const estimator = config.algorithm.adv_estimator;
  if (GROUP_ESTIMATORS.has(estimator) && config.worker.actor.rollout_n < 2) {
    throw new JobConfigError("worker.actor.rollout_n", `algorithm.adv_estimator=${estimator} needs worker.actor.rollout_n ≥ 2 (responses per prompt to compare)`);
  }
}

/** The shipped task's longest answer, with its end token, must fit the response budget. */
export function checkResponseBudget(config: Config, answerTokens: number): void {
  const maxNew = config.worker.actor.max_new_tokens;
  if (maxNew < answerTokens) {
    throw new JobConfigError("worker.actor.max_new_tokens", `worker.actor.max_new_tokens=${maxNew} is too short: ${config.data.task} answers of up to ` +
      `${config.data.max_digits} digits need ${answerTokens} tokens with the end token`);
  }
}

/** A role's context must hold the longest prompt plus the response budget. */
export function checkContext(role: "actor" | "critic", context: number, longestPrompt: number, maxNew: number): void {
  const seqLen = longestPrompt + maxNew;
  if (context < seqLen) {
    throw new JobConfigError(`worker.${role}.model.context`, `worker.${role}.model.context=${context} is too short: prompts of up to ${longestPrompt} tokens plus ` +
      `max_new_tokens=${maxNew} need ${seqLen}`);
  }
}
