/** User reward modules: loading, the score contract, and refusing anything but a finite number. */
import { describe, expect, test } from "bun:test";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { checkRewardModule } from "../../../runtime/rl/rewards/module_check.ts";
import { checkReward, loadRewardModule, RewardError, type RewardItem } from "../../../runtime/rl/rewards/user_module.ts";
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
      "must export a function scoreBatch(rows), score(prompt, response, answer) or compute_score(data_source, solution_str, ground_truth, extra_info) returning a number (or a promise of one) (it exports: other, scores)"],
    ["score that is not a function", "export const score = 1;", "(its score is a number; it exports: score)"],
    ["a default export only", "export default { score: () => 1 };", "(it exports: default)"],
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

/** Rows whose answers say how many microtask turns their score takes: later rows finish first. */
const rows = (n: number): RewardItem[] => Array.from({ length: n }, (_, i) => ({ prompt: `p${i}`, response: String(i), answer: String(n - i) }));

describe("scoreRows: the exports, concurrency and row order", () => {
  test("async score calls run at most `concurrency` at once, results in row order whichever finished first", async () => {
    const path = rewardModule("pooled.ts", [
      "let inFlight = 0; let most = 0;",
      "export const most_in_flight = () => most;",
      "export async function score(prompt: string, response: string, answer: string): Promise<number> {",
      "  inFlight++; most = Math.max(most, inFlight);",
      "  for (let i = 0; i < Number(answer) * 3; i++) await Promise.resolve();",
      "  inFlight--;",
      "  if (response === '5') throw new Error('judge said no');",
      "  return Number(response) / 10;",
      "}",
    ].join("\n"));
    const reward = await loadRewardModule(path);
    const module = await import(path);
    const out = await reward.scoreRows(rows(12), 3);
    expect(module.most_in_flight()).toBe(3);
    expect(Array.from(out.failed)).toEqual([0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0]);
    expect(Array.from(out.scores)).toEqual(Array.from(new Float32Array([0, 0.1, 0.2, 0.3, 0.4, 0, 0.6, 0.7, 0.8, 0.9, 1, 1.1])));
    expect(out.errors).toEqual([`row 5: reward module ${path}: score threw: judge said no`]);
    // The same rows at another concurrency give the same scores.
    expect(Array.from((await reward.scoreRows(rows(12), 1)).scores)).toEqual(Array.from(out.scores));
  });

  test("scoreBatch gets every row in one call; a throw or a wrong count fails each row with the reason", async () => {
    const path = rewardModule("batch.ts", [
      "export const calls: number[] = [];",
      "export async function scoreBatch(rows: { prompt: string; response: string; answer: string }[]): Promise<unknown[]> {",
      "  calls.push(rows.length);",
      "  if (rows[0]!.prompt === 'boom') throw new Error('batch judge down');",
      "  if (rows[0]!.prompt === 'short') return [1];",
      "  return rows.map((r) => (r.response === '2' ? NaN : Number(r.answer)));",
      "}",
      "export function score(): number { return -1; }",
    ].join("\n"));
    const reward = await loadRewardModule(path);
    expect(reward.uses).toBe("scoreBatch");
    const out = await reward.scoreRows(rows(4), 1);
    expect((await import(path)).calls).toEqual([4]);
    expect(Array.from(out.scores)).toEqual([4, 3, 0, 1]);
    expect(out.errors).toEqual([`row 2: reward module ${path} returned NaN; a reward must be a finite number`]);
    const thrown = await reward.scoreRows([{ prompt: "boom", response: "", answer: "" }, { prompt: "x", response: "", answer: "" }]);
    expect(thrown.errors).toEqual([0, 1].map((i) => `row ${i}: reward module ${path}: scoreBatch threw: batch judge down`));
    const short = await reward.scoreRows([{ prompt: "short", response: "", answer: "" }, { prompt: "x", response: "", answer: "" }]);
    expect(short.errors[0]).toBe(`row 0: reward module ${path}: scoreBatch returned 1 scores for 2 rows; it must return one number per row, in row order`);
  });

  test("verl's compute_score(data_source, solution_str, ground_truth, extra_info): the row's extras, a number or {score}", async () => {
    const path = rewardModule("verl.mjs", [
      "export const seen = [];",
      "export function compute_score(data_source, solution_str, ground_truth, extra_info) {",
      "  seen.push([data_source, extra_info]);",
      "  if (solution_str === 'dict') return { score: 0.5, acc: true };",
      "  return solution_str === ground_truth ? 1 : 0;",
      "}",
    ].join("\n"));
    const reward = await loadRewardModule(path);
    expect(reward.uses).toBe("compute_score");
    const out = await reward.scoreRows([
      { prompt: "p0", response: "4", answer: "4", dataSource: "openai/gsm8k", extraInfo: { index: 3 } },
      { prompt: "p1", response: "dict", answer: "4" },
      { prompt: "p2", response: "5", answer: "4" },
    ], 1);
    expect(Array.from(out.scores)).toEqual([1, 0.5, 0]);
    expect(out.errors).toEqual([]);
    expect((await import(path)).seen).toEqual([["openai/gsm8k", { index: 3, prompt: "p0" }], ["", { prompt: "p1" }], ["", { prompt: "p2" }]]);
  });
});

describe("checkRewardModule: the exports checked in a child process, before a job starts", () => {
  test("a usable module names its export; one without any is refused in one line", async () => {
    expect(await checkRewardModule(rewardModule("ok.ts", "export function score(): number { return 1; }"), 30)).toBe("score");
    const none = rewardModule("none.ts", "console.log('module output is not the answer'); export const scores = 1;");
    const error = await checkRewardModule(none, 30).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(RewardError);
    expect((error as Error).message).toBe(`reward module ${none} must export a function scoreBatch(rows), score(prompt, response, answer) or compute_score(data_source, solution_str, ground_truth, extra_info) returning a number (or a promise of one) (it exports: scores)`);
    const broken = rewardModule("broken.ts", "export function score( {");
    const syntax = await checkRewardModule(broken, 30).catch((e: unknown) => e);
    expect((syntax as Error).message).toStartWith(`reward module ${broken} failed to load: `);
    expect((syntax as Error).message).not.toContain("\n");
  });

  test("the module's top-level code runs in the child, not in the caller", async () => {
    const path = rewardModule("marks.ts", "(globalThis as Record<string, unknown>).__rewardMark = 1; export function score(): number { return 1; }");
    await checkRewardModule(path, 30);
    expect((globalThis as Record<string, unknown>).__rewardMark).toBeUndefined();
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
