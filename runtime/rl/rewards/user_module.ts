/**
 * The contract of a user's reward module: a TypeScript or JavaScript file that exports one of
 * (the first found is used, in this order):
 *
 * ```ts
 * // all rows of a call at once (a batched judge): one score per row, in row order
 * export async function scoreBatch(rows: { prompt: string; response: string; answer: string }[]): Promise<number[]>;
 * // one row at a time; async ones run up to reward.concurrency at once
 * export function score(prompt: string, response: string, answer: string): number | Promise<number>;
 * // verl's signature: a number, or an object with a numeric `score`; data_source and extra_info
 * // are the row's (from its data file; "" and {} when it has none), extra_info with the prompt added
 * export function compute_score(data_source: string, solution_str: string, ground_truth: string, extra_info?: object): number | { score: number };
 * ```
 *
 * `loadRewardModule` imports such a file and picks the export; every score it returns goes
 * through `checkReward`. A reward that throws, or returns anything but a finite number, is a
 * failure reported with the module's path, never read as a zero: a silent zero would train the
 * policy on a broken reward. (The module runs in its own supervised actor, so a reward that
 * hangs or crashes cannot take the trainer down; this file is the part that runs inside it.)
 */
import { existsSync } from "node:fs";
import { resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { describeValue } from "../text/describe_value.ts";

/** A per-row reward export. */
export type ScoreFunction = (prompt: string, response: string, answer: string) => number | Promise<number>;
/** A batched reward export. */
export type ScoreBatchFunction = (rows: RewardItem[]) => unknown[] | Promise<unknown[]>;
/** verl's reward export. */
export type ComputeScoreFunction = (dataSource: string, solutionStr: string, groundTruth: string, extraInfo?: Record<string, unknown>) => unknown;

/** The shape of a reward module (one of the three). */
export interface RewardModule {
  score?: ScoreFunction;
  scoreBatch?: ScoreBatchFunction;
  compute_score?: ComputeScoreFunction;
}

/** The exports a reward module may use, in the order they are looked for. */
export const REWARD_EXPORTS = ["scoreBatch", "score", "compute_score"] as const;
export type RewardExport = (typeof REWARD_EXPORTS)[number];

/** One response to judge. */
export interface RewardItem {
  prompt: string;
  response: string;
  answer: string;
  /** verl's `data_source` of the row, when its data file has one. */
  dataSource?: string;
  /** verl's `extra_info` of the row, when its data file has one. */
  extraInfo?: Record<string, unknown>;
}

/** Scores of a batch: `failed[i]` = 1 where row i has no score (its reason in `errors`). */
export interface RewardScores {
  scores: Float32Array;
  failed: Uint8Array;
  /** "row i: reason" for each failed row, in row order. */
  errors: string[];
}

/** Parallel `score` calls when none is configured (`reward.concurrency`). */
export const DEFAULT_REWARD_CONCURRENCY = 8;

/** A loaded reward module. */
export interface LoadedRewardModule {
  /** The absolute path it was imported from. */
  path: string;
  /** The export in use. */
  uses: RewardExport;
  /** One row's score: a finite number, or a rejection with a RewardError. */
  score(prompt: string, response: string, answer: string): Promise<number>;
  /**
   * Every row's score, in row order; at most `concurrency` per-row calls run at once (a batch
   * export is one call). Failures are per row; the result does not depend on which call ended first.
   */
  scoreRows(items: readonly RewardItem[], concurrency?: number): Promise<RewardScores>;
}

/** A reward module that does not load, has no usable export, throws, or returns a bad value. */
export class RewardError extends Error {
  override name = "RewardError";
}

/** What a module must export, in one line (for errors). */
export const REWARD_CONTRACT = "a function scoreBatch(rows), score(prompt, response, answer) or compute_score(data_source, solution_str, ground_truth, extra_info) returning a number (or a promise of one)";

/** Which export a module's exports offer, or a RewardError naming what it exports instead. */
export function rewardExportOf(module: Record<string, unknown>, path: string): RewardExport {
  const found = REWARD_EXPORTS.find((name) => typeof module[name] === "function");
  if (found) return found;
  const exported = Object.keys(module);
  const wrong = REWARD_EXPORTS.filter((name) => module[name] !== undefined).map((name) => `its ${name} is ${describeValue(module[name])}`);
  throw new RewardError(`reward module ${path} must export ${REWARD_CONTRACT} (${wrong.length ? `${wrong.join(", ")}; ` : ""}it exports: ${exported.length ? exported.join(", ") : "nothing"})`);
}

/**
 * Imports the reward module at `path` (relative to the working directory) and picks its export.
 *
 * @example
 * ```ts
 * const reward = await loadRewardModule("rewards/my_reward.ts");
 * await reward.score("2+2=", "4", "4"); // 1
 * ```
 */
export async function loadRewardModule(path: string): Promise<LoadedRewardModule> {
  const absolute = resolve(path);
  if (!existsSync(absolute)) throw new RewardError(`reward module ${path} not found (looked at ${absolute})`);
  let module: Record<string, unknown>;
  try {
    module = await import(pathToFileURL(absolute).href);
  } catch (e) {
    throw new RewardError(`reward module ${path} failed to load: ${(e as Error)?.message ?? String(e)}`, { cause: e });
  }
  const uses = rewardExportOf(module, path);
  const source = `reward module ${path}`;
  const one = rowScorer(module, uses, source);
  return {
    path: absolute,
    uses,
    score: (prompt, response, answer) => one({ prompt, response, answer }),
    scoreRows: (items, concurrency = DEFAULT_REWARD_CONCURRENCY) =>
      uses === "scoreBatch" ? batchScores(module.scoreBatch as ScoreBatchFunction, items, source) : pooledScores(one, items, concurrency),
  };
}

/** One row's score through the module's export (a batch export is called with that row alone). */
function rowScorer(module: Record<string, unknown>, uses: RewardExport, source: string): (item: RewardItem) => Promise<number> {
  const call = (item: RewardItem): unknown => {
    if (uses === "score") return (module.score as ScoreFunction)(item.prompt, item.response, item.answer);
    if (uses === "compute_score") {
      return (module.compute_score as ComputeScoreFunction)(item.dataSource ?? "", item.response, item.answer, { ...item.extraInfo, prompt: item.prompt });
    }
    return Promise.resolve((module.scoreBatch as ScoreBatchFunction)([item])).then((out) => (Array.isArray(out) ? out[0] : out));
  };
  return async (item) => {
    let value: unknown;
    try {
      value = await call(item);
    } catch (e) {
      throw new RewardError(`${source}: ${uses} threw: ${(e as Error)?.message ?? String(e)}`, { cause: e });
    }
    // verl's compute_score may return a dict whose "score" is the reward.
    if (uses === "compute_score" && typeof value === "object" && value !== null && "score" in value) value = (value as { score: unknown }).score;
    return checkReward(value, source);
  };
}

/** Per-row calls, at most `concurrency` in flight; each result lands at its row's index. */
async function pooledScores(one: (item: RewardItem) => Promise<number>, items: readonly RewardItem[], concurrency: number): Promise<RewardScores> {
  const results: Array<number | Error> = new Array(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      try {
        results[i] = await one(items[i]!);
      } catch (e) {
        results[i] = e as Error;
      }
    }
  };
  const width = Math.max(1, Math.min(Math.floor(concurrency) || 1, items.length));
  await Promise.all(Array.from({ length: width }, worker));
  return collect(results);
}

