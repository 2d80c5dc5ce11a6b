/** The built-in math reward: final answers found, numbers normalised, compared with a tolerance. */
import { describe, expect, test } from "bun:test";
import { extractFinalAnswer, mathReward, parseNumber, referenceAnswer } from "../../../runtime/rl/rewards/math_answer.ts";

describe("parseNumber", () => {
  const cases: [string, number | undefined][] = [
    ["7", 7], ["-7", -7], ["+7", 7], ["\u22127", -7], ["007", 7],
    ["1,000", 1000], ["-1,234,567.5", -1234567.5], ["1,00", undefined], ["12,34", undefined],
    ["3.50", 3.5], ["3.", 3], [".5", 0.5], ["-0.25", -0.25],
    ["$4", 4], ["-$4", -4], ["\\$4.50", 4.5], ["50%", 50], ["50\\%", 50],
    ["3/4", 0.75], ["-3/4", -0.75], ["1/0", undefined], ["\\frac{3}{4}", 0.75], ["\\dfrac{1}{3}", 1 / 3], ["\\frac{ 6 }{ 2 }", 3],
    [" 72 ", 72], ["72 \\text{ apples}", 72], ["90^\\circ", 90],
    ["", undefined], ["seven", undefined], ["x+1", undefined], ["1e5", undefined], ["1.2.3", undefined], ["--5", undefined],
  ];
  for (const [text, value] of cases) {
    test(JSON.stringify(text), () => {
      if (value === undefined) expect(parseNumber(text)).toBeUndefined();
      else expect(parseNumber(text)).toBeCloseTo(value, 12);
    });
  }
});

describe("extractFinalAnswer", () => {
  const cases: [string, string | undefined, number | undefined][] = [
    ["He has 3 + 4 = 7 apples.", "7", 7],
    ["Step 1: 48/2 = 24\nStep 2: 48 + 24 = 72\n#### 72", "72", 72],
    ["#### 72 apples", "72 apples", 72],
    ["first #### 5\nthen #### 6", "6", 6],
    ["#### $1,000.", "$1,000.", 1000],
    ["The answer is \\boxed{72}.", "72", 72],
    ["\\boxed{1} then \\boxed { 42 }", "42", 42],
    ["\\boxed{\\frac{1}{2}}", "\\frac{1}{2}", 0.5],
    ["\\boxed{x + 1}", "x + 1", undefined],
    ["\\boxed{5 never closes", "5", 5],
    ["It dropped to -5 degrees", "-5", -5],
    ["pages 3-4", "4", 4],
    ["x2 and v1.2 are not numbers but 9 is", "9", 9],
    ["costs $3.50, not $3", "$3", 3],
    ["I cannot tell.", undefined, undefined],
    ["", undefined, undefined],
  ];
  for (const [response, text, value] of cases) {
    test(JSON.stringify(response), () => {
      const found = extractFinalAnswer(response);
      if (text === undefined) return expect(found).toBeUndefined();
      expect(found?.text).toBe(text);
      if (value === undefined) expect(found?.value).toBeUndefined();
      else expect(found?.value).toBeCloseTo(value, 12);
    });
  }
});

describe("mathReward", () => {
  const cases: [string, string, 0 | 1][] = [
    ["7", "7", 1],
    ["Sam has 3 + 4 = 7 apples.", "#### 7", 1],
    ["Sam has 7 apples.", "\\boxed{7}", 1],
    ["#### 8", "7", 0],
    ["The answer is 1,000.", "1000", 1],
    ["1000", "#### 1,000", 1],
    ["3.5", "3.50", 1],
    ["3.50", "3.5", 1],
    ["It is 5.0", "5", 1],
    ["$18", "18", 1],
    ["18 dollars", "$18", 1],
    ["+4", "4", 1],
    ["50%", "50", 1],
    ["-3", "-3", 1],
    ["−3", "-3", 1],
    ["3", "-3", 0],
    ["0.5", "1/2", 1],
    ["\\boxed{\\dfrac{1}{2}}", "0.5", 1],
    ["0.333333", "1/3", 1],
    ["0.33", "1/3", 0],
    // The tolerance is relative: a large fraction equals its decimal rounding (off by 3e-6),
    // while a number off by more than a millionth of its size does not.
    ["6666666.66667", "20000000/3", 1],
    ["6666680", "20000000/3", 0],
    ["\\boxed{ 72 }", "72", 1],
    ["\\boxed{72}", "#### 72", 1],
    ["\\boxed{x+1}", "x + 1", 1],
    ["\\boxed{x+2}", "x+1", 0],
    ["2, then 3, finally 4", "4", 1],
    ["4 is what 2 + 2 makes, not 5", "4", 0],
    ["I do not know", "7", 0],
    ["", "7", 0],
    ["7 apples", "72 apples", 0],
    ["72", "72 apples", 1],
  ];
  for (const [response, answer, score] of cases) {
    test(`${JSON.stringify(response)} against ${JSON.stringify(answer)} → ${score}`, () => {
      expect(mathReward("prompt", response, answer)).toBe(score);
    });
  }

  test("an answer field with no answer is a data error, not a zero", () => {
    for (const answer of ["", "   ", "#### "]) {
      expect(() => mathReward("p", "7", answer)).toThrow(`math reward: the answer field ${JSON.stringify(answer)} holds no answer`);
    }
    expect(referenceAnswer("x+1")).toEqual({ text: "x+1", value: undefined });
  });
});
