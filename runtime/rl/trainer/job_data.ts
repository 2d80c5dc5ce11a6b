/**
 * The prompts of a job, the tokenizer that reads them and the reward that judges its responses.
 * Two sources:
 *
 * - a shipped task (`data.task`, when `data.train_files` is empty): prompts generated from
 *   `data.seed`, the task's 16-symbol vocabulary, its partial-credit reward (or a built-in
 *   `reward.name` / `reward.module`, judged against the task's answer);
 * - data files (`data.train_files`, `data.val_files`): JSONL or Parquet rows with a prompt and
 *   an answer, a Hugging Face tokenizer (`data.tokenizer`, else the policy's model folder), and
 *   `reward.name` (math, exact_match) or a user `reward.module`.
 *
 * Everything a job needs to know about its data is settled here, before its folder exists: a
 * missing file, a bad row, an overlong prompt or a tokenizer that cannot be read fail the job
 * up front with the file and row named.
 */
import { existsSync } from "node:fs";
import { resolve } from "node:path";
import type { Config } from "../../../config/schema.ts";
import { prepareRows, readDataFiles, type PreparedRows } from "../data/index.ts";
import { builtinReward, type RewardFunction } from "../rewards/builtin_rewards.ts";
import { makeDataset } from "../tasks/dataset.ts";
import { reward as taskReward, TASKS, type Task } from "../tasks/tasks.ts";
import { taskTokenizer } from "../tasks/tokenizer.ts";
import { loadHfTokenizer } from "../text/hf_tokenizer.ts";
import type { TextTokenizer } from "../text/tokenizer.ts";

/** One prompt of a job. */
export interface JobPrompt {
  /** The prompt as text (after any chat template): what rewards and samples see. */
  text: string;
  /** What the policy sees. */
  ids: Int32Array;
  /** The reference answer the reward compares with. */
  answer: string;
  /** verl's `data_source` and `extra_info` of the row, passed to a reward module's compute_score. */
  dataSource?: string;
  extraInfo?: Record<string, unknown>;
}

/** How responses are judged. */
export type RewardSource =
  | { kind: "task"; task: Task }
  | { kind: "builtin"; name: string; fn: RewardFunction }
  | { kind: "module"; path: string };

export interface JobData {
  /** "digit_reversal", or "files" for data files. */
  source: string;
  train: JobPrompt[];
  val: JobPrompt[];
  tokenizer: TextTokenizer;
  reward: RewardSource;
  /** Tokens the longest right answer needs, end token included (shipped tasks only). */
  answerTokens?: number;
  /** What preparing the data did that a user should hear about (dropped or cut prompts). */
  notes: string[];
}

/** The data of a job could not be made: `path` names the config key at fault. */
export class JobDataError extends RangeError {
  override name = "JobDataError";
  constructor(readonly path: string, message: string) {
    super(message);
  }
}

/** The job's data from its config: a shipped task, or data files read and tokenized now. */
export async function loadJobData(config: Config): Promise<JobData> {
  return config.data.train_files.length === 0 ? taskData(config) : await fileData(config);
}

/** The prompts of a job packed for a thread boundary: every id in one transferable array. */
export interface PackedJobData {
  source: string;
  texts: string[];
  answers: string[];
  /** Each prompt's `data_source` and `extra_info` (null where it has none). */
  dataSources: (string | null)[];
  extraInfos: (Record<string, unknown> | null)[];
  /** Token ids of every prompt, training prompts first, back to back. */
  ids: Int32Array;
  /** Where each prompt's ids end in `ids`. */
  ends: Int32Array;
  trainCount: number;
  answerTokens?: number;
  notes: string[];
}

/** What the data worker posts back. */
export type DataWorkerReply = { ok: true; packed: PackedJobData } | { ok: false; name: string; message: string; path?: string };

