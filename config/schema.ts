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
import { checkHost, parseHostPort } from "../runtime/core/ipc/transport.ts";

/**
 * Bounds, kept here once: the README's configuration reference and every error message are
 * generated from the schema, so they always say what is enforced.
 *
 * Durations run from a timer's resolution (1 ms) to one week. The upper bound keeps every
 * timer far below 2^31−1 ms (24.8 days), past which setTimeout overflows and fires at once.
 */
export const DURATION_S = { min: 0.001, max: 604_800 } as const;
/** Steps, step intervals and restart/retry counts: more than a million is a typo, not a plan. */
export const MAX_COUNT = 1_000_000;
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

const int = (min: number, max: number) => z.number().int().min(min).max(max);
/** A file path or a list of them (at most 1024); always a list once parsed. */
const paths = (what: string) =>
  z.union([z.string().min(1).max(4096), z.array(z.string().min(1).max(4096)).max(1024)])
    .transform((v) => (typeof v === "string" ? [v] : v)).default([]).describe(what);
/** A model size: bounds and default from native/model_limits.json, shared with the addon. */
const modelSize = (key: ModelSize) => int(MODEL_LIMITS[key].min, MODEL_LIMITS[key].max).default(MODEL_LIMITS[key].default);
/** −1 means "forever" for counts of restarts and retries. */
const countOrForever = (dflt: number, what: string) =>
  int(-1, MAX_COUNT).default(dflt).describe(`${what}; -1 = unlimited, 0 = none`);
const seconds = (dflt: number, what: string) =>
  z.number().min(DURATION_S.min).max(DURATION_S.max).default(dflt).describe(`${what} (seconds)`);

/**
 * A cross-field rule `high > low` between two keys of one section. The issue sits on `high` and
 * names `low` in `params`, so config/load.ts can say where each of the two values came from.
 */
function greaterThan<K extends string>(high: K, low: K, why: string) {
  return (v: Record<K, number>, ctx: z.RefinementCtx) => {
    if (v[high] > v[low]) return;
    ctx.addIssue({
      code: "custom",
      path: [high],
      message: `must be greater than ${low} = ${v[low]}: ${why}`,
      params: { than: low, thanValue: v[low], value: v[high], why },
    });
  };
}

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
  health_check_interval: z.number().positive().max(MAX_COUNT).default(30.0)
    .describe("training steps between health probe rounds; below 1 means every step"),
  restart_strategy: z.enum(["one_for_one", "one_for_all"]).default("one_for_one")
    .describe("one_for_one restarts the dead rank alone; one_for_all restarts every rank of its group"),
  restart_backoff_initial_s: seconds(0.01, "delay before restarting an actor; doubles with each restart that made no progress (no call completed since the last)"),
  restart_backoff_max_s: seconds(5, "cap on the exponential restart delay"),
  restart_intensity: int(1, MAX_COUNT).default(10)
    .describe("more than this many restarts of one actor within restart_period_s fails the job"),
  restart_period_s: seconds(60, "window for restart_intensity"),
  call_deadline_s: seconds(600, "default deadline of one actor call; past it the actor is killed as hung"),
  ping_interval_s: seconds(1, "interval between liveness pings to each actor"),
  ping_timeout_s: seconds(10, "an actor that answers no ping for this long is killed as hung"),
  health_check_timeout_s: seconds(10, "time an actor has to answer a health probe"),
  shutdown_grace_s: seconds(5, "time between SIGTERM and SIGKILL when stopping an actor"),
  max_replay_s: seconds(0.1, "recovery budget: a stateful actor is snapshotted in memory whenever replaying its calls since the last snapshot would take longer"),
}).superRefine(greaterThan("ping_timeout_s", "ping_interval_s",
  "an actor answers one ping per interval, so a shorter timeout kills healthy actors; raise ping_timeout_s or lower ping_interval_s"));

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

/** verl's aggregations of the policy loss (roles/loss_agg.ts turns each into loss weights). */
export const LOSS_AGG_MODES = ["token-mean", "seq-mean-token-sum", "seq-mean-token-mean", "seq-mean-token-sum-norm"] as const;

