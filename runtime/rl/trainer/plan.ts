/**
 * What is fixed for a job before anything starts: its data (job_data.ts), the shapes (sequence
 * length, response budget), each role's model, the seeds, the actors to start and their options. `checkJobConfig` runs the
 * same checks without starting anything (the HTTP service uses it to refuse a job up front).
 */
import { existsSync } from "node:fs";
import { availableParallelism } from "node:os";
import { join } from "node:path";
import { defaultIntermediate } from "../../../native/model_limits.ts";
import { MAX_COUNT, ModelSchema, type Config } from "../../../config/schema.ts";
import { type LlamaModelConfig, modelConfigFromHf } from "../../../native/hf/config.ts";
import { checkFolderTensors } from "../../../native/hf/model_folder.ts";
import { readRegularFile } from "../../../native/hf/regular_file.ts";
import type { ModelRoleOptions, RoleModel } from "../../../roles/index.ts";
import type { LoraConfig } from "../../../native/types.ts";
import { threadShare } from "../../../roles/model_options.ts";
import { JobDataError, loadJobData, loadJobDataOffThread, taskData, type JobData } from "./job_data.ts";
import { checkRewardModule } from "../rewards/module_check.ts";
import { deriveSeed } from "./seeds.ts";
import { checkContext, checkGroupSize, checkResponseBudget, JobConfigError, TOKEN_REWARD_ESTIMATORS } from "./job_limits.ts";

/** Where shared-memory segments live (Linux tmpfs). */
export const SHM_DIR = "/dev/shm";
export { checkGroupSize, JobConfigError } from "./job_limits.ts";


/**
 * Checks that a configuration can run (data, shapes, models) without starting anything; the plan
 * it made. Reads data files and tokenizers, so call it before a job folder is made: a config
 * that cannot run leaves nothing behind.
 */
export async function checkJobConfig(config: Config, options: { offThread?: boolean } = {}): Promise<JobPlan> {
  const plan = new JobPlan(config, await dataOf(() => (options.offThread ? loadJobDataOffThread(config) : loadJobData(config))));
  await checkReward(plan);
  return plan;
}

