/** The digit tasks' 16-symbol vocabulary behind the TextTokenizer contract, agreeing with the functions the tasks use. */
import { describe, expect, test } from "bun:test";
import { Rng } from "../../../runtime/core/rng.ts";
import { TASKS } from "../../../runtime/rl/tasks/tasks.ts";
import { BOS, decode, encode, EOS, PAD, promptTokens, taskTokenizer, VOCAB_SIZE } from "../../../runtime/rl/tasks/tokenizer.ts";

describe("taskTokenizer", () => {
  test("ids and special tokens are the task vocabulary's", () => {
    expect(taskTokenizer.vocabSize).toBe(VOCAB_SIZE);
    expect([taskTokenizer.padId, taskTokenizer.bosId, taskTokenizer.eosId]).toEqual([PAD, BOS, EOS]);
    expect(taskTokenizer.stopIds).toEqual([EOS]);
    expect(Array.from({ length: VOCAB_SIZE }, (_, id) => taskTokenizer.isSpecial(id))).toEqual([true, true, true, ...Array(13).fill(false)]);
    expect(taskTokenizer.applyChatTemplate).toBeUndefined();
  });

  test("encode is promptTokens with special tokens and encode without; decode round-trips", () => {
    const rng = new Rng(7);
    for (const task of Object.values(TASKS)) {
      for (let i = 0; i < 20; i++) {
        const prompt = task.makePrompt(rng, 1, 6);
        expect(taskTokenizer.encode(prompt, { addSpecialTokens: true })).toEqual(promptTokens(prompt));
        expect(taskTokenizer.encode(prompt, { addSpecialTokens: false })).toEqual(encode(prompt));
        expect(taskTokenizer.decode(promptTokens(prompt), { skipSpecialTokens: true })).toBe(prompt);
      }
    }
  });

  test("decode shows or skips PAD, BOS and EOS, and does not stop at EOS (the tasks' decode does)", () => {
    const ids = [BOS, ...encode("12+3="), EOS, ...encode("9"), PAD];
    expect(taskTokenizer.decode(ids, { skipSpecialTokens: false })).toBe("<bos>12+3=<eos>9<pad>");
    expect(taskTokenizer.decode(ids, { skipSpecialTokens: true })).toBe("12+3=9");
    expect(decode(ids)).toEqual({ text: "12+3=", ended: true });
  });

  test("bad input fails as before: characters outside the vocabulary, ids outside it", () => {
    expect(() => taskTokenizer.encode("1a", { addSpecialTokens: false })).toThrow(`character "a" is not in the task vocabulary`);
    expect(() => taskTokenizer.decode([4, 16], { skipSpecialTokens: false })).toThrow("token id 16 at position 1 is outside the vocabulary (integers 0..15)");
  });
});
