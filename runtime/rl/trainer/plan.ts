/**
 * What is fixed for a job before anything starts: its data (job_data.ts), the shapes (sequence
 * length, response budget), each role's model, the seeds, the actors to start and their options. `checkJobConfig` runs the
 * same checks without starting anything (the HTTP service uses it to refuse a job up front).
 */
import { existsSync, readFileSync } from "node:fs";
import { availableParallelism } from "node:os";
import { join } from "node:path";
import type { Config } from "../../../config/schema.ts";
import { modelConfigFromHf } from "../../../native/hf/config.ts";
import type { ModelRoleOptions, RoleModel } from "../../../roles/index.ts";
import { threadShare } from "../../../roles/model_options.ts";
import { JobDataError, loadJobData, loadJobDataOffThread, taskData, type JobData } from "./job_data.ts";
import { deriveSeed } from "./seeds.ts";

/** Where shared-memory segments live (Linux tmpfs). */
export const SHM_DIR = "/dev/shm";

/** A configuration that validates key by key but cannot run as a whole (shapes, data sizes). */
export class JobConfigError extends RangeError {
  override name = "JobConfigError";
  constructor(readonly path: string, message: string) {
    super(message);
  }
}

/**
 * Checks that a configuration can run (data, shapes, models) without starting anything; the plan
 * it made. Reads data files and tokenizers, so call it before a job folder is made: a config
 * that cannot run leaves nothing behind.
 */
export async function checkJobConfig(config: Config, options: { offThread?: boolean } = {}): Promise<JobPlan> {
  return new JobPlan(config, await dataOf(() => (options.offThread ? loadJobDataOffThread(config) : loadJobData(config))));
}

/** `checkJobConfig` for the shipped tasks alone, synchronously (no files to read). */
export function checkTaskJobConfig(config: Config): JobPlan {
  if (config.data.train_files.length > 0) throw new JobConfigError("data.train_files", "data files are read asynchronously: use checkJobConfig");
  let data: JobData;
  try {
    data = taskData(config);
  } catch (e) {
    throw asConfigError(e);
  }
  return new JobPlan(config, data);
}

async function dataOf(load: () => Promise<JobData>): Promise<JobData> {
  try {
    return await load();
  } catch (e) {
    throw asConfigError(e);
  }
}

function asConfigError(e: unknown): unknown {
  if (e instanceof JobDataError) return new JobConfigError(e.path, e.message);
  if (e instanceof RangeError || e instanceof TypeError) return new JobConfigError("data", (e as Error).message);
  return e;
}

/** The estimators that read per-token rewards (a KL penalty charged there). */
const TOKEN_REWARD_ESTIMATORS: ReadonlySet<string> = new Set(["gae", "reinforce_plus_plus"]);
/** The estimators whose baseline is the other responses to the same prompt. */
const GROUP_ESTIMATORS: ReadonlySet<string> = new Set(["grpo", "rloo"]);

/** A group baseline needs a group: refused, naming the key, when rollout_n is 1. */
export function checkGroupSize(config: Config): void {
  const estimator = config.algorithm.adv_estimator;
  if (GROUP_ESTIMATORS.has(estimator) && config.worker.actor.rollout_n < 2) {
    throw new JobConfigError("worker.actor.rollout_n", `algorithm.adv_estimator=${estimator} needs worker.actor.rollout_n ≥ 2 (responses per prompt to compare)`);
  }
}

/** Everything fixed for a job: shapes, seeds, the actors' options. */
export class JobPlan {
  readonly seqLen: number;
  readonly maxNew: number;
  readonly groupSize: number;
  readonly useCritic: boolean;
  readonly useRef: boolean;
  /** The KL penalty is charged in the reward (GAE token rewards), not in the policy loss. */
  readonly klInReward: boolean;
  /** The policy is a Llama-family model: it can be saved as a Hugging Face folder. */
  readonly exportsHf: boolean;
  /** Each role's model: sizes and, for a Hugging Face folder, where its weights are. */
  private readonly models: Record<"actor" | "critic", RoleModel>;