export function packJobData(d: JobData): PackedJobData {
  const all = [...d.train, ...d.val];
  const ends = new Int32Array(all.length);
  let n = 0;
  all.forEach((p, i) => (ends[i] = n += p.ids.length));
  const ids = new Int32Array(n);
  all.forEach((p, i) => ids.set(p.ids, ends[i]! - p.ids.length));
  return {
    source: d.source, texts: all.map((p) => p.text), answers: all.map((p) => p.answer), ids, ends, trainCount: d.train.length,
    dataSources: all.map((p) => p.dataSource ?? null), extraInfos: all.map((p) => p.extraInfo ?? null),
    ...(d.answerTokens === undefined ? {} : { answerTokens: d.answerTokens }), notes: d.notes,
  };
}

/** The job's data from a packed copy, with its tokenizer and reward made again on this thread. */
export function unpackJobData(config: Config, p: PackedJobData): JobData {
  const prompts = p.texts.map((text, i): JobPrompt => ({
    text, ids: p.ids.subarray(i ? p.ends[i - 1]! : 0, p.ends[i]!), answer: p.answers[i]!, ...promptExtras(p.dataSources[i], p.extraInfos[i]),
  }));
  const task = config.data.train_files.length === 0 ? TASKS[config.data.task] : undefined;
  return {
    source: p.source, train: prompts.slice(0, p.trainCount), val: prompts.slice(p.trainCount),
    tokenizer: task ? taskTokenizer : jobTokenizer(config), reward: rewardSource(config, task),
    ...(p.answerTokens === undefined ? {} : { answerTokens: p.answerTokens }), notes: p.notes,
  };
}

/**
 * `loadJobData` in a worker thread: generating a large task's prompts or tokenizing large files
 * takes seconds, during which a coordinator must keep answering. Errors come back as they were
 * thrown (a JobDataError keeps its key).
 */
export function loadJobDataOffThread(config: Config): Promise<JobData> {
  const worker = new Worker(new URL("./job_data_worker.ts", import.meta.url).href, { type: "module" });
  return new Promise<JobData>((resolve, reject) => {
    worker.onmessage = (e: MessageEvent<DataWorkerReply>) => {
      worker.terminate();
      const r = e.data;
      if (r.ok) {
        try {
          resolve(unpackJobData(config, r.packed));
        } catch (err) {
          reject(err);
        }
        return;
      }
      const err = r.path === undefined ? Object.assign(new RangeError(r.message), { name: r.name }) : new JobDataError(r.path, r.message);
      reject(err);
    };
    worker.onerror = (e: ErrorEvent) => {
      worker.terminate();
      e.preventDefault?.();
      reject(new Error(`the data worker failed: ${e.message}`));
    };
    worker.postMessage(config);
  });
}

/** A shipped task's data: generated, so synchronous. */
export function taskData(config: Config): JobData {
  let dataset;
  try {
    dataset = makeDataset(config.data);
  } catch (e) {
    throw new JobDataError("data", (e as Error).message);
  }
  const prompt = (text: string): JobPrompt => ({ text, ids: Int32Array.from(taskTokenizer.encode(text, { addSpecialTokens: true })), answer: dataset.task.answer(text) });
  return {
    source: config.data.task,
    train: dataset.train.map(prompt),
    val: dataset.val.map(prompt),
    tokenizer: taskTokenizer,
    reward: rewardSource(config, dataset.task),
    answerTokens: dataset.task.maxAnswerLength(config.data.max_digits) + 1,
    notes: [],
  };
}

