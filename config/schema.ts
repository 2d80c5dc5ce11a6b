/**
 * The configuration schema: one zod schema per section, defaults included. Everything else in
 * `config/` (sources, errors, the classes, the README table) is derived from these.
 *
 * @example
 * ```ts
 * import { ConfigSchema } from "./schema.ts";
 * const cfg = ConfigSchema.parse({ fault_tolerance: { max_restarts: 5 } });
 * cfg.fault_tolerance.max_task_retries; // 2 (the default)
 * ```
 */
import { z } from "zod";
import { deviceProblem, type Device } from "../native/device.ts";
import { MODEL_LIMITS, type ModelSize } from "../native/model_limits.ts";
import { LOSS_AGG_MODES } from "../roles/loss_agg.ts";
import {
  ClusterSchema, FaultToleranceSchema, int, MAX_COUNT, seconds,
} from "../runtime/core/supervisor/options.ts";

export { ClusterSchema, DURATION_S, FaultToleranceSchema, MAX_COUNT, SRUN_RESERVED, type Cluster, type FaultTolerance } from "../runtime/core/supervisor/options.ts";

/**
 * Sizes of work. A job generates its whole data set before it starts: at these bounds (110 000
 * prompts of up to 64-digit operands) that is about a second on one core in the worst case
 * (64-digit addition), 0.1 s at 8 digits. The coordinator's check of a POSTed config must not
 * generate it on the request path. Model sizes come from native/model_limits.json, the file
 * the addon's TypeScript and C++ checks read too. Batch sizes keep one step's rollout within
 * reach of one machine.
 */
export const LIMITS = {
  train_size: 100_000,
  val_size: 10_000,
  digits: 64,
  batch: 8192,
  mini_batch: 65_536,
  rollout_n: 64,
  ppo_epochs: 100,
  keep: 1000,
} as const;

/** A file path or a list of them (at most 1024); always a list once parsed. */
const paths = (what: string) =>
  z.union([z.string().min(1).max(4096), z.array(z.string().min(1).max(4096)).max(1024)])
    .transform((v) => (typeof v === "string" ? [v] : v)).default([]).describe(what);
/** A model size: bounds and default from native/model_limits.json, shared with the addon. */
const modelSize = (key: ModelSize) => int(MODEL_LIMITS[key].min, MODEL_LIMITS[key].max).default(MODEL_LIMITS[key].default);
/** A role's compute device, checked by native/device.ts: the same words as PolicyModel's refusal. */
const device = z.string().max(32).default("auto")
  .superRefine((v, ctx) => {
    const problem = deviceProblem(v);
    if (problem) ctx.addIssue({ code: "custom", message: problem });
  })
  .transform((v) => v as Device)
  .describe("compute device: auto (CUDA device 0 when usable, else the CPU, saying why), cpu, cuda (device 0) or cuda:N (device N; both fail when that device cannot be used), or null (no real compute: tests without the native addon)");

/**
 * The model of a role: a Hugging Face folder (`path`), or one built from scratch with these sizes.
 * With `path`, architecture and sizes come from its config.json: `context` sets the training
 * context (at most the folder's max_position_embeddings), and any other key below given a value
 * other than its default must agree with the folder (runtime/rl/trainer/plan.ts refuses it
 * otherwise, naming both).
 */
export const ModelSchema = z.strictObject({
  path: z.string().max(4096).default("")
    .describe("Hugging Face model folder (config.json + model.safetensors or its sharded index): Llama (Llama 3 rope scaling included), Qwen2, Qwen3 or Mistral; empty = a new model with the sizes below, which a folder's config.json must not contradict"),
  arch: z.enum(["gpt2", "llama"]).default("gpt2")
    .describe("architecture of a new model: gpt2 (LayerNorm, learned positions, GELU) or llama (RMSNorm, rotary positions, SwiGLU, grouped-query attention)"),
  context: modelSize("context").describe("maximum sequence length in tokens; with path, the training context, at most the folder's max_position_embeddings (left at the default: the folder's, capped at the runtime's limit)"),
  width: modelSize("width").describe("model width (embedding size)"),
  layers: modelSize("layers").describe("transformer blocks"),
  heads: modelSize("heads").describe("attention heads; must divide width"),
  kv_heads: int(0, MODEL_LIMITS.heads.max).default(0).describe("llama: key/value heads (grouped-query attention), dividing heads; 0 = heads"),
  intermediate: int(0, 65_536).default(0).describe("llama: SwiGLU hidden size; 0 = 8/3 of width, rounded up to a multiple of 8"),
  rope_theta: z.number().positive().max(1e9).default(10_000).describe("llama: rotary embedding base"),
  norm_eps: z.number().positive().max(1).default(1e-5).describe("llama: RMSNorm epsilon"),
  tied_embeddings: z.boolean().default(false).describe("llama: the output layer shares the token embedding"),
  attention_bias: z.boolean().default(false).describe("llama: biases on the q, k and v projections (Qwen2)"),
}).refine((m) => m.width % m.heads === 0, { message: "heads must divide width", path: ["heads"] })
  .refine((m) => m.kv_heads === 0 || m.heads % m.kv_heads === 0, { message: "kv_heads must divide heads", path: ["kv_heads"] });