/** A reward module that does not load or exports nothing to score with is refused now, in one line. */
async function checkReward(plan: JobPlan): Promise<void> {
  const reward = plan.data.reward;
  if (reward.kind !== "module") return;
  try {
    await checkRewardModule(reward.path, plan.config.reward.call_deadline_s);
  } catch (e) {
    throw new JobConfigError("reward.module", `reward.module: ${(e as Error).message}`);
  }
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


/**
 * trainer.total_epochs (verl's length of a run) as steps: enough batches of data.train_batch_size
 * to pass over every training prompt that many times (the loader runs on into the next pass
 * within a batch, so the count rounds up).
 */
export function runLength(config: Config, prompts: number): { config: Config; note?: string } {
  const epochs = config.trainer.total_epochs;
  if (epochs === 0) return { config };
  const batch = config.data.train_batch_size;
  const steps = Math.ceil((epochs * prompts) / batch);
  if (steps > MAX_COUNT) {
    throw new JobConfigError("trainer.total_epochs", `trainer.total_epochs=${epochs} over ${prompts} training prompts in batches of ${batch} is ${steps} steps, more than the ${MAX_COUNT} allowed`);
  }
  return {
    config: { ...config, trainer: { ...config.trainer, total_steps: steps } },
    note: `trainer.total_epochs=${epochs} → trainer.total_steps=${steps} (${epochs} pass${epochs === 1 ? "" : "es"} over ${prompts} training prompts in batches of ${batch})`,
  };
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
  /**
   * The policy trains LoRA adapters (worker.actor.lora.rank > 0): the reference policy is its base
   * with the adapters off, scored by actor_rollout itself (no ref_policy actor).
   */
  readonly lora: boolean;
  /** Each role's model: sizes and, for a Hugging Face folder, where its weights are. */
  private readonly models: Record<"actor" | "critic", RoleModel>;
  /** Each role's model in words, for the banner: what it is and the context it trains at. */
  private readonly modelLines: Partial<Record<"actor" | "critic", string>> = {};

  /** The configuration as run: trainer.total_steps set from trainer.total_epochs when that is given. */
  readonly config: Config;
  /** What the user should hear before the job starts: the data's notes, then the plan's. */
  readonly notes: string[];

  constructor(given: Config, readonly data: JobData) {
    const { config, note } = runLength(given, data.train.length);
    this.config = config;
    this.notes = [...data.notes, ...(note ? [note] : [])];
    const actor = config.worker.actor;
    this.maxNew = actor.max_new_tokens;
    this.groupSize = actor.rollout_n;
    this.useCritic = config.algorithm.adv_estimator === "gae";
    this.useRef = config.algorithm.kl_coef > 0;
    this.klInReward = this.useRef && config.algorithm.use_kl_in_reward;
    let longestPrompt = 0;
    for (const p of [...data.train, ...data.val]) longestPrompt = Math.max(longestPrompt, p.ids.length);
    this.seqLen = longestPrompt + this.maxNew;
    if (data.answerTokens !== undefined) checkResponseBudget(config, data.answerTokens);
    const actorModel = this.roleModel("actor");
    this.lora = actor.lora.rank > 0;
    if (this.lora) actorModel.config = { ...actorModel.config, lora: loraConfig(actor.lora, actorModel.config.arch ?? "gpt2") };
    this.models = { actor: actorModel, critic: this.useCritic ? this.roleModel("critic") : this.roleModel("actor") };
    this.exportsHf = this.models.actor.config.arch === "llama";
    for (const role of this.useCritic ? ["actor", "critic"] as const : ["actor"] as const) {
      checkContext(role, this.models[role].config.context, longestPrompt, this.maxNew);
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
      const source = join(path, "config.json");
      let hf: LlamaModelConfig, json: Record<string, unknown>;
      try {
        json = JSON.parse(readRegularFile(source).toString("utf8"));
        hf = modelConfigFromHf(json, { source });
        checkFolderTensors(path, hf); // each weight file's header checked, and its tensors against config.json
      } catch (e) {
        throw new JobConfigError(key, `${key}=${path}: ${(e as Error).message}`);
      }
      checkShapeKeys(role, m, hf, source);
      const context = folderContext(role, m.context, json.max_position_embeddings as number, hf.context, source);
      const { valueHead: _v, seed: _s, ...config } = hf;
      const architecture = Array.isArray(json.architectures) ? String(json.architectures[0]) : String(json.model_type);
      this.modelLines[role] = `${path} (${architecture}, ${hf.layers} layers, width ${hf.width}), context ${context} of max_position_embeddings ${String(json.max_position_embeddings)}`;
      // A padded vocabulary (more embedding rows than the tokenizer has ids, as Qwen ships)
      // samples and scores the tokenizer's ids only; fewer rows than ids is refused in the constructor.
      const validVocab = Math.min(hf.vocab, this.data.tokenizer.vocabSize);
      return { path, hfConfig: json, config: { ...config, context, validVocab } };
    }
    const base = { vocab: this.data.tokenizer.vocabSize, context: m.context, width: m.width, layers: m.layers, heads: m.heads };
    this.modelLines[role] = `new ${m.arch} model (${m.layers} layers, width ${m.width}), context ${m.context}`;
    if (m.arch === "gpt2") return { config: { ...base, arch: "gpt2" } };
    return {
      config: {
        ...base, arch: "llama", kvHeads: m.kv_heads || m.heads, intermediate: m.intermediate || defaultIntermediate("llama", m.width),
        ropeTheta: m.rope_theta, normEps: m.norm_eps, tiedEmbeddings: m.tied_embeddings, attentionBias: m.attention_bias,
      },
    };
  }

  /** The banner's model lines: each trained role's model and the context it trains at. */
  get modelBanner(): string {
    const lines = [`model: actor ${this.modelLines.actor}`];
    const lora = this.models.actor.config.lora;
    if (lora) lines.push(`model: actor trains LoRA adapters (rank ${lora.rank}, alpha ${lora.alpha}${lora.rslora ? ", rsLoRA" : ""}, ${(lora.modules ?? []).join(" ")}); the reference policy is its base, adapters off`);
    if (this.useCritic) lines.push(`model: critic ${this.modelLines.critic}`);
    return lines.join("\n");
  }

  seed(...tags: (string | number)[]): number {
    return deriveSeed(this.config.trainer.seed, ...tags);
  }

  roleOptions(role: "actor" | "critic" | "ref" | "rollout"): ModelRoleOptions {
    const w = this.config.worker;
    // The reference is the initial policy: same model, same init seed.
    const initSeed = this.seed("init", role === "critic" ? "critic" : "policy");
    const { path, config, hfConfig } = this.models[role === "critic" ? "critic" : "actor"];
    // Rollout ranks get the policy's weights pushed before they generate: no folder to read, except
    // under LoRA, where a push carries the adapters alone and each rank loads the frozen base itself.
    if (role === "rollout") {
      return { model: { ...config, seed: initSeed }, ...(path && this.lora ? { path, hfConfig } : {}), device: w.rollout.device, threads: this.rolloutThreads() };
    }
    return { model: { ...config, seed: initSeed }, ...(path ? { path, hfConfig } : {}), device: w[role].device, threads: this.modelThreads() };
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
    return threadShare(cores, 1 + (this.useCritic ? 1 : 0) + (this.refActor ? 1 : 0));
  }

  /** A ref_policy actor runs: the job has a KL term and the policy trains every weight. */
  get refActor(): boolean {
    return this.useRef && !this.lora;
  }

  childSpecs() {
    const specs = [{ id: "actor_rollout", role: "actor_rollout", options: { ...this.roleOptions("actor") } }];
    if (this.useCritic) specs.push({ id: "critic", role: "critic", options: { ...this.roleOptions("critic") } });
    if (this.refActor) specs.push({ id: "ref_policy", role: "ref_policy", options: { ...this.roleOptions("ref") } });
    const reward = this.data.reward;
    if (reward.kind === "module") specs.push({ id: "reward", role: "reward", options: { module: reward.path, concurrency: this.config.reward.concurrency } as never });
    const rollout = this.config.worker.rollout;
    const group = rollout.ranks > 0 ? [{ id: "rollout", role: "rollout", ranks: rollout.ranks, elastic: rollout.elastic, options: { ...this.roleOptions("rollout") } }] : [];
    return [...specs, ...group];
  }
}

type ModelKeys = Config["worker"]["actor"]["model"];

/** worker.actor.lora as the model takes it; refused, naming the key, where it cannot run. */
function loraConfig(l: Config["worker"]["actor"]["lora"], arch: string): LoraConfig {
  if (arch !== "llama") {
    throw new JobConfigError("worker.actor.lora.rank", `worker.actor.lora.rank=${l.rank} needs a llama-family policy (a Hugging Face folder in worker.actor.model.path, or worker.actor.model.arch=llama): ` +
      `LoRA adapters sit beside the q/k/v/o/gate/up/down projections, which arch ${arch} does not have; set worker.actor.lora.rank=0 for this model`);
  }
  // bf16Base follows the folder the base is read from (the roles set it for a BF16 folder).
  return { rank: l.rank, alpha: l.alpha > 0 ? l.alpha : 2 * l.rank, rslora: l.use_rslora, modules: [...l.target_modules], dropout: l.dropout, bf16Base: false };
}

/** The model keys at their defaults: a key left there defers to a folder's config.json. */
const MODEL_DEFAULTS: ModelKeys = ModelSchema.parse({});

/** The shape keys a folder's config.json decides, with its name for each and the value it gives. */
const FOLDER_KEYS: ReadonlyArray<[keyof ModelKeys, string, (c: LlamaModelConfig) => unknown]> = [
  ["arch", "architectures", () => "llama"],
  ["width", "hidden_size", (c) => c.width],
  ["layers", "num_hidden_layers", (c) => c.layers],
  ["heads", "num_attention_heads", (c) => c.heads],
  ["kv_heads", "num_key_value_heads", (c) => c.kvHeads],
  ["intermediate", "intermediate_size", (c) => c.intermediate],
  ["rope_theta", "rope_theta", (c) => c.ropeTheta],
  ["norm_eps", "rms_norm_eps", (c) => c.normEps],
  ["tied_embeddings", "tie_word_embeddings", (c) => c.tiedEmbeddings],
  ["attention_bias", "attention_bias (q/k/v biases)", (c) => c.attentionBias],
];

/**
 * With a folder, its config.json gives the model's shape. A shape key given a value of its own
 * (other than its default) that the folder contradicts would be ignored: refused, naming both.
 */
function checkShapeKeys(role: "actor" | "critic", m: ModelKeys, hf: LlamaModelConfig, source: string): void {
  for (const [key, hfKey, folderValue] of FOLDER_KEYS) {
    const mine = m[key], theirs = folderValue(hf);
    if (mine === MODEL_DEFAULTS[key] || mine === theirs) continue;
    const path = `worker.${role}.model.${key}`;
    throw new JobConfigError(path, `${path}=${JSON.stringify(mine)} (this configuration) contradicts ${hfKey}=${JSON.stringify(theirs)} in ${source}, which gives the model's shape: ` +
      `drop ${path} or set it to ${JSON.stringify(theirs)}`);
  }
}

/**
 * The context a folder's model trains at: worker.<role>.model.context when given (not its
 * default) and at most the folder's max_position_embeddings, else the folder's (capped at the
 * runtime's limit). RoPE has no position table, so the weights do not depend on it.
 */
function folderContext(role: "actor" | "critic", wanted: number, maxPositions: number, folderDefault: number, source: string): number {
  if (wanted === MODEL_DEFAULTS.context) return folderDefault;
  if (wanted > maxPositions) {
    const path = `worker.${role}.model.context`;
    throw new JobConfigError(path, `${path}=${wanted} is larger than max_position_embeddings=${maxPositions} in ${source}: the model was not made for positions past ${maxPositions}; set ${path} to at most ${maxPositions}`);
  }
  return wanted;
}