export const ActorWorkerSchema = z.strictObject({
  model: ModelSchema.prefault({}),
  ...optimizer(1e-3),
  clip_ratio: z.number().positive().max(1).default(0.2).describe("PPO ratio clip epsilon"),
  entropy_coeff: z.number().min(0).max(100).default(0.05).describe("entropy bonus coefficient"),
  temperature: z.number().positive().max(100).default(1.0).describe("rollout sampling temperature"),
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
const CLUSTER_LAUNCHERS = ["local", "slurm", "kubernetes"] as const;
/** The shipped roles by name: per-role GPU counts and home nodes. */
const CLUSTER_ROLES = ["actor_rollout", "critic", "ref_policy", "reward", "rollout"] as const;
/** srun options the Slurm launcher sets itself; a user value would break placement or the environment. */
export const SRUN_RESERVED = [
  "--export", "--nodelist", "-w", "--exclude", "-x", "--ntasks", "-n", "--nodes", "-N", "--jobid", "--overlap", "--gpus", "-G", "--job-name", "-J",
  "--partition", "-p", "--verbose", "-v", "--quiet", "-Q", "--output", "-o", "--error", "-e", "--input", "-i",
] as const;
/** A Kubernetes quantity (`500m`, `2`, `4Gi`); empty = none. */
const K8S_QUANTITY = /^$|^[0-9]+(\.[0-9]+)?(m|k|M|G|T|P|E|Ki|Mi|Gi|Ti|Pi|Ei)?$/;
/** A Kubernetes label key=value, as in a nodeSelector. */
const K8S_LABEL = /^(?:[a-z0-9]([-a-z0-9.]*[a-z0-9])?\/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?=(?:[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?$/;
const K8S_NAME = /^$|^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;

/** An address check from transport.ts as a zod refinement: its message names the key's value and what is allowed. */
function addressCheck(check: (v: string) => unknown, allowed: string) {
  return (v: string, ctx: z.RefinementCtx) => {
    if (v === "") return;
    try {
      check(v);
    } catch (e) {
      ctx.addIssue({ code: "custom", message: `${(e as Error).message}; allowed: ${allowed}` });
    }
  };
}

/** A string format as a refinement: a custom issue says what is allowed (a plain regex would only say "a string"). */
function matching(pattern: RegExp, allowed: string) {
  return (v: string, ctx: z.RefinementCtx) => {
    if (!pattern.test(v)) ctx.addIssue({ code: "custom", message: `expected ${allowed}, got ${JSON.stringify(v)}` });
  };
}

function srunArgCheck(arg: string, ctx: z.RefinementCtx): void {
  const name = arg.split("=")[0]!;
  if (!(SRUN_RESERVED as readonly string[]).includes(name)) return;
  ctx.addIssue({
    code: "custom",
    message: `${name} is set by the Slurm launcher (placement, environment, output); allowed: any other srun option, such as --mem=16G or --cpus-per-task=4 (the partition is cluster.slurm.partition, nodes cluster.slurm.nodes)`,
  });
}

const gpuCount = (role: string) => int(0, 64).default(0).describe(`GPUs for each ${role} actor (srun --gpus, or the pod's nvidia.com/gpu limit); 0 = none`);
const NODE_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]*$/;
const nodeName = () => z.string().max(253).superRefine(matching(NODE_NAME, "a node name (letters, digits, _ . -)"));
const placeNode = (role: string) => z.string().max(253).superRefine(matching(new RegExp(`^$|${NODE_NAME.source}`), "a node name (letters, digits, _ . -) or empty"))
  .default("").describe(`home node of each ${role} actor, while Slurm calls it usable (one of cluster.slurm.nodes, or of the allocation); empty = actors spread over the nodes`);

export const ClusterSchema = z.strictObject({
  launcher: z.enum(CLUSTER_LAUNCHERS).default("local")
    .describe("how actors are started: local (child processes), slurm (srun, inside an allocation or as jobs of their own) or kubernetes (a pod each)"),
  transport: z.enum(["auto", "unix", "tcp"]).default("auto")
    .describe("how actors connect back: unix (this machine only), tcp, or auto (unix for the local launcher, tcp otherwise)"),
  listen: z.string().max(300).default("").superRefine(addressCheck(parseHostPort, "host:port, IPv6 in brackets ([::1]:7070), port 0 = any free port"))
    .describe("TCP address the coordinator listens on for actors (host:port, port 0 = any); empty = 127.0.0.1:0 with the local launcher, 0.0.0.0:0 otherwise"),
  advertise: z.string().max(253).default("")
    .superRefine(addressCheck((v) => {
      checkHost(v, "the advertised host");
      if (v === "0.0.0.0" || v === "::") throw new Error(`the advertised host must be one actors can connect to, not the wildcard ${v}`);
    }, "a host name or IP address of this machine that actors can reach"))
    .describe("host actors are told to connect to; empty = the listen host, or this machine's host name when that is a wildcard and actors run elsewhere"),
  tls_cert: z.string().max(4096).default("").describe("PEM certificate the coordinator presents to actors (TCP only; with tls_key); empty = no TLS"),
  tls_key: z.string().max(4096).default("").describe("PEM private key of tls_cert"),
  tls_ca: z.string().max(4096).default("").describe("PEM certificates actors trust to verify the coordinator; empty = tls_cert itself (self-signed)"),
  gpus: z.strictObject(Object.fromEntries(CLUSTER_ROLES.map((r) => [r, gpuCount(r)])) as Record<(typeof CLUSTER_ROLES)[number], ReturnType<typeof gpuCount>>).prefault({}),
  slurm: z.strictObject({
    partition: z.string().max(256).superRefine(matching(/^[A-Za-z0-9_.-]*$/, "a Slurm partition name (letters, digits, _ . -)")).default("")
      .describe("partition of the jobs srun makes outside an allocation; empty = the cluster's default (inside an allocation, the allocation's)"),
    nodes: z.array(nodeName()).max(4096).default([])
      .describe("nodes to place actors on, in order (actors spread over them, a lost node's actors move to the next); empty = the allocation's nodes, or Slurm's choice outside one"),
    place: z.strictObject(Object.fromEntries(CLUSTER_ROLES.map((r) => [r, placeNode(r)])) as Record<(typeof CLUSTER_ROLES)[number], ReturnType<typeof placeNode>>).prefault({}),
    srun_args: z.array(z.string().min(1).max(1024).superRefine(srunArgCheck)).max(64).default([])
      .describe("extra srun options for every actor, e.g. [--mem=16G, --cpus-per-task=4]"),
  }).prefault({}),
  kubernetes: z.strictObject({
    image: z.string().max(1024).default("").describe("container image of actor pods (the coordinator's own image: same paths); needed by the kubernetes launcher"),
    namespace: z.string().max(63).superRefine(matching(K8S_NAME, "a Kubernetes namespace name (lowercase letters, digits, -)")).default("")
      .describe("namespace of actor pods; empty = the coordinator pod's own"),
    api_server: z.string().max(1024).superRefine(matching(/^$|^https?:\/\/\S+$/, "an http(s) URL such as https://kubernetes.default.svc")).default("")
      .describe("Kubernetes API server URL; empty = in-cluster (KUBERNETES_SERVICE_HOST and _PORT)"),
    token_file: z.string().max(4096).default("").describe("bearer token file for the API server; empty = the pod's service account token"),
    service_account: z.string().max(253).superRefine(matching(K8S_NAME, "a Kubernetes service account name (lowercase letters, digits, -)")).default("")
      .describe("service account of actor pods; empty = the namespace's default"),
    node_selector: z.array(z.string().max(317).superRefine(matching(K8S_LABEL, "a label key=value, e.g. nvidia.com/gpu.present=true"))).max(64).default([])
      .describe("labels an actor pod's node must carry, as key=value"),
    cpu: z.string().max(32).superRefine(matching(K8S_QUANTITY, "a Kubernetes quantity such as 500m or 2")).default("").describe("CPU request and limit of each actor pod; empty = none"),
    memory: z.string().max(32).superRefine(matching(K8S_QUANTITY, "a Kubernetes quantity such as 4Gi")).default("").describe("memory request and limit of each actor pod; empty = none"),
  }).prefault({}),
}).superRefine(clusterRules);

type ClusterShape = {
  launcher: (typeof CLUSTER_LAUNCHERS)[number];
  transport: "auto" | "unix" | "tcp";
  listen: string;
  advertise: string;
  tls_cert: string;
  tls_key: string;
  tls_ca: string;
  kubernetes: { image: string };
  slurm: { nodes: string[]; place: Record<string, string> };
};

/** The port of a listen address; 0 when empty, undefined when unreadable (its own issue says why). */
function listenPort(listen: string): number | undefined {
  try {
    return listen === "" ? 0 : parseHostPort(listen).port;
  } catch {
    return undefined;
  }
}

/** Rules between the keys of `cluster`: each issue names the key to change and what it may be. */
function clusterRules(c: ClusterShape, ctx: z.RefinementCtx): void {
  const issue = (path: (string | number)[], message: string) => ctx.addIssue({ code: "custom", path, message });
  const tcp = c.transport === "tcp" || (c.transport === "auto" && c.launcher !== "local");
  if (c.transport === "unix" && c.launcher !== "local") {
    issue(["transport"], `unix reaches actors on this machine only, and the ${c.launcher} launcher starts them elsewhere; allowed with it: tcp or auto`);
  }
  const tcpOnly = (["listen", "advertise", "tls_cert", "tls_key", "tls_ca"] as const).find((k) => c[k] !== "");
  if (!tcp && tcpOnly) {
    issue([tcpOnly], "is a TCP setting, and actors use the Unix socket here; set cluster.transport to tcp (or a launcher other than local)");
  }
  if (c.tls_cert && !c.tls_key) issue(["tls_key"], "is needed with tls_cert: the private key of that certificate");
  if (c.tls_key && !c.tls_cert) issue(["tls_cert"], "is needed with tls_key: the certificate that key belongs to");
  const nodes = c.slurm.nodes;
  for (const [role, node] of Object.entries(c.slurm.place)) {
    if (node && nodes.length > 0 && !nodes.includes(node)) issue(["slurm", "place", role], `${node} is not in cluster.slurm.nodes; allowed: ${nodes.join(", ")}`);
  }
  if (c.launcher === "kubernetes") {
    if (!c.kubernetes.image) issue(["kubernetes", "image"], "is needed by the kubernetes launcher: the image actor pods run (the coordinator's own)");
    if (listenPort(c.listen) === 0) {
      issue(["listen"], "needs a fixed port with the kubernetes launcher (the port the coordinator's Service forwards to actors), e.g. 0.0.0.0:7070; port 0 is any free port");
    }
  }
}

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

export type FaultTolerance = z.output<typeof FaultToleranceSchema>;
export type Cluster = z.output<typeof ClusterSchema>;
export type Config = z.output<typeof ConfigSchema>;
export type ConfigInput = z.input<typeof ConfigSchema>;