const optimizer = (lr: number) => ({
  lr: z.number().positive().max(1).default(lr).describe("AdamW learning rate"),
  weight_decay: z.number().min(0).max(1).default(0).describe("AdamW weight decay"),
  grad_clip: z.number().positive().max(10_000).default(1.0).describe("global gradient-norm clip"),
  ppo_epochs: int(1, LIMITS.ppo_epochs).default(1).describe("passes over each batch"),
  ppo_mini_batch_size: int(1, LIMITS.mini_batch).default(32).describe("samples per optimizer step; below the batch's size, several steps per batch (PPO proper)"),
  device,
});

/** PEFT's target_modules names: the projections a LoRA adapter may sit beside. */
export const LORA_TARGET_MODULES = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"] as const;

/**
 * LoRA on the policy (llama-family models): low-rank adapters beside the chosen projections train
 * while the base weights stay frozen; the reference policy is the base with the adapters off, served
 * by the actor itself; checkpoints and weight pushes carry the adapters alone.
 */
export const LoraSchema = z.strictObject({
  rank: int(0, 1024).default(0).describe("LoRA rank r of the policy's adapters; 0 = no LoRA (every weight trains). llama-family models only"),
  alpha: z.number().min(0).max(1e6).default(0).describe("LoRA alpha: adapters are scaled by alpha / rank (alpha / √rank with use_rslora); 0 = 2 × rank"),
  dropout: z.number().min(0).lt(1).default(0).describe("dropout of each adapter's input during policy updates (PEFT's lora_dropout; never when scoring or sampling), its mask seeded per mini-batch"),
  target_modules: z.array(z.enum(LORA_TARGET_MODULES)).min(1).max(LORA_TARGET_MODULES.length).default([...LORA_TARGET_MODULES])
    .refine((m) => new Set(m).size === m.length, { message: "names a module twice" })
    .describe("projections that get adapters, PEFT's names: q_proj k_proj v_proj o_proj gate_proj up_proj down_proj (all by default)"),
  use_rslora: z.boolean().default(false).describe("rank-stabilised LoRA: scale by alpha / √rank instead of alpha / rank"),
  save_merged: z.boolean().default(false).describe("also write <job>/hf_model_merged: the base with the adapters merged in (W + scale · B·A), a full folder in checkpoint.hf_dtype"),
});

export const ActorWorkerSchema = z.strictObject({
  model: ModelSchema.prefault({}),
  lora: LoraSchema.prefault({}),
  ...optimizer(1e-3),
  clip_ratio: z.number().positive().max(1).default(0.2).describe("PPO ratio clip epsilon"),
  entropy_coeff: z.number().min(0).max(100).default(0.05).describe("entropy bonus coefficient"),
  temperature: z.number().positive().max(100).default(1.0).describe("rollout sampling temperature; PPO's log-probs are of the policy's logits / temperature, untruncated"),
  top_k: int(0, MODEL_LIMITS.vocab.max).default(0).describe("rollout sampling: keep only the k most likely tokens (ties kept); 0 = off"),
  top_p: z.number().positive().max(1).default(1).describe("rollout sampling, after top_k: keep the fewest most likely tokens whose probability reaches top_p; 1 = off"),
  val_temperature: z.number().min(0).max(100).default(0).describe("validation sampling temperature; 0 = greedy"),
  val_top_k: int(0, MODEL_LIMITS.vocab.max).default(0).describe("validation sampling: top-k (0 = off)"),
  val_top_p: z.number().positive().max(1).default(1).describe("validation sampling: top-p after top-k (1 = off)"),
  max_new_tokens: int(1, MODEL_LIMITS.context.max).default(6).describe("response length limit"),
  rollout_n: int(1, LIMITS.rollout_n).default(1).describe("responses sampled per prompt (GRPO group size)"),
  loss_agg_mode: z.enum(LOSS_AGG_MODES).default("token-mean")
    .describe("how the policy loss is aggregated over a mini-batch, as verl: token-mean, seq-mean-token-sum, seq-mean-token-mean, or seq-mean-token-sum-norm (Dr. GRPO: the sum over a constant, the response budget max_new_tokens)"),
});