/** One call for all rows; a call that throws or returns the wrong count fails every row with that reason. */
async function batchScores(fn: ScoreBatchFunction, items: readonly RewardItem[], source: string): Promise<RewardScores> {
  let out: unknown;
  try {
    out = await fn(items.map((i) => ({ ...i })));
  } catch (e) {
    return collect(items.map(() => new RewardError(`${source}: scoreBatch threw: ${(e as Error)?.message ?? String(e)}`)));
  }
  if (!Array.isArray(out) || out.length !== items.length) {
    const got = Array.isArray(out) ? `${out.length} scores` : describeValue(out);
    return collect(items.map(() => new RewardError(`${source}: scoreBatch returned ${got} for ${items.length} rows; it must return one number per row, in row order`)));
  }
  return collect(out.map((value) => {
    try {
      return checkReward(value, source);
    } catch (e) {
      return e as Error;
    }
  }));
}

/** Scores and failures in row order. */
function collect(results: ReadonlyArray<number | Error>): RewardScores {
  const out: RewardScores = { scores: new Float32Array(results.length), failed: new Uint8Array(results.length), errors: [] };
  results.forEach((r, i) => {
    if (typeof r === "number") out.scores[i] = r;
    else {
      out.failed[i] = 1;
      out.errors.push(`row ${i}: ${r.message}`);
    }
  });
  return out;
}

/**
 * `value` when it is a finite number; otherwise a RewardError saying what `source` returned.
 *
 * @example
 * ```ts
 * checkReward(0.5); // 0.5
 * checkReward(NaN, "reward module r.ts"); // throws: reward module r.ts returned NaN; a reward must be a finite number
 * ```
 */
export function checkReward(value: unknown, source = "the reward"): number {
  if (typeof value === "number" && Number.isFinite(value)) return value;
  const shown = typeof value === "number" ? String(value) : typeof value === "string" ? `the string ${JSON.stringify(value)}` : describeValue(value);
  throw new RewardError(`${source} returned ${shown}; a reward must be a finite number`);
}
