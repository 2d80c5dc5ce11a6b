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

/** −1 means "forever" for counts of restarts and retries. */
const countOrForever = (dflt: number, what: string) =>
  z.number().int().min(-1).default(dflt).describe(`${what}; -1 = unlimited, 0 = none`);
const seconds = (dflt: number, what: string) =>
  z.number().positive().default(dflt).describe(`${what} (seconds)`);

/**
 * Fault tolerance. The first five keys are exactly the reference's
 * `FaultToleranceConfig(enable_fault_tolerance=True, max_restarts=3, max_task_retries=2,
 * enable_health_monitoring=True, health_check_interval=30.0)`; the rest tune how Revenant
 * detects hangs and paces restarts.
 */
export const FaultToleranceSchema = z.strictObject({
  enable_fault_tolerance: z.boolean().default(true)
    .describe("supervise actors; false fails the job on the first actor death"),
  max_restarts: countOrForever(3, "restarts allowed per actor over its life"),
  max_task_retries: countOrForever(2, "times a call lost to an actor death is retried"),
  enable_health_monitoring: z.boolean().default(true)
    .describe("run health probes and export actor_health/{role}"),
  health_check_interval: z.number().positive().default(30.0)
    .describe("training steps between health probe rounds; below 1 means every step"),
  restart_strategy: z.enum(["one_for_one", "one_for_all"]).default("one_for_one")
    .describe("one_for_one restarts the dead rank alone; one_for_all restarts every rank of its group"),
  restart_backoff_initial_s: seconds(0.01, "delay before restarting an actor; doubles with each restart that made no progress (no call completed since the last)"),
  restart_backoff_max_s: seconds(5, "cap on the exponential restart delay"),
  restart_intensity: z.number().int().min(1).default(10)
    .describe("more than this many restarts of one actor within restart_period_s fails the job"),
  restart_period_s: seconds(60, "window for restart_intensity"),
  call_deadline_s: seconds(600, "default deadline of one actor call; past it the actor is killed as hung"),
  ping_interval_s: seconds(1, "interval between liveness pings to each actor"),
  ping_timeout_s: seconds(10, "an actor that answers no ping for this long is killed as hung"),
  health_check_timeout_s: seconds(10, "time an actor has to answer a health probe"),
  shutdown_grace_s: seconds(5, "time between SIGTERM and SIGKILL when stopping an actor"),
  max_replay_s: seconds(0.1, "recovery budget: a stateful actor is snapshotted in memory whenever replaying its calls since the last snapshot would take longer"),
});

const device = z.enum(["auto", "cpu", "cuda"]).default("auto")
  .describe("compute device: auto uses CUDA when a usable device exists");

/** Transformer sizes shared by the policy, critic and reference. */
export const ModelSchema = z.strictObject({
  context: z.number().int().min(4).max(4096).default(32).describe("maximum sequence length in tokens"),
  width: z.number().int().min(8).max(8192).default(64).describe("model width (embedding size)"),
  layers: z.number().int().min(1).max(64).default(2).describe("transformer blocks"),
  heads: z.number().int().min(1).max(64).default(4).describe("attention heads; must divide width"),
}).refine((m) => m.width % m.heads === 0, { message: "heads must divide width", path: ["heads"] });

const optimizer = (lr: number) => ({
  lr: z.number().positive().max(1).default(lr).describe("AdamW learning rate"),
  weight_decay: z.number().min(0).default(0).describe("AdamW weight decay"),
  grad_clip: z.number().positive().default(1.0).describe("global gradient-norm clip"),
  ppo_epochs: z.number().int().min(1).default(1).describe("passes over each batch"),
  ppo_mini_batch_size: z.number().int().min(1).default(128).describe("samples per optimizer step"),
  device,
});

export const ActorWorkerSchema = z.strictObject({
  model: ModelSchema.prefault({}),
  ...optimizer(1e-3),
  clip_ratio: z.number().positive().max(1).default(0.2).describe("PPO ratio clip epsilon"),
  entropy_coeff: z.number().min(0).default(0.01).describe("entropy bonus coefficient"),
  temperature: z.number().positive().default(1.0).describe("rollout sampling temperature"),
  max_new_tokens: z.number().int().min(1).default(5).describe("response length limit"),
  rollout_n: z.number().int().min(1).default(1).describe("responses sampled per prompt (GRPO group size)"),
});

export const CriticWorkerSchema = z.strictObject({
  model: ModelSchema.prefault({}),
  // The critic starts from nothing and must track a moving policy: it learns faster.
  ...optimizer(3e-3),
  cliprange_value: z.number().positive().default(0.5).describe("value clip range"),
});

export const RefWorkerSchema = z.strictObject({ device });

export const ConfigSchema = z.strictObject({
  data: z.strictObject({
    task: z.enum(["digit_reversal", "sorting", "addition"]).default("digit_reversal")
      .describe("shipped task with a verifiable reward"),
    seed: z.number().int().min(0).default(1).describe("seed of the generated data set"),
    train_size: z.number().int().min(1).default(4096).describe("training prompts"),
    val_size: z.number().int().min(1).default(256).describe("held-out evaluation prompts"),
    min_digits: z.number().int().min(1).default(4).describe("shortest problem"),
    max_digits: z.number().int().min(1).default(4).describe("longest problem"),
    train_batch_size: z.number().int().min(1).default(128).describe("prompts per training step"),
  }).refine((d) => d.min_digits <= d.max_digits, { message: "min_digits must be ≤ max_digits", path: ["min_digits"] })
    .prefault({}),
  algorithm: z.strictObject({
    adv_estimator: z.enum(["gae", "grpo"]).default("gae").describe("advantage estimator"),
    gamma: z.number().min(0).max(1).default(1.0).describe("discount factor"),
    lam: z.number().min(0).max(1).default(0.95).describe("GAE lambda"),
    kl_coef: z.number().min(0).default(0.001).describe("KL penalty coefficient against the reference policy"),
    norm_adv_by_std_in_grpo: z.boolean().default(true)
      .describe("GRPO: divide by the group's reward std (true) or only subtract its mean (false)"),
  }).prefault({}),
  worker: z.strictObject({
    actor: ActorWorkerSchema.prefault({}),
    critic: CriticWorkerSchema.prefault({}),
    ref: RefWorkerSchema.prefault({}),
  }).prefault({}),
  trainer: z.strictObject({
    total_steps: z.number().int().min(1).default(400).describe("training steps"),
    seed: z.number().int().min(0).default(42).describe("job seed; every stochastic operation derives its seed from it"),
    run_dir: z.string().min(1).default("runs/").describe("each job writes into its own folder under this"),
    logger: z.array(z.enum(["console", "jsonl"])).default(["console", "jsonl"]).describe("metric sinks"),
    val_interval: z.number().int().min(0).default(50).describe("steps between evaluations; 0 = never"),
  }).prefault({}),
  checkpoint: z.strictObject({
    interval: z.number().int().min(1).default(50).describe("steps between checkpoints"),
    keep: z.number().int().min(1).default(3).describe("checkpoints kept on disk"),
  }).prefault({}),
  fault_tolerance: FaultToleranceSchema.prefault({}),
});

export type FaultTolerance = z.output<typeof FaultToleranceSchema>;
export type Config = z.output<typeof ConfigSchema>;
export type ConfigInput = z.input<typeof ConfigSchema>;
