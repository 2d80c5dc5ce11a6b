/** Hugging Face tokenizer folders: loading, exact round trips, special tokens, and errors naming the file. */
import { describe, expect, test } from "bun:test";
import { execFileSync } from "node:child_process";
import { cpSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { ChatTemplateError, HfTokenizer, loadHfTokenizer, TokenizerError } from "../../../runtime/rl/text/index.ts";
import { makeTokenizerFiles, SPECIAL_TOKENS } from "../../fixtures/tokenizer/make_tokenizer.ts";
import { tempDir } from "../../helpers/tmp.ts";

const FIXTURE = join(import.meta.dir, "..", "..", "fixtures", "tokenizer");
const tok = loadHfTokenizer(FIXTURE);
/** The id of a token the fixture surely has. */
function idOf(token: string): number {
  const id = tok.tokenToId(token);
  if (id === undefined) throw new Error(`the fixture has no token ${token}`);
  return id;
}
const [ENDOFTEXT, IM_START, IM_END] = [idOf(SPECIAL_TOKENS[0]), idOf(SPECIAL_TOKENS[1]), idOf(SPECIAL_TOKENS[2])];

/** A copy of the fixture folder with some files replaced (string contents) or removed (null). */
function variant(files: Record<string, string | null>): string {
  const dir = tempDir("revenant-tok-");
  cpSync(FIXTURE, dir, { recursive: true });
  for (const [name, text] of Object.entries(files)) {
    if (text === null) rmSync(join(dir, name));
    else writeFileSync(join(dir, name), text);
  }
  return dir;
}

const fixtureJson = (name: string) => JSON.parse(readFileSync(join(FIXTURE, name), "utf8"));
const withConfig = (patch: Record<string, unknown>) => JSON.stringify({ ...fixtureJson("tokenizer_config.json"), ...patch });

describe("the tokenizer fixture", () => {
  test("the shipped files are what make_tokenizer.ts makes", () => {
    for (const [name, text] of Object.entries(makeTokenizerFiles())) expect(readFileSync(join(FIXTURE, name), "utf8")).toBe(text);
  });

  test("is small: 256 bytes, learned merges, three special tokens after them", () => {
    expect(tok.vocabSize).toBeGreaterThan(256 + 50);
    expect(tok.vocabSize).toBeLessThan(512);
    expect([ENDOFTEXT, IM_START, IM_END]).toEqual([tok.vocabSize - 3, tok.vocabSize - 2, tok.vocabSize - 1]);
    // A merged word is one token: the merges were learned and are applied.
    expect(tok.encode(" apples", { addSpecialTokens: false })).toHaveLength(1);
  });
});

describe("loadHfTokenizer", () => {
  test("special ids: eos and pad from tokenizer_config.json, stop ids from generation_config.json, no bos", () => {
    expect(tok).toBeInstanceOf(HfTokenizer);
    expect(tok.eosId).toBe(IM_END);
    expect(tok.padId).toBe(ENDOFTEXT);
    expect(tok.bosId).toBeUndefined();
    expect(tok.stopIds).toEqual([IM_END, ENDOFTEXT]);
    for (const id of [ENDOFTEXT, IM_START, IM_END]) expect(tok.isSpecial(id)).toBe(true);
    expect(tok.isSpecial(tok.encode("a", { addSpecialTokens: false })[0]!)).toBe(false);
  });

  const texts: [string, string][] = [
    ["ascii", "Sam has 3 apples and buys 4 more. How many apples does Sam have?"],
    ["unicode", "héllo wörld — 你好, мир 🙂👍🏽"],
    ["whitespace runs", "  two  spaces,\tthen\t\ttabs   and trailing   "],
    ["digits", "0 12 345 6789 3.14159 -42 1,000,000"],
    ["newlines", "line one\nline two\n\n\r\nend\n"],
    ["empty", ""],
    ["contractions", "it's we'll they've I'd"],
  ];
  for (const [name, text] of texts) {
    test(`round trip is exact: ${name}`, () => {
      const ids = tok.encode(text, { addSpecialTokens: true });
      expect(tok.decode(ids, { skipSpecialTokens: false })).toBe(text);
      expect(tok.decode(ids, { skipSpecialTokens: true })).toBe(text);
      for (const id of ids) expect(Number.isInteger(id) && id >= 0 && id < tok.vocabSize).toBe(true);
    });
  }

  test("special tokens in text encode to their ids; decode keeps or skips them", () => {
    const text = "<|im_start|>user\nhi<|im_end|>\n<|endoftext|>";
    const ids = tok.encode(text, { addSpecialTokens: false });
    expect(ids[0]).toBe(IM_START);
    expect(ids.filter((id) => tok.isSpecial(id))).toEqual([IM_START, IM_END, ENDOFTEXT]);
    expect(tok.decode(ids, { skipSpecialTokens: false })).toBe(text);
    expect(tok.decode(ids, { skipSpecialTokens: true })).toBe("user\nhi\n");
    expect(tok.decode([IM_END], { skipSpecialTokens: true })).toBe("");
    expect(tok.decode(Int32Array.from(ids), { skipSpecialTokens: false })).toBe(text);
  });

  test("ids in tokenizer.json beyond any model's vocabulary are refused at load, naming the token", () => {
    const file = fixtureJson("tokenizer.json");
    const [first] = Object.keys(file.model.vocab);
    const far = variant({ "tokenizer.json": JSON.stringify({ ...file, model: { ...file.model, vocab: { ...file.model.vocab, [first!]: 1e9 } } }) });
    expect(() => loadHfTokenizer(far)).toThrow(TokenizerError);
    expect(() => loadHfTokenizer(far)).toThrow(`${join(far, "tokenizer.json")}: model.vocab token ${JSON.stringify(first)} has id 1000000000; token ids must be integers 0..1048575`);
    const added = [{ ...file.added_tokens[0], id: -2 }, ...file.added_tokens.slice(1)];
    const negative = variant({ "tokenizer.json": JSON.stringify({ ...file, added_tokens: added }) });
    expect(() => loadHfTokenizer(negative)).toThrow(`added token ${JSON.stringify(SPECIAL_TOKENS[0])} has id -2; token ids must be integers 0..1048575`);
  });

  test("a tokenizer file that is a FIFO is refused at once, not waited on", () => {
    const dir = variant({ "tokenizer_config.json": null });
    execFileSync("mkfifo", [join(dir, "tokenizer_config.json")]);
    expect(() => loadHfTokenizer(dir)).toThrow(`${join(dir, "tokenizer_config.json")}: cannot read it (${join(dir, "tokenizer_config.json")} is a FIFO (named pipe); expected a regular file)`);
  });

  test("decode refuses ids outside the vocabulary", () => {
    expect(() => tok.decode([1, tok.vocabSize], { skipSpecialTokens: false })).toThrow(`token id ${tok.vocabSize} at position 1 is outside the vocabulary (integers 0..${tok.vocabSize - 1})`);
    expect(() => tok.decode([-1], { skipSpecialTokens: false })).toThrow("token id -1 at position 0 is outside the vocabulary");
    expect(() => tok.decode([1.5], { skipSpecialTokens: false })).toThrow("token id 1.5");
  });

  test("bos from the config; eos from special_tokens_map.json or generation_config.json when the config names none", () => {
    const bos = loadHfTokenizer(variant({ "tokenizer_config.json": withConfig({ bos_token: { content: "<|endoftext|>", special: true } }) }));
    expect(bos.bosId).toBe(ENDOFTEXT);
    const fromMap = loadHfTokenizer(variant({
      "tokenizer_config.json": withConfig({ eos_token: undefined }),
      "special_tokens_map.json": JSON.stringify({ eos_token: "<|endoftext|>" }),
    }));
    expect(fromMap.eosId).toBe(ENDOFTEXT);
    expect(fromMap.stopIds).toEqual([ENDOFTEXT, IM_END]);
    const fromGeneration = loadHfTokenizer(variant({ "tokenizer_config.json": withConfig({ eos_token: null }) }));
    expect(fromGeneration.eosId).toBe(IM_END);
    const padIsEos = loadHfTokenizer(variant({ "tokenizer_config.json": withConfig({ pad_token: null }), "generation_config.json": null }));
    expect(padIsEos.padId).toBe(IM_END);
    expect(padIsEos.stopIds).toEqual([IM_END]);
  });

  test("clean_up_tokenization_spaces is honoured only when the config turns it on", () => {
    const text = "a , b .";
    const cleaned = loadHfTokenizer(variant({ "tokenizer_config.json": withConfig({ clean_up_tokenization_spaces: true }) }));
    expect(cleaned.decode(cleaned.encode(text, { addSpecialTokens: false }), { skipSpecialTokens: true })).toBe("a, b.");
    const silent = loadHfTokenizer(variant({ "tokenizer_config.json": withConfig({ clean_up_tokenization_spaces: undefined }) }));
    expect(silent.decode(silent.encode(text, { addSpecialTokens: false }), { skipSpecialTokens: true })).toBe(text);
  });

  const failures: [string, () => string, string, string?][] = [
    ["a missing folder", () => "/nonexistent/tokenizer", "tokenizer folder /nonexistent/tokenizer does not exist"],
    ["no tokenizer.json", () => variant({ "tokenizer.json": null }), "tokenizer.json not found; a tokenizer folder needs tokenizer.json and tokenizer_config.json"],
    ["no tokenizer_config.json", () => variant({ "tokenizer_config.json": null }), "tokenizer_config.json not found"],
    ["tokenizer.json not JSON", () => variant({ "tokenizer.json": "{ nope" }), "tokenizer.json is not valid JSON"],
    ["tokenizer.json an array", () => variant({ "tokenizer.json": "[]" }), "tokenizer.json must hold a JSON object (got an array)"],
    ["tokenizer.json without a model", () => variant({ "tokenizer.json": JSON.stringify({ ...fixtureJson("tokenizer.json"), model: undefined }) }),
      "tokenizer.json: not a tokenizer this loader can run"],
    ["an unknown eos token", () => variant({ "tokenizer_config.json": withConfig({ eos_token: "</s>" }) }),
      `tokenizer_config.json: eos_token "</s>" is not a token of tokenizer.json`],
    ["an eos token of the wrong type", () => variant({ "tokenizer_config.json": withConfig({ eos_token: 7 }) }),
      `tokenizer_config.json "eos_token" must be a token string, an object with "content", or null (got 7)`],
    ["no eos anywhere", () => variant({ "tokenizer_config.json": withConfig({ eos_token: null }), "generation_config.json": null }),
      `no end-of-sequence token; set "eos_token" in tokenizer_config.json (or "eos_token_id" in generation_config.json)`],
    ["a generation eos id out of range", () => variant({ "generation_config.json": JSON.stringify({ eos_token_id: [5, 99999] }) }),
      `generation_config.json: eos_token_id 99999 is not a token id (integers 0..`],
    ["a chat template that does not parse", () => variant({ "tokenizer_config.json": withConfig({ chat_template: "{% for m in %}" }) }),
      "tokenizer_config.json chat_template: the template does not parse", ChatTemplateError.name],
    ["a chat template list without a default", () => variant({ "tokenizer_config.json": withConfig({ chat_template: [{ name: "tool_use", template: "x" }] }) }),
      `chat_template must be a template string or a list of {name, template} with one named "default"`],
  ];
  for (const [name, dir, message, kind = TokenizerError.name] of failures) {
    test(`a clear error for ${name}`, () => {
      const path = dir();
      let error: Error | undefined;
      try {
        loadHfTokenizer(path);
      } catch (e) {
        error = e as Error;
      }
      expect(error?.name).toBe(kind);
      expect(error?.message).toContain(message);
    });
  }
});
