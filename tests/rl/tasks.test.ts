/** Tasks, rewards, tokenizer and the data loader. */
import { describe, expect, test } from "bun:test";
import { Rng } from "../../runtime/core/rng.ts";
import { TASKS, reward } from "../../runtime/rl/tasks/tasks.ts";
import { DataLoader, makeDataset } from "../../runtime/rl/tasks/dataset.ts";
import { decode, encode, EOS, promptTokens, BOS } from "../../runtime/rl/tasks/tokenizer.ts";

describe("tasks", () => {
  test("answers", () => {
    expect(TASKS.digit_reversal.answer("3141=")).toBe("1413");
    expect(TASKS.sorting.answer("3141=")).toBe("1134");
    expect(TASKS.addition.answer("12+345=")).toBe("357");
    expect(TASKS.addition.answer("9999+1=")).toBe("10000");
  });

  test("rewards: 1 only for exact answers that end; partial credit otherwise", () => {
    const t = TASKS.digit_reversal;
    expect(reward(t, "3141=", "1413")).toBe(1);
    expect(reward(t, "3141=", "1413", false)).toBeCloseTo(0.45);
    expect(reward(t, "3141=", "1400")).toBeCloseTo(0.45);
    expect(reward(t, "3141=", "14130")).toBeCloseTo(0.675);
    expect(reward(t, "3141=", "")).toBe(0);
    expect(reward(t, "3141=", "9999")).toBe(0);
  });

  test("prompts are generated from the seed, within the digit range", () => {
    const a = Array.from({ length: 20 }, ((r) => () => TASKS.addition.makePrompt(r, 2, 3))(new Rng(5)));
    const b = Array.from({ length: 20 }, ((r) => () => TASKS.addition.makePrompt(r, 2, 3))(new Rng(5)));
    expect(a).toEqual(b);
    for (const p of a) expect(p).toMatch(/^[1-9]\d{1,2}\+[1-9]\d{1,2}=$/);
  });
});

describe("tokenizer", () => {
  test("encode/decode round trip, stopping at EOS", () => {
    expect(decode([...encode("12+3=45"), EOS, ...encode("9")])).toEqual({ text: "12+3=45", ended: true });
    expect(decode(encode("77"))).toEqual({ text: "77", ended: false });
    expect(promptTokens("1=")[0]).toBe(BOS);
    expect(() => encode("1a")).toThrow(`character "a" is not in the task vocabulary`);
  });
});

describe("dataset and loader", () => {
  const cfg = { task: "digit_reversal" as const, seed: 3, train_size: 200, val_size: 50, min_digits: 2, max_digits: 4, train_batch_size: 32 };

  test("held-out prompts never appear in training", () => {
    const d = makeDataset(cfg);
    expect(d.train).toHaveLength(200);
    expect(d.val).toHaveLength(50);
    const val = new Set(d.val);
    expect(d.train.some((p) => val.has(p))).toBe(false);
    expect(makeDataset(cfg)).toEqual(d);
  });

  test("too many prompts for the digit range is a clear error", () => {
    expect(() => makeDataset({ ...cfg, min_digits: 1, max_digits: 1, val_size: 20 })).toThrow("cannot make 20 held-out");
  });

  test("a loader resumed from its saved position continues exactly", () => {
    const d = makeDataset(cfg);
    const a = new DataLoader(d.train, 32, 9);
    const first = Array.from({ length: 10 }, () => a.next()); // crosses an epoch boundary
    const saved = a.state;
    const rest = Array.from({ length: 10 }, () => a.next());
    const b = new DataLoader(d.train, 32, 9);
    b.seek(saved);
    expect(Array.from({ length: 10 }, () => b.next())).toEqual(rest);
    expect(saved.epoch).toBe(1);
    // Each epoch visits every prompt once.
    const epoch0 = first.flat().slice(0, 200);
    expect([...epoch0].sort()).toEqual([...d.train].sort());
  });
});
