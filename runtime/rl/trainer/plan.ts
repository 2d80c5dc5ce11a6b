/**
 * What is fixed for a job before anything starts: the dataset, the shapes (sequence length,
 * response budget), the seeds, the actors to start and their options. `checkJobConfig` runs the
 * same checks without starting anything (the HTTP service uses it to refuse a job up front).
 */
import type { Config } from "../../../config/schema.ts";
import type { ModelRoleOptions } from "../../../roles/index.ts";
import { makeDataset, type Dataset } from "../tasks/dataset.ts";
import { promptTokens, VOCAB_SIZE } from "../tasks/tokenizer.ts";
import { deriveSeed } from "./seeds.ts";

/** A configuration that validates key by key but cannot run as a whole (shapes, data sizes). */
export class JobConfigError extends RangeError {
  override name = "JobConfigError";
  constructor(readonly path: string, message: string) {
    super(message);
  }
}

/** Checks that a configuration can run (sizes fit the task) without starting anything; the plan it made. */
export function checkJobConfig(config: Config): JobPlan {
  let dataset: Dataset;
  try {
    dataset = makeDataset(config.data);
  } catch (e) {
    throw new JobConfigError("data", (e as Error).message);
  }
  return new JobPlan(config, dataset);
}

/** Everything fixed for a job: shapes, seeds, the actors' options. */
export class JobPlan {
  readonly seqLen: number;
  readonly maxNew: number;
  readonly groupSize: number;
  readonly useCritic: boolean;
  readonly useRef: boolean;

  constructor(readonly config: Config, readonly dataset: Dataset) {
    const actor = config.worker.actor;
    this.maxNew = actor.max_new_tokens;
    this.groupSize = actor.rollout_n;
    this.useCritic = config.algorithm.adv_estimator === "gae";
    this.useRef = config.algorithm.kl_coef > 0;
    const longestPrompt = Math.max(...[...dataset.train, ...dataset.val].map((p) => promptTokens(p).length));
    this.seqLen = longestPrompt + this.maxNew;
    const needed = dataset.task.maxAnswerLength(config.data.max_digits) + 1;
    if (this.maxNew < needed) {
      throw new JobConfigError("worker.actor.max_new_tokens", `worker.actor.max_new_tokens=${this.maxNew} is too short: ${config.data.task} answers of up to ` +
        `${config.data.max_digits} digits need ${needed} tokens with the end token`);
    }
    for (const role of ["actor", "critic"] as const) {
      const ctx = config.worker[role].model.context;
      if (ctx < this.seqLen) {
        throw new JobConfigError(`worker.${role}.model.context`, `worker.${role}.model.context=${ctx} is too short: prompts of up to ${longestPrompt} tokens plus ` +
          `max_new_tokens=${this.maxNew} need ${this.seqLen}`);
      }
    }
    if (config.trainer.logger.includes("mlflow") && !/^https?:\/\/[^/]/.test(config.trainer.mlflow_tracking_uri)) {
      throw new JobConfigError("trainer.mlflow_tracking_uri", `trainer.logger includes mlflow, so trainer.mlflow_tracking_uri must be the tracking server's http(s) address (got ${JSON.stringify(config.trainer.mlflow_tracking_uri)})`);
    }
    if (config.algorithm.adv_estimator === "grpo" && this.groupSize < 2) {
      throw new JobConfigError("worker.actor.rollout_n", "algorithm.adv_estimator=grpo needs worker.actor.rollout_n ≥ 2 (responses per prompt to compare)");
    }
  }

  seed(...tags: (string | number)[]): number {
    return deriveSeed(this.config.trainer.seed, ...tags);
  }

  roleOptions(role: "actor" | "critic" | "ref"): ModelRoleOptions {
    const w = this.config.worker;
    const m = role === "critic" ? w.critic.model : w.actor.model;
    // The reference is the initial policy: same sizes, same init seed.
    const initSeed = this.seed("init", role === "critic" ? "critic" : "policy");
    return { model: { vocab: VOCAB_SIZE, ...m, seed: initSeed }, device: w[role].device };
  }

  childSpecs() {
    const specs = [{ id: "actor_rollout", role: "actor_rollout", options: { ...this.roleOptions("actor") } }];
    if (this.useCritic) specs.push({ id: "critic", role: "critic", options: { ...this.roleOptions("critic") } });
    if (this.useRef) specs.push({ id: "ref_policy", role: "ref_policy", options: { ...this.roleOptions("ref") } });
    return specs;
  }
}
