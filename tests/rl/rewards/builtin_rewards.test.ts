/** The built-in reward registry and the exact_match reward. */
import { describe, expect, test } from "bun:test";
import { BUILTIN_REWARDS, builtinReward } from "../../../runtime/rl/rewards/builtin_rewards.ts";
import { exactMatchReward } from "../../../runtime/rl/rewards/exact_match.ts";
import { mathReward } from "../../../runtime/rl/rewards/math_answer.ts";

describe("exact_match", () => {
  const cases: [string, string, 0 | 1][] = [
    ["4", "4", 1],
    ["  4\n", "4", 1],
    ["4", " 4 ", 1],
    ["a\r\nb", "a\nb", 1],
    ["caf\u00e9", "cafe\u0301", 1],
    ["Paris", "paris", 0],
    ["4.0", "4", 0],
    ["a  b", "a b", 0],
    ["", "", 1],
    ["", "4", 0],
  ];
  for (const [response, answer, score] of cases) {
    test(`${JSON.stringify(response)} against ${JSON.stringify(answer)} → ${score}`, () => {
      expect(exactMatchReward("p", response, answer)).toBe(score);
    });
  }
});

describe("builtinReward", () => {
  test("finds each built-in by name", () => {
    expect(builtinReward("math")).toBe(mathReward);
    expect(builtinReward("exact_match")).toBe(exactMatchReward);
    expect(Object.keys(BUILTIN_REWARDS).sort()).toEqual(["exact_match", "math"]);
  });

  test("an unknown name lists the built-ins", () => {
    for (const name of ["gsm8k", "", "toString", "constructor"]) {
      expect(() => builtinReward(name)).toThrow(`unknown reward ${JSON.stringify(name)}; the built-in rewards are: exact_match, math`);
    }
  });
});
