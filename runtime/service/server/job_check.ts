/**
 * The fit check of POST /jobs, computed from the configuration alone: the same limits the
 * trainer's JobPlan enforces (response budget, context length, GRPO group size, data set size),
 * without generating the data set. Generating it (`checkJobConfig`) costs time in proportion to
 * `data.train_size` on the event loop; this costs a few arithmetic operations, so a request
 * never holds the coordinator up however large the sizes it asks for.
 *
 * Bounds instead of samples: the longest prompt is the longest the task can make, not the
 * longest one drawn, so a context that fits only because no longest prompt happened to be drawn
 * is refused here (the trainer would accept it). A data set is refused when the task cannot
 * make that many distinct held-out prompts, or when so few prompts remain outside them that the
 * trainer's generator would run out of attempts on average; a borderline one it accepts can
 * still fail when the job starts, with the generator's message.
 *
 * @example
 * ```ts
 * checkJobFits(config); // throws JobConfigError naming the key, like the trainer
 * ```
 */
import { existsSync } from "node:fs";
import { ConfigSchema, type Config } from "../../../config/schema.ts";
import { ATTEMPTS_PER_PROMPT } from "../../rl/tasks/dataset.ts";
import { TASKS } from "../../rl/tasks/tasks.ts";
import { promptTokens } from "../../rl/tasks/tokenizer.ts";
import { checkContext, checkGroupSize, checkResponseBudget, JobConfigError } from "../../rl/trainer/job_limits.ts";

/** The cluster section every request's job gets: the coordinator alone decides where actors run. */
const CLUSTER_DEFAULTS = ConfigSchema.parse({}).cluster;

/** Tokens a prompt gets besides its text (the BOS token). */
const PROMPT_EXTRA_TOKENS = promptTokens("").length;


/**
 * Throws JobConfigError (path and message) if the configuration cannot run; never generates or
 * reads data. A job on data files or a model folder is checked for what a stat can tell (the
 * files exist); its rows, tokenizer and model are read when it starts, off the request path,
 * and a problem there fails the job with the file named.
 */
export function checkJobFits(config: Config): void {
  if (config.reward.module) {
    throw new JobConfigError("reward.module", "reward.module runs the code of a module named in the request, which the coordinator refuses; " +
      "use reward.name (math, exact_match), or run the job with `bun run train`");
  }
  if (JSON.stringify(config.cluster) !== JSON.stringify(CLUSTER_DEFAULTS)) {
    throw new JobConfigError("cluster", "cluster settings (launcher, addresses, TLS files, srun arguments, the Kubernetes API) are the coordinator " +
      "operator's, not a request's: leave the cluster section out of the job; jobs run where the coordinator runs them");
  }
  const files = usedPaths(config);
  for (const [key, path] of files) {
    if (!existsSync(path)) throw new JobConfigError(key, `${key}: ${path} does not exist on the coordinator's machine`);
  }
  if (config.data.train_files.length > 0) return;
  checkDataSize(config);
  if (files.length === 0) checkShapes(config);
}

/** The files and folders a config names, with their keys. */
function usedPaths(config: Config): Array<[string, string]> {
  const { data, worker } = config;
  return [
    ...data.train_files.map((f): [string, string] => ["data.train_files", f]),
    ...data.val_files.map((f): [string, string] => ["data.val_files", f]),
    ...(data.tokenizer ? [["data.tokenizer", data.tokenizer] as [string, string]] : []),
    ...(["actor", "critic"] as const).filter((r) => worker[r].model.path).map((r): [string, string] => [`worker.${r}.model.path`, worker[r].model.path]),
  ];
}

function checkDataSize(config: Config): void {
  const d = config.data;
  const task = TASKS[d.task];
  const distinct = task.distinctPrompts(d.min_digits, d.max_digits);
  const what = `${d.task} with ${d.min_digits}-${d.max_digits} digits has ${distinct} distinct prompts`;
  if (d.val_size >= distinct) {
    throw new JobConfigError("data.val_size", `data: cannot make ${d.val_size} held-out prompts and training prompts outside them: ${what}; ` +
      "lower data.val_size or raise data.max_digits");
  }
  // Each training draw lands outside the held-out set with probability (distinct - val) / distinct.
  const expectedTrain = (ATTEMPTS_PER_PROMPT * (d.val_size + d.train_size) * (distinct - d.val_size)) / distinct;
  if (expectedTrain < d.train_size) {
    throw new JobConfigError("data.train_size", `data: cannot draw ${d.train_size} training prompts outside ${d.val_size} held-out ones: ${what}; ` +
      "lower data.train_size/data.val_size or raise data.max_digits");
  }
}

/** The limits of the trainer's JobPlan (job_limits.ts), with the task's longest prompt instead of the drawn one. */
function checkShapes(config: Config): void {
  const { data, worker } = config;
  const task = TASKS[data.task];
  checkResponseBudget(config, task.maxAnswerLength(data.max_digits) + 1);
  const longestPrompt = task.maxPromptLength(data.max_digits) + PROMPT_EXTRA_TOKENS;
  for (const role of ["actor", "critic"] as const) checkContext(role, worker[role].model.context, longestPrompt, worker.actor.max_new_tokens);
  checkGroupSize(config);
}
