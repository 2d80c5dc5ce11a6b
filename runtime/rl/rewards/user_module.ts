/**
 * The contract of a user's reward module: a TypeScript or JavaScript file that exports
 *
 * ```ts
 * export function score(prompt: string, response: string, answer: string): number | Promise<number> {
 *   return response.trim() === answer.trim() ? 1 : 0;
 * }
 * ```
 *
 * `loadRewardModule` imports such a file and checks the export; every score it returns goes
 * through `checkReward`. A reward that throws, or returns anything but a finite number, is a
 * failure reported with the module's path, never read as a zero: a silent zero would train the
 * policy on a broken reward. (The module is meant to run in its own supervised actor, so a
 * reward that hangs or crashes cannot take the trainer down; this file is the part that runs
 * inside it.)
 */
import { existsSync } from "node:fs";
import { resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { describeValue } from "../text/describe_value.ts";

/** What a reward module exports. */
export type ScoreFunction = (prompt: string, response: string, answer: string) => number | Promise<number>;

/** The shape of a reward module. */
export interface RewardModule {
  score: ScoreFunction;
}

/** A loaded reward module: `score` always resolves to a finite number or rejects with a RewardError. */
export interface LoadedRewardModule {
  /** The absolute path it was imported from. */
  path: string;
  score(prompt: string, response: string, answer: string): Promise<number>;
}

/** A reward module that does not load, has no `score`, throws, or returns a bad value. */
export class RewardError extends Error {
  override name = "RewardError";
}

/**
 * Imports the reward module at `path` (relative to the working directory) and checks that it
 * exports a `score` function.
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
    throw new RewardError(`reward module ${path} failed to load: ${(e as Error).message}`, { cause: e });
  }
  const score = module.score;
  if (typeof score !== "function") {
    const exported = Object.keys(module);
    throw new RewardError(`reward module ${path} must export a function score(prompt, response, answer) returning a number ` +
      `or a promise of one (its score is ${describeValue(score)}; it exports: ${exported.length ? exported.join(", ") : "nothing"})`);
  }
  const source = `reward module ${path}`;
  return {
    path: absolute,
    async score(prompt, response, answer) {
      let value: unknown;
      try {
        value = await (score as ScoreFunction)(prompt, response, answer);
      } catch (e) {
        throw new RewardError(`${source}: score threw: ${(e as Error)?.message ?? String(e)}`, { cause: e });
      }
      return checkReward(value, source);
    },
  };
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
