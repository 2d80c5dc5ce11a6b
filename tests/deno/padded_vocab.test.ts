/**
 * Padded vocabularies under Deno: a Qwen-style folder whose embedding has more rows than its
 * tokenizer has ids loads, samples only the tokenizer's ids (top-k/top-p too) and trains a short
 * GRPO job whose one mini-batch per step starts at ratio exactly 1; a tokenizer with more ids than
 * the model is refused before the job folder exists.
 * Run with `deno test -A tests/deno/padded_vocab.test.ts`.
 */
import assert from "node:assert/strict";
import { readdirSync } from "node:fs";
import { join } from "node:path";
import { resolveConfig } from "../../config/index.ts";
import { loadHfModel, paramsFromTensors } from "../../native/hf/model_folder.ts";
import { PolicyModel } from "../../native/policy_model.ts";
import { createJob, MetricsFile } from "../../runtime/rl/trainer/job.ts";
import { checkJobConfig } from "../../runtime/rl/trainer/plan.ts";
import { fit } from "../../runtime/rl/trainer/trainer.ts";
import { loadHfTokenizer } from "../../runtime/rl/text/index.ts";
import { tempDir } from "../helpers/tmp.ts";
import { makePaddedModelFolder, TOKENIZER_IDS } from "../native/fixtures/padded_model.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };
const root = join(import.meta.dirname!, "..", "..");
const DATA = join(root, "examples", "data", "arith_word_problems");

const configFor = (folder: string, runDir: string, ...args: string[]) => resolveConfig({
  file: null, env: {},
  args: [`trainer.run_dir=${runDir}`, `worker.actor.model.path=${folder}`, `data.train_files=${join(DATA, "train.jsonl")}`,
    `data.val_files=${join(DATA, "val.jsonl")}`, "reward.name=math", "data.train_batch_size=4", "worker.actor.max_new_tokens=4",
    "algorithm.adv_estimator=grpo", "worker.actor.rollout_n=2", "algorithm.kl_coef=0", "worker.actor.ppo_mini_batch_size=8",
    "trainer.total_steps=2", "trainer.val_interval=0", "checkpoint.interval=2", ...args],
}).config;

Deno.test("a padded folder loads and samples only its tokenizer's ids", opts, async () => {
  const folder = makePaddedModelFolder(400);
  const hf = loadHfModel(folder);
  assert.equal(hf.config.vocab, 400);
  const tokenizer = loadHfTokenizer(folder);
  assert.equal(tokenizer.vocabSize, TOKENIZER_IDS);
  const model = new PolicyModel({ ...hf.config, validVocab: tokenizer.vocabSize, seed: 0 }, { device: "cpu" });
  const params = paramsFromTensors(model.tensors, hf.tensors, { tied: true });
  await model.setState({ params, adamM: new Float32Array(params.length), adamV: new Float32Array(params.length), step: 0 });
  const prompts = Array.from({ length: 16 }, (_, r) => Int32Array.from([r, 2 * r + 1, 7]));
  for (const extra of [{}, { topK: 64, topP: 0.9 }]) {
    const gen = await model.generate(prompts, { maxNewTokens: 16, temperature: 1.5, seed: 3, ...extra });
    assert.ok(Math.max(...gen.tokens) < TOKENIZER_IDS, `sampled ${Math.max(...gen.tokens)}`);
  }
  await model.dispose();
});

Deno.test("a job on a padded folder trains with top-k/top-p, each step's first mini-batch at ratio 1", opts, async () => {
  const folder = makePaddedModelFolder(400);
  const runDir = tempDir("revenant-deno-padded-");
  const config = configFor(folder, runDir, "worker.actor.top_k=100", "worker.actor.top_p=0.95");
  const job = createJob(config, "padded");
  await fit({ config, job, output: () => {}, onNote: () => {} });
  const metrics = new MetricsFile(job.metrics).read();
  assert.equal(metrics.length, 2);
  for (const m of metrics) assert.equal(m["actor/ppo_kl"], 0);
});

Deno.test("a tokenizer with more ids than the model is refused before the job folder exists", opts, async () => {
  const folder = makePaddedModelFolder(300);
  const runDir = tempDir("revenant-deno-padded-");
  await assert.rejects(checkJobConfig(configFor(folder, runDir)), (e: Error & { path?: string }) => {
    assert.equal(e.path, "worker.actor.model.path");
    assert.match(e.message, /300 token ids, fewer than the tokenizer's 336/);
    return true;
  });
  assert.deepEqual(readdirSync(runDir), []);
});
