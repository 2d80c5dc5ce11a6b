/**
 * The text side under Deno: a Hugging Face tokenizer folder (@huggingface/tokenizers), its chat
 * template (@huggingface/jinja), JSON-lines and Parquet data files (hyparquet), the built-in
 * rewards and a user reward module, all from node_modules as under Bun.
 * Run with `deno test -A tests/deno/text.test.ts`.
 */
import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { parquetWriteBuffer } from "hyparquet-writer";
import { prepareRows, readDataFiles } from "../../runtime/rl/data/index.ts";
import { builtinReward } from "../../runtime/rl/rewards/builtin_rewards.ts";
import { checkRewardModule } from "../../runtime/rl/rewards/module_check.ts";
import { loadRewardModule } from "../../runtime/rl/rewards/user_module.ts";
import { loadHfTokenizer } from "../../runtime/rl/text/index.ts";
import { tempDir } from "../helpers/tmp.ts";

const root = join(import.meta.dirname!, "..", "..");
const tok = loadHfTokenizer(join(root, "tests", "fixtures", "tokenizer"));

Deno.test("a tokenizer folder round-trips text and knows its special tokens", () => {
  for (const text of ["Sam has 3 apples.", "héllo 你好 🙂", "  a\t\tb\n\n", "<|im_start|>user\nhi<|im_end|>"]) {
    assert.equal(tok.decode(tok.encode(text, { addSpecialTokens: true }), { skipSpecialTokens: false }), text);
  }
  assert.equal(tok.eosId, tok.tokenToId("<|im_end|>"));
  assert.equal(tok.decode(tok.encode("<|im_end|>ok", { addSpecialTokens: false }), { skipSpecialTokens: true }), "ok");
});

Deno.test("the chat template renders, with and without the generation prompt", () => {
  const messages = [{ role: "user", content: "What is 3 + 4?" }];
  assert.equal(tok.applyChatTemplate!(messages, { addGenerationPrompt: false }), "<|im_start|>user\nWhat is 3 + 4?<|im_end|>\n");
  assert.equal(tok.applyChatTemplate!(messages, { addGenerationPrompt: true }), "<|im_start|>user\nWhat is 3 + 4?<|im_end|>\n<|im_start|>assistant\n");
  assert.throws(() => tok.applyChatTemplate!([{ role: "robot", content: "x" }], { addGenerationPrompt: true }), /Unknown role: robot/);
});

Deno.test("JSON-lines and Parquet data files are read and prepared", async () => {
  const parquet = join(tempDir("revenant-deno-data-"), "t.parquet");
  writeFileSync(parquet, new Uint8Array(parquetWriteBuffer({ columnData: [
    { name: "prompt", data: [[{ role: "user", content: "What is 2 + 2?" }]] },
    { name: "answer", data: ["4"], type: "STRING" },
  ] })));
  const val = join(root, "examples", "data", "arith_word_problems", "val.jsonl");
  const rows = await readDataFiles([val, parquet]);
  assert.equal(rows.length, 65);
  assert.deepEqual(rows[64], { prompt: [{ role: "user", content: "What is 2 + 2?" }], answer: "4", where: `${parquet} row 0` });
  const prepared = prepareRows(rows, tok, { maxPromptLength: 128, chatTemplate: true });
  assert.equal(prepared.rows.length, 65);
  assert.ok(prepared.longestPrompt > 20 && prepared.longestPrompt <= 128);
  await assert.rejects(readDataFiles(join(root, "missing.jsonl")), /missing\.jsonl: no such data file/);
});

Deno.test("built-in rewards and a user reward module", async () => {
  assert.equal(builtinReward("math")("p", "3 + 4 = 7", "#### 7"), 1);
  assert.equal(builtinReward("exact_match")("p", " 7\n", "7"), 1);
  const path = join(tempDir("revenant-deno-reward-"), "reward.ts");
  writeFileSync(path, "export const score = async (p: string, r: string, a: string) => (r === a ? 1 : NaN);");
  const reward = await loadRewardModule(path);
  assert.equal(await reward.score("p", "a", "a"), 1);
  await assert.rejects(reward.score("p", "b", "a"), /returned NaN; a reward must be a finite number/);
});

Deno.test("a reward module's exports are checked in a child Deno process; async rows keep their order", async () => {
  const dir = tempDir("revenant-deno-reward-");
  const ok = join(dir, "ok.ts");
  writeFileSync(ok, "export async function score(p: string, r: string) { await Promise.resolve(); return Number(r); }");
  assert.equal(await checkRewardModule(ok, 60), "score");
  const none = join(dir, "none.ts");
  writeFileSync(none, "export const scores = 1;");
  await assert.rejects(checkRewardModule(none, 60), /must export a function scoreBatch\(rows\), score\(prompt, response, answer\) or compute_score/);
  const out = await (await loadRewardModule(ok)).scoreRows([3, 1, 2].map((n) => ({ prompt: "p", response: String(n), answer: "" })), 2);
  assert.deepEqual(Array.from(out.scores), [3, 1, 2]);
});

Deno.test("a JSON-lines line over data.max_line_bytes is refused naming the line", async () => {
  const path = join(tempDir("revenant-deno-data-"), "long.jsonl");
  writeFileSync(path, `${JSON.stringify({ prompt: "x".repeat(5000), answer: "a" })}\n`);
  await assert.rejects(readDataFiles(path, { maxLineBytes: 1024 }), /long\.jsonl line 1 is 5026 bytes, over data\.max_line_bytes=1024/);
});