  constructor(readonly config: Config, readonly data: JobData) {
    const actor = config.worker.actor;
    this.maxNew = actor.max_new_tokens;
    this.groupSize = actor.rollout_n;
    this.useCritic = config.algorithm.adv_estimator === "gae";
    this.useRef = config.algorithm.kl_coef > 0;
    this.klInReward = this.useRef && config.algorithm.use_kl_in_reward;
    let longestPrompt = 0;
    for (const p of [...data.train, ...data.val]) longestPrompt = Math.max(longestPrompt, p.ids.length);
    this.seqLen = longestPrompt + this.maxNew;
    if (data.answerTokens !== undefined && this.maxNew < data.answerTokens) {
      throw new JobConfigError("worker.actor.max_new_tokens", `worker.actor.max_new_tokens=${this.maxNew} is too short: ${config.data.task} answers of up to ` +
        `${config.data.max_digits} digits need ${data.answerTokens} tokens with the end token`);
    }
    this.models = { actor: this.roleModel("actor"), critic: this.useCritic ? this.roleModel("critic") : this.roleModel("actor") };
    this.exportsHf = this.models.actor.config.arch === "llama";
    for (const role of this.useCritic ? ["actor", "critic"] as const : ["actor"] as const) {
      const ctx = this.models[role].config.context;
      if (ctx < this.seqLen) {
        throw new JobConfigError(`worker.${role}.model.context`, `worker.${role}.model.context=${ctx} is too short: prompts of up to ${longestPrompt} tokens plus ` +
          `max_new_tokens=${this.maxNew} need ${this.seqLen}`);
      }
      const vocab = this.models[role].config.vocab;
      if (vocab < data.tokenizer.vocabSize) {
        throw new JobConfigError(`worker.${role}.model.path`, `the model of worker.${role} has ${vocab} token ids, fewer than the tokenizer's ${data.tokenizer.vocabSize}: they were not made for each other`);
      }
    }
    if (config.trainer.logger.includes("mlflow") && !/^https?:\/\/[^/]/.test(config.trainer.mlflow_tracking_uri)) {
      throw new JobConfigError("trainer.mlflow_tracking_uri", `trainer.logger includes mlflow, so trainer.mlflow_tracking_uri must be the tracking server's http(s) address (got ${JSON.stringify(config.trainer.mlflow_tracking_uri)})`);
    }
    if (config.algorithm.use_kl_in_reward && !TOKEN_REWARD_ESTIMATORS.has(config.algorithm.adv_estimator)) {
      throw new JobConfigError("algorithm.use_kl_in_reward", `algorithm.use_kl_in_reward=true charges the KL in each response token's reward, which only gae and reinforce_plus_plus use ` +
        `(${config.algorithm.adv_estimator} scores whole responses; keep the KL in the loss there)`);
    }
    const rollout = config.worker.rollout;
    if (rollout.elastic && rollout.ranks === 0) {
      throw new JobConfigError("worker.rollout.elastic", "worker.rollout.elastic=true needs rollout ranks to lose: set worker.rollout.ranks ≥ 2 (with ranks=0, actor_rollout generates itself)");
    }
    if (rollout.weight_transfer === "shared_memory" && (config.cluster.launcher !== "local" || !existsSync(SHM_DIR))) {
      throw new JobConfigError("worker.rollout.weight_transfer", `worker.rollout.weight_transfer=shared_memory needs every actor on this host (cluster.launcher=local, here ${config.cluster.launcher}) and ${SHM_DIR}` +
        `${existsSync(SHM_DIR) ? "" : " (missing here)"}; allowed otherwise: socket or auto`);
    }
    checkGroupSize(config);
  }

