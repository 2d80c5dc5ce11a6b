/** Prompts made ready for the policy: encoding, chat templates, the overlong-prompt policy, the longest prompt. */
import { describe, expect, test } from "bun:test";
import { join } from "node:path";
import { DataError, encodeRowPrompt, longestPromptLength, prepareRows, type PromptRow } from "../../../runtime/rl/data/index.ts";
import { promptTokens, taskTokenizer } from "../../../runtime/rl/tasks/tokenizer.ts";
import { loadHfTokenizer } from "../../../runtime/rl/text/index.ts";

const tok = loadHfTokenizer(join(import.meta.dir, "..", "..", "fixtures", "tokenizer"));
const row = (prompt: PromptRow["prompt"], i = 0): PromptRow => ({ prompt, answer: String(i), where: `t.jsonl line ${i + 1}` });
const taskRows = ["12+3=", "4444=", "1=", "98765+4321="].map((p, i) => row(p, i));

describe("prepareRows", () => {
  test("the task tokenizer gives exactly promptTokens; order, answers and places are kept", () => {
    const { rows, dropped, truncated, longestPrompt } = prepareRows(taskRows, taskTokenizer, { maxPromptLength: 16 });
    expect(rows.map((r) => Array.from(r.ids))).toEqual(taskRows.map((r) => promptTokens(r.prompt as string)));
    expect(rows.map((r) => [r.text, r.answer, r.where])).toEqual(taskRows.map((r) => [r.prompt as string, r.answer, r.where]));
    expect(rows[0]!.ids).toBeInstanceOf(Int32Array);
    expect([dropped, truncated, longestPrompt]).toEqual([0, 0, 12]);
  });

  test("chat prompts are rendered with the template and the generation prompt, and encoded without special tokens", () => {
    const messages = [{ role: "user", content: "What is 3 + 4?" }];
    const text = "<|im_start|>user\nWhat is 3 + 4?<|im_end|>\n<|im_start|>assistant\n";
    const [prepared] = prepareRows([row(messages)], tok, { maxPromptLength: 64 }).rows;
    expect(prepared!.text).toBe(text);
    expect(Array.from(prepared!.ids)).toEqual(tok.encode(text, { addSpecialTokens: false }));
    // A string prompt with chatTemplate is one user message; without, it is encoded as it is.
    expect(encodeRowPrompt(row("What is 3 + 4?"), tok, { chatTemplate: true }).text).toBe(text);
    expect(encodeRowPrompt(row("What is 3 + 4?"), tok).text).toBe("What is 3 + 4?");
  });

  test("truncation: error (default) names the row and its length; left keeps the end, right the start", () => {
    const long = row("98765+4321=", 3);
    const ids = promptTokens("98765+4321=");
    expect(() => prepareRows([long], taskTokenizer, { maxPromptLength: 5 })).toThrow(DataError);
    expect(() => prepareRows([long], taskTokenizer, { maxPromptLength: 5, truncation: "error" })).toThrow(
      `t.jsonl line 4: the prompt is 12 tokens, longer than max_prompt_length=5; raise data.max_prompt_length, set data.truncation to "left" or "right", or set data.filter_overlong_prompts`);
    const left = prepareRows([long, row("1=")], taskTokenizer, { maxPromptLength: 5, truncation: "left" });
    expect(Array.from(left.rows[0]!.ids)).toEqual(ids.slice(-5));
    expect(Array.from(left.rows[1]!.ids)).toEqual(promptTokens("1="));
    expect([left.truncated, left.longestPrompt]).toEqual([1, 5]);
    const right = prepareRows([long], taskTokenizer, { maxPromptLength: 5, truncation: "right" });
    expect(Array.from(right.rows[0]!.ids)).toEqual(ids.slice(0, 5));
  });

  test("filterOverlongPrompts drops them, counts them, and keeps the others in order", () => {
    const out = prepareRows(taskRows, taskTokenizer, { maxPromptLength: 6, filterOverlongPrompts: true, truncation: "error" });
    expect(out.rows.map((r) => r.text)).toEqual(["12+3=", "4444=", "1="]);
    expect([out.dropped, out.truncated, out.longestPrompt]).toEqual([1, 0, 6]);
    const none = prepareRows(taskRows, taskTokenizer, { maxPromptLength: 1, filterOverlongPrompts: true });
    expect([none.rows.length, none.dropped, none.longestPrompt]).toEqual([0, 4, 0]);
  });

  test("bad rows and options are named", () => {
    expect(() => prepareRows([row("1=", 0), row("1a", 1)], taskTokenizer, { maxPromptLength: 8 })).toThrow(
      `t.jsonl line 2: character "a" is not in the task vocabulary`);
    expect(() => prepareRows([row([{ role: "user", content: "1=" }])], taskTokenizer, { maxPromptLength: 8 })).toThrow(
      "t.jsonl line 1: the prompt is a chat-messages list, but the tokenizer has no chat template");
    expect(() => prepareRows([row("1=")], taskTokenizer, { maxPromptLength: 8, chatTemplate: true })).toThrow(
      "t.jsonl line 1: the chat template was asked for, but the tokenizer has no chat template");
    expect(() => prepareRows([row([{ role: "robot", content: "x" }])], tok, { maxPromptLength: 8 })).toThrow(
      /^t\.jsonl line 1: .*tokenizer_config\.json chat_template: rendering failed: Unknown role: robot$/);
    for (const maxPromptLength of [0, -1, 2.5, NaN]) {
      expect(() => prepareRows(taskRows, taskTokenizer, { maxPromptLength })).toThrow(`max_prompt_length must be a positive integer (got ${maxPromptLength})`);
    }
    expect(() => prepareRows(taskRows, taskTokenizer, { maxPromptLength: 8, truncation: "middle" as never })).toThrow(
      `truncation must be one of "error", "left", "right" (got "middle")`);
  });
});

describe("longestPromptLength", () => {
  test("equals the longest prepared prompt, for plain and chat-templated prompts", () => {
    expect(longestPromptLength(taskRows, taskTokenizer)).toBe(12);
    const rows = ["a", "Sam has 3 apples and buys 4 more.", "How many?"].map((p, i) => row(p, i));
    for (const chatTemplate of [false, true]) {
      expect(longestPromptLength(rows, tok, { chatTemplate })).toBe(prepareRows(rows, tok, { maxPromptLength: 1000, chatTemplate }).longestPrompt);
    }
    expect(longestPromptLength([], tok)).toBe(0);
  });

  test("takes any iterable, one row at a time", () => {
    function* rows() {
      for (let i = 1; i <= 5; i++) yield row("9".repeat(i) + "=", i);
    }
    expect(longestPromptLength(rows(), taskTokenizer)).toBe(7);
  });
});