export const CriticWorkerSchema = z.strictObject({
  model: ModelSchema.prefault({}),
  // The critic starts from nothing and must track a moving policy: it learns faster.
  ...optimizer(3e-3),
  cliprange_value: z.number().positive().max(10_000).default(0.5).describe("value clip range"),
});

export const RefWorkerSchema = z.strictObject({ device });

/** Child spec ranks are capped at 256; rollout groups far below that. */
export const MAX_ROLLOUT_RANKS = 64;

/**
 * Dedicated rollout workers: `ranks` processes that split each step's prompts (data-parallel
 * generation), each holding a copy of the policy that is refreshed after every update. The
 * prompts are cut into `ranks` fixed shards, each with its own seed, so which process generates
 * a shard never changes what it generates: a shard lost with its rank and retried elsewhere, or
 * an elastic job running on fewer ranks, gives the same result as a calm run.
 */
export const RolloutWorkerSchema = z.strictObject({
  ranks: int(0, MAX_ROLLOUT_RANKS).default(0)
    .describe("rollout workers splitting each step's prompts, each with a copy of the policy pushed after every update; 0 = actor_rollout generates itself"),
  elastic: z.boolean().default(false)
    .describe("when a rollout rank cannot be kept alive (max_restarts spent, crash loop, node gone), go on with the ranks left (event dropped, metric actor_ranks/rollout) instead of failing the job; the job fails when none is left"),
  weight_transfer: z.enum(["auto", "shared_memory", "socket"]).default("auto")
    .describe("how new weights reach the rollout ranks: shared_memory (a /dev/shm segment written once and mapped by every rank; actors on this host only), socket (sent to each rank over its connection), auto (shared_memory when every actor runs on this host and /dev/shm exists)"),
  device,
});

/**
 * Where actors run and how they reach the coordinator. The defaults (local launcher, Unix
 * socket) keep every actor a child process on this machine; `slurm` starts each actor with
 * `srun`, `kubernetes` as a pod, and both need TCP. Address checks are transport.ts's own, so a
 * config error and a Supervisor option error say the same thing.
 */