async function fileData(config: Config): Promise<JobData> {
  const d = config.data;
  if (d.val_files.length === 0) {
    throw new JobDataError("data.val_files", "data.train_files needs data.val_files: held-out rows to measure the policy on (val/score)");
  }
  if (config.reward.name === "task" && !config.reward.module) {
    throw new JobDataError("reward.name", `reward.name=task is the shipped tasks' reward; data files need reward.name=math or exact_match, or a reward.module`);
  }
  const tokenizer = jobTokenizer(config);
  const read = async (key: "train_files" | "val_files") => {
    const rows = await readDataFiles(d[key], { promptKey: d.prompt_key, answerKey: d.answer_key, maxLineBytes: d.max_line_bytes }).catch((e: Error) => {
      throw new JobDataError(`data.${key}`, e.message);
    });
    try {
      return prepareRows(rows, tokenizer, { maxPromptLength: d.max_prompt_length, truncation: d.truncation, filterOverlongPrompts: d.filter_overlong_prompts, chatTemplate: d.chat_template });
    } catch (e) {
      throw new JobDataError(`data.${key}`, (e as Error).message);
    }
  };
  const [train, val] = [await read("train_files"), await read("val_files")];
  for (const [key, set] of [["train_files", train], ["val_files", val]] as const) {
    if (set.rows.length === 0) throw new JobDataError(`data.${key}`, `data.${key} holds no usable rows (${set.dropped} dropped as longer than max_prompt_length=${d.max_prompt_length})`);
  }
  return {
    source: "files",
    train: train.rows.map(jobPrompt),
    val: val.rows.map(jobPrompt),
    tokenizer,
    reward: rewardSource(config, undefined),
    notes: [...preparedNotes("training", train, d.max_prompt_length), ...preparedNotes("held-out", val, d.max_prompt_length)],
  };
}

const jobPrompt = (r: PreparedRows["rows"][number]): JobPrompt => ({ text: r.text, ids: r.ids, answer: r.answer, ...promptExtras(r.dataSource, r.extraInfo) });

/** A prompt's verl extras, present only when the row had them. */
function promptExtras(dataSource: string | null | undefined, extraInfo: Record<string, unknown> | null | undefined): Pick<JobPrompt, "dataSource" | "extraInfo"> {
  return { ...(dataSource == null ? {} : { dataSource }), ...(extraInfo == null ? {} : { extraInfo }) };
}

function preparedNotes(what: string, p: PreparedRows, limit: number): string[] {
  return [
    ...(p.dropped ? [`${p.dropped} ${what} prompts dropped: longer than data.max_prompt_length=${limit}`] : []),
    ...(p.truncated ? [`${p.truncated} ${what} prompts cut to data.max_prompt_length=${limit} tokens`] : []),
  ];
}

/** The tokenizer folder of a file-data job: data.tokenizer, else the policy's model folder. */
export function tokenizerDir(config: Config): string | undefined {
  return config.data.tokenizer || config.worker.actor.model.path || undefined;
}

function jobTokenizer(config: Config): TextTokenizer {
  const dir = tokenizerDir(config);
  if (!dir) {
    throw new JobDataError("data.tokenizer", "data.train_files needs a tokenizer: set data.tokenizer (a folder with tokenizer.json) or worker.actor.model.path");
  }
  const key = config.data.tokenizer ? "data.tokenizer" : "worker.actor.model.path";
  try {
    return loadHfTokenizer(dir);
  } catch (e) {
    throw new JobDataError(key, `${key}=${dir}: ${(e as Error).message}`);
  }
}

function rewardSource(config: Config, task: Task | undefined): RewardSource {
  const r = config.reward;
  if (r.module) {
    const path = resolve(r.module);
    if (!existsSync(path)) throw new JobDataError("reward.module", `reward.module ${r.module} not found (looked at ${path})`);
    return { kind: "module", path };
  }
  if (r.name === "task") return { kind: "task", task: task! };
  return { kind: "builtin", name: r.name, fn: builtinReward(r.name) };
}

/** A response's text up to its first stop token (special tokens left out), and whether it ended there. */
export function responseText(tokenizer: TextTokenizer, ids: ArrayLike<number>): { text: string; ended: boolean } {
  let end = ids.length;
  for (let i = 0; i < ids.length; i++) {
    if (tokenizer.stopIds.includes(ids[i]!)) {
      end = i;
      break;
    }
  }
  const kept = Array.from({ length: end }, (_, i) => ids[i]!);
  return { text: tokenizer.decode(kept, { skipSpecialTokens: true }), ended: end < ids.length };
}

/** The synchronous reward of one response (shipped task or built-in); `undefined` for a reward module. */
export function localReward(source: RewardSource, prompt: JobPrompt, response: { text: string; ended: boolean }): number | undefined {
  if (source.kind === "task") return taskReward(source.task, prompt.text, response.text, response.ended);
  if (source.kind === "builtin") return source.fn(prompt.text, response.text, prompt.answer);
  return undefined;
}