  /**
   * A role's model: a Hugging Face folder (its config.json read now, the weights by the role), or
   * a new model of the configured sizes with the tokenizer's vocabulary. The critic without a
   * folder of its own puts its value head on the policy's folder, as RL trainers do.
   */
  private roleModel(role: "actor" | "critic"): RoleModel {
    const m = this.config.worker[role].model;
    const path = m.path || (role === "critic" ? this.config.worker.actor.model.path : "");
    const key = `worker.${role === "critic" && !m.path ? "actor" : role}.model.path`;
    if (path) {
      let json: unknown;
      try {
        json = JSON.parse(readFileSync(join(path, "config.json"), "utf8"));
        const { vocab, context, width, layers, heads, kvHeads, intermediate, ropeTheta, normEps, tiedEmbeddings, attentionBias } = modelConfigFromHf(json, { source: join(path, "config.json") });
        // A padded vocabulary (more embedding rows than the tokenizer has ids, as Qwen ships)
        // samples and scores the tokenizer's ids only; fewer rows than ids is refused below.
        const validVocab = Math.min(vocab, this.data.tokenizer.vocabSize);
        return { path, config: { arch: "llama", vocab, context, width, layers, heads, kvHeads, intermediate, ropeTheta, normEps, tiedEmbeddings, attentionBias, validVocab } };
      } catch (e) {
        throw new JobConfigError(key, `${key}=${path}: ${(e as Error).message}`);
      }
    }
    const base = { vocab: this.data.tokenizer.vocabSize, context: m.context, width: m.width, layers: m.layers, heads: m.heads };
    if (m.arch === "gpt2") return { config: { ...base, arch: "gpt2" } };
    return {
      config: {
        ...base, arch: "llama", kvHeads: m.kv_heads || m.heads, intermediate: m.intermediate || Math.ceil((8 * m.width) / 3 / 8) * 8,
        ropeTheta: m.rope_theta, normEps: m.norm_eps, tiedEmbeddings: m.tied_embeddings, attentionBias: m.attention_bias,
      },
    };
  }

  seed(...tags: (string | number)[]): number {
    return deriveSeed(this.config.trainer.seed, ...tags);
  }

  roleOptions(role: "actor" | "critic" | "ref" | "rollout"): ModelRoleOptions {
    const w = this.config.worker;
    // The reference is the initial policy: same model, same init seed.
    const initSeed = this.seed("init", role === "critic" ? "critic" : "policy");
    const { path, config } = this.models[role === "critic" ? "critic" : "actor"];
    // Rollout ranks get the policy's weights pushed before they generate: no folder to read.
    if (role === "rollout") return { model: { ...config, seed: initSeed }, device: w.rollout.device, threads: this.rolloutThreads() };
    return { model: { ...config, seed: initSeed }, ...(path ? { path } : {}), device: w[role].device, threads: this.modelThreads() };
  }

  /** How weights reach the rollout ranks: `auto` resolved to shared memory when all actors share this host. */
  get weightTransfer(): "shared_memory" | "socket" {
    const t = this.config.worker.rollout.weight_transfer;
    if (t !== "auto") return t;
    return this.config.cluster.launcher === "local" && existsSync(SHM_DIR) ? "shared_memory" : "socket";
  }

  /** Rollout ranks (worker.rollout.ranks): 0 when actor_rollout generates itself. */
  get rolloutRanks(): number {
    return this.config.worker.rollout.ranks;
  }

  /** Each rollout rank's threads: the ranks generate at once, while the other model actors wait. */
  rolloutThreads(cores = availableParallelism()): number {
    return threadShare(cores, Math.max(1, this.rolloutRanks));
  }

  /**
   * Each model actor's CPU threads: the machine's cores split evenly among the model actors that
   * run at once (actor_rollout, and critic and ref_policy when the job has them), so they do not
   * oversubscribe the cores. REVENANT_NUM_THREADS in an actor's environment overrides it.
   */
  modelThreads(cores = availableParallelism()): number {
    return threadShare(cores, 1 + (this.useCritic ? 1 : 0) + (this.useRef ? 1 : 0));
  }

  childSpecs() {
    const specs = [{ id: "actor_rollout", role: "actor_rollout", options: { ...this.roleOptions("actor") } }];
    if (this.useCritic) specs.push({ id: "critic", role: "critic", options: { ...this.roleOptions("critic") } });
    if (this.useRef) specs.push({ id: "ref_policy", role: "ref_policy", options: { ...this.roleOptions("ref") } });
    const reward = this.data.reward;
    if (reward.kind === "module") specs.push({ id: "reward", role: "reward", options: { module: reward.path } as never });
    const rollout = this.config.worker.rollout;
    const group = rollout.ranks > 0 ? [{ id: "rollout", role: "rollout", ranks: rollout.ranks, elastic: rollout.elastic, options: { ...this.roleOptions("rollout") } }] : [];
    return [...specs, ...group];
  }
}