export const ConfigSchema = z.strictObject({
  data: z.strictObject({
    task: z.enum(["digit_reversal", "sorting", "addition"]).default("digit_reversal")
      .describe("shipped task with a verifiable reward (used when data.train_files is empty)"),
    train_files: paths("JSONL or Parquet files of training rows; empty = the shipped task"),
    val_files: paths("JSONL or Parquet files of held-out rows (needed with train_files)"),
    prompt_key: z.string().min(1).max(256).default("prompt").describe("row key of the prompt: a string, or a list of chat messages {role, content}"),
    answer_key: z.string().min(1).max(256).default("answer").describe("row key of the reference answer the reward compares with"),
    tokenizer: z.string().max(4096).default("")
      .describe("folder with tokenizer.json (and tokenizer_config.json); empty = worker.actor.model.path"),
    chat_template: z.boolean().default(false)
      .describe("render string prompts as one user message through the tokenizer's chat template (message lists always are)"),
    max_line_bytes: int(1024, 1 << 30).default(1 << 20)
      .describe("longest line of a JSON-lines data file in bytes, checked while the file is read (a longer line is refused naming file and line, having cost no more memory than this); also the longest prompt of a .json array or Parquet row"),
    max_prompt_length: int(1, MODEL_LIMITS.context.max).default(512).describe("longest prompt in tokens"),
    truncation: z.enum(["error", "left", "right"]).default("error")
      .describe("a prompt over max_prompt_length: error names the row; left/right cut tokens from that side"),
    filter_overlong_prompts: z.boolean().default(false)
      .describe("drop prompts over max_prompt_length (counted in the job's notes) instead of applying truncation"),
    // The data generator's seed is 32 bits: larger seeds would silently alias smaller ones.
    seed: int(0, 0xffff_ffff).default(1).describe("seed of the generated data set"),
    train_size: int(1, LIMITS.train_size).default(4096).describe("training prompts"),
    val_size: int(1, LIMITS.val_size).default(256).describe("held-out evaluation prompts"),
    min_digits: int(1, LIMITS.digits).default(4).describe("shortest problem"),
    max_digits: int(1, LIMITS.digits).default(4).describe("longest problem"),
    train_batch_size: int(1, LIMITS.batch).default(128).describe("prompts per training step"),
  }).refine((d) => d.min_digits <= d.max_digits, { message: "min_digits must be ≤ max_digits", path: ["min_digits"] })
    .prefault({}),
  reward: z.strictObject({
    name: z.enum(["task", "math", "exact_match"]).default("task")
      .describe("built-in reward: task (the shipped task's, with partial credit), math (final number: GSM8K ####, \\boxed{}, or the last number) or exact_match"),
    module: z.string().max(4096).default("")
      .describe("a module exporting scoreBatch(rows) → number[], score(prompt, response, answer) → number, or verl's compute_score(data_source, solution_str, ground_truth, extra_info), run in its own supervised reward actor; overrides name"),
    concurrency: int(1, 1024).default(8)
      .describe("reward.module: score (or compute_score) calls in flight at once, for async rewards (a judge over HTTP); scores keep row order whatever finishes first"),
    call_deadline_s: seconds(60, "deadline of one reward call (a batch); past it the reward actor is restarted and the call retried"),
  }).prefault({}),
  algorithm: z.strictObject({
    adv_estimator: z.enum(["gae", "grpo", "rloo", "reinforce_plus_plus"]).default("gae")
      .describe("advantage estimator, as verl: gae (with the critic), grpo (group-normalised scores), rloo (leave-one-out baseline within each group) or reinforce_plus_plus (discounted token returns, whitened over the batch); all but gae run without a critic"),
    gamma: z.number().min(0).max(1).default(1.0).describe("discount factor (gae, reinforce_plus_plus)"),
    lam: z.number().min(0).max(1).default(0.95).describe("GAE lambda"),
    kl_coef: z.number().min(0).max(100).default(0.001).describe("KL penalty coefficient against the reference policy; 0 = no reference actor"),
    use_kl_in_reward: z.boolean().default(false)
      .describe("charge the KL penalty in the reward of each response token (gae and reinforce_plus_plus; metric actor/reward_kl_penalty) instead of in the policy loss (actor/kl_loss)"),
    norm_adv_by_std_in_grpo: z.boolean().default(true)
      .describe("GRPO: divide by the group's reward std (true) or only subtract its mean (false)"),
  }).prefault({}),
  worker: z.strictObject({
    actor: ActorWorkerSchema.prefault({}),
    critic: CriticWorkerSchema.prefault({}),
    ref: RefWorkerSchema.prefault({}),
    rollout: RolloutWorkerSchema.prefault({}),
  }).prefault({}),
  trainer: z.strictObject({
    total_steps: int(1, MAX_COUNT).default(400).describe("training steps"),
    total_epochs: int(0, MAX_COUNT).default(0)
      .describe("verl's name for the length of a run: passes over the training prompts; above 0 the job runs ceil(total_epochs × training prompts / data.train_batch_size) steps instead of total_steps; 0 = total_steps decides"),
    seed: z.number().int().min(0).default(42).describe("job seed; every stochastic operation derives its seed from it"),
    run_dir: z.string().min(1).max(4096).default("runs/").describe("each job writes into its own folder under this"),
    logger: z.array(z.enum(["console", "jsonl", "tensorboard", "mlflow"])).default(["console", "jsonl"])
      .describe("metric sinks: console, jsonl (metrics.jsonl), tensorboard (event files in <job>/tensorboard/), mlflow (trainer.mlflow_tracking_uri)"),
    project_name: z.string().min(1).max(256).default("revenant").describe("project: the MLflow experiment the job's run is logged under"),
    experiment_name: z.string().max(256).default("").describe("this run's name in MLflow; empty = the job id"),
    mlflow_tracking_uri: z.string().max(4096).default("").describe("http(s) address of the MLflow tracking server (needed by the mlflow logger)"),
    val_interval: int(0, MAX_COUNT).default(50).describe("steps between evaluations on the held-out prompts (and after the last step); 0 = no validation at all"),
    val_before_train: z.boolean().default(true).describe("evaluate on the held-out prompts before the first step (val/score of step 0); off when val_interval is 0"),
  }).prefault({}),
  checkpoint: z.strictObject({
    interval: int(1, MAX_COUNT).default(50).describe("steps between checkpoints"),
    keep: int(1, LIMITS.keep).default(3).describe("checkpoints kept on disk"),
    save_hf_model: z.enum(["final", "every_checkpoint", "never"]).default("final")
      .describe("llama-family policies: write the trained policy as a Hugging Face folder (<job>/hf_model at the end; with every_checkpoint also <job>/hf_checkpoints/step-<n>, the last `keep` kept)"),
    hf_dtype: z.enum(["auto", "f32", "bf16", "f16"]).default("auto")
      .describe("weight dtype of those folders: auto (the dtype of the folder the policy was loaded from, f32 for a new model), f32 (exact), bf16 or f16 (rounded to nearest even, half the size)"),
  }).prefault({}),
  fault_tolerance: FaultToleranceSchema.prefault({}),
  cluster: ClusterSchema.prefault({}),
});

export type Config = z.output<typeof ConfigSchema>;
export type ConfigInput = z.input<typeof ConfigSchema>;
