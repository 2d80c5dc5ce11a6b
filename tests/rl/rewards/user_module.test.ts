/** User reward modules: loading, the score contract, and refusing anything but a finite number. */
import { describe, expect, test } from "bun:test";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { checkReward, loadRewardModule, RewardError } from "../../../runtime/rl/rewards/user_module.ts";
import { tempDir } from "../../helpers/tmp.ts";

const dir = tempDir("revenant-reward-");
/** Writes a reward module with `source` and returns its path. */
function rewardModule(name: string, source: string): string {
  const path = join(dir, name);
  writeFileSync(path, source);
  return path;
}

describe("loadRewardModule", () => {
  test("a synchronous score and an asynchronous one", async () => {
    const sync = await loadRewardModule(rewardModule("sync.ts",
      "export function score(prompt: string, response: string, answer: string): number { return response.trim() === answer ? 1 : prompt.length / 100; }"));
    expect(await sync.score("2+2=", " 4 ", "4")).toBe(1);
    expect(await sync.score("2+2=", "5", "4")).toBe(0.04);
    expect(sync.path).toBe(join(dir, "sync.ts"));
    const later = await loadRewardModule(rewardModule("async.mjs", "export async function score(p, r, a) { return r === a ? 1 : -1; }"));
    expect(await later.score("p", "x", "y")).toBe(-1);
  });

  const badModules: [string, string, string][] = [
    ["no score export", "export const scores = 1; export function other() {}",
      "must export a function score(prompt, response, answer) returning a number or a promise of one (its score is missing; it exports: other, scores)"],
    ["score that is not a function", "export const score = 1;", "(its score is a number; it exports: score)"],
    ["a default export only", "export default { score: () => 1 };", "(its score is missing; it exports: default)"],
    ["a syntax error", "export function score( {", "failed to load:"],
  ];
  for (const [name, source, message] of badModules) {
    test(`refuses a module with ${name}`, async () => {
      const path = rewardModule(`${name.replaceAll(" ", "_")}.ts`, source);
      const error = await loadRewardModule(path).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(RewardError);
      expect((error as Error).message).toContain(`reward module ${path}`);
      expect((error as Error).message).toContain(message);
    });
  }

  test("refuses a path that does not exist", async () => {
    const error = await loadRewardModule("no/such/reward.ts").catch((e: unknown) => e);
    expect((error as Error).message).toMatch(/^reward module no\/such\/reward\.ts not found \(looked at \/.*no\/such\/reward\.ts\)$/);
  });

  test("a score that throws or returns a bad value is a failure, never a zero", async () => {
    const path = rewardModule("bad_values.ts", [
      "export function score(prompt: string, response: string): unknown {",
      "  if (response === 'throw') throw new Error('judge unavailable');",
      "  return ({ nan: NaN, inf: Infinity, str: '1', none: undefined, nil: null, big: 1n } as Record<string, unknown>)[response];",
      "}",
    ].join("\n"));
    const reward = await loadRewardModule(path);
    await expect(reward.score("p", "throw", "a")).rejects.toThrow(`reward module ${path}: score threw: judge unavailable`);
    const shown: [string, string][] = [["nan", "NaN"], ["inf", "Infinity"], ["str", `the string "1"`], ["none", "missing"], ["nil", "null"], ["big", "an integer"]];
    for (const [response, what] of shown) {
      await expect(reward.score("p", response, "a")).rejects.toThrow(`reward module ${path} returned ${what}; a reward must be a finite number`);
    }
  });
});

describe("checkReward", () => {
  test("passes finite numbers through", () => {
    for (const value of [0, 1, -1, 0.5, 1e9, -0]) expect(checkReward(value)).toBe(value);
  });

  test("refuses everything else, saying what it got", () => {
    const bad: [unknown, string][] = [
      [NaN, "NaN"], [-Infinity, "-Infinity"], ["0.5", `the string "0.5"`], [true, "a boolean"], [{}, "an object"], [[1], "an array"],
      [Promise.resolve(1), "an object"],
    ];
    for (const [value, what] of bad) {
      expect(() => checkReward(value)).toThrow(RewardError);
      expect(() => checkReward(value, "reward r.ts")).toThrow(`reward r.ts returned ${what}; a reward must be a finite number`);
    }
  });
});
