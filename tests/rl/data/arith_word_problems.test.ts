/** The shipped arithmetic word problems: regenerated from their seed, distinct, held-out apart, answers right. */
import { describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { makeArithWordProblems, SHIPPED, toJsonLines } from "../../../examples/data/make_arith_word_problems.ts";
import { longestPromptLength, prepareRows, readDataFiles } from "../../../runtime/rl/data/index.ts";
import { builtinReward } from "../../../runtime/rl/rewards/builtin_rewards.ts";
import { loadHfTokenizer } from "../../../runtime/rl/text/index.ts";

const DIR = join(import.meta.dir, "..", "..", "..", "examples", "data", "arith_word_problems");
const shipped = makeArithWordProblems(SHIPPED.seed, SHIPPED.trainSize, SHIPPED.valSize);

describe("examples/data/arith_word_problems", () => {
  test("the shipped files are what the generator makes from their seed", () => {
    expect(readFileSync(join(DIR, "train.jsonl"), "utf8")).toBe(toJsonLines(shipped.train));
    expect(readFileSync(join(DIR, "val.jsonl"), "utf8")).toBe(toJsonLines(shipped.val));
  });

  test("sizes, distinct prompts, and no held-out prompt in the training set", () => {
    expect([shipped.train.length, shipped.val.length]).toEqual([1024, 64]);
    const prompts = [...shipped.train, ...shipped.val].map((r) => r.prompt);
    expect(new Set(prompts).size).toBe(prompts.length);
    expect(makeArithWordProblems(5, 10, 4)).toEqual(makeArithWordProblems(5, 10, 4));
    expect(makeArithWordProblems(5, 10, 4)).not.toEqual(makeArithWordProblems(6, 10, 4));
  });

  test("every answer is right, small, and scored 1 by the math reward", () => {
    const math = builtinReward("math");
    for (const { prompt, answer } of [...shipped.train, ...shipped.val]) {
      const [a, b] = (prompt.match(/\d+/g) ?? []).map(Number);
      const want = /buys|more|in all|afternoon/.test(prompt) ? a! + b! : /gives|lost/.test(prompt) ? a! - b! : a! * b!;
      expect(answer).toBe(String(want));
      expect(want).toBeGreaterThanOrEqual(0);
      expect(want).toBeLessThanOrEqual(9);
      expect(prompt.length).toBeLessThanOrEqual(110);
      expect(math(prompt, `The answer is ${answer}.`, answer)).toBe(1);
    }
  });

  test("read and prepared with the fixture tokenizer", async () => {
    const tok = loadHfTokenizer(join(import.meta.dir, "..", "..", "fixtures", "tokenizer"));
    const rows = await readDataFiles([join(DIR, "train.jsonl"), join(DIR, "val.jsonl")]);
    expect(rows).toHaveLength(1088);
    expect(rows[0]).toEqual({ ...shipped.train[0]!, where: `${join(DIR, "train.jsonl")} line 1` });
    const longest = longestPromptLength(rows, tok, { chatTemplate: true });
    const prepared = prepareRows(rows, tok, { maxPromptLength: longest, chatTemplate: true });
    expect([prepared.rows.length, prepared.longestPrompt]).toEqual([1088, longest]);
  });
});
