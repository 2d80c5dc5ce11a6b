/**
 * Padded vocabularies: a model with more embedding rows than its tokenizer has ids (validVocab
 * below vocab) never samples the padding, scores log-probs, entropy and the PPO loss over the
 * ids the sampler draws from, and a job on such a folder trains; a tokenizer with more ids than
 * the model is refused before the job folder exists. Sampling with top-k/top-p is seeded and the
 * same on every thread count.
 */
import { describe, expect, test } from "bun:test";
import { readdirSync } from "node:fs";
import { join } from "node:path";
import { resolveConfig } from "../../config/index.ts";
import { PolicyModel, type PolicyModelConfig } from "../../native/policy_model.ts";
import { createJob, MetricsFile } from "../../runtime/rl/trainer/job.ts";
import { checkJobConfig } from "../../runtime/rl/trainer/plan.ts";
import { fit } from "../../runtime/rl/trainer/trainer.ts";
import { tempDir } from "../helpers/tmp.ts";
import { makePaddedModelFolder, paddedConfig, TOKENIZER_IDS } from "./fixtures/padded_model.ts";

const root = join(import.meta.dir, "..", "..");
const DATA = join(root, "examples", "data", "arith_word_problems");
const ROWS = 400;

/** 24 prompts of 3 tokens, all below the tokenizer's ids. */
const prompts = Array.from({ length: 24 }, (_, r) => Int32Array.from([r % TOKENIZER_IDS, (7 * r + 3) % TOKENIZER_IDS, 11]));

function model(extra: Partial<PolicyModelConfig> = {}): PolicyModel {
  return new PolicyModel({ ...paddedConfig(ROWS), ...extra }, { device: "cpu" });
}

/** The generated rows as one [rows, 3 + maxNew] batch, the responses masked in. */
function batchOf(gen: { tokens: Int32Array; lengths: Int32Array }, maxNew: number) {
  const T = 3 + maxNew;
  const tokens = new Int32Array(prompts.length * T);
  const mask = new Float32Array(prompts.length * T);
  prompts.forEach((p, r) => {
    tokens.set(p, r * T);
    for (let i = 0; i < gen.lengths[r]!; i++) {
      tokens[r * T + 3 + i] = gen.tokens[r * maxNew + i]!;
      mask[r * T + 3 + i] = 1;
    }
  });
  return { tokens, mask, batch: prompts.length, seqLen: T };
}

describe("a padded vocabulary (400 embedding rows, 336 tokenizer ids)", () => {
  const options = { maxNewTokens: 20, temperature: 1.5, seed: 17 };

  test("without validVocab the random model samples padding rows (what the limit prevents)", async () => {
    const m = model();
    const gen = await m.generate(prompts, options);
    expect(Array.from(gen.tokens).some((t) => t >= TOKENIZER_IDS)).toBe(true);
    await m.dispose();
  });

  test("with validVocab, generate never samples past the tokenizer, with or without top-k/top-p", async () => {
    const m = model({ validVocab: TOKENIZER_IDS });
    for (const extra of [{}, { topK: 50 }, { topP: 0.9 }, { topK: 300, topP: 0.95 }]) {
      const gen = await m.generate(prompts, { ...options, ...extra });
      expect(Math.max(...gen.tokens)).toBeLessThan(TOKENIZER_IDS);
    }
    await m.dispose();
  });

  test("generate's log-probs are logprobs()' at the same temperature, and the first PPO ratio is exactly 1", async () => {
    const m = model({ validVocab: TOKENIZER_IDS });
    const gen = await m.generate(prompts, { ...options, topK: 40, topP: 0.9 });
    const batch = batchOf(gen, options.maxNewTokens);
    const lp = await m.logprobs(batch, { temperature: options.temperature });
    let worst = 0;
    prompts.forEach((_, r) => {
      for (let i = 0; i < gen.lengths[r]!; i++) {
        worst = Math.max(worst, Math.abs(lp[r * batch.seqLen + 3 + i]! - gen.logprobs[r * options.maxNewTokens + i]!));
      }
    });
    // The cached decode and the full pass sum the same terms in other orders: float32 rounding.
    expect(worst).toBeLessThan(1e-4);
    // Untruncated: top-k/top-p shape what is drawn, not what it is scored against (as verl does),
    // so at temperature 1.5 the log-probs differ from those at temperature 1.
    const lp1 = await m.logprobs(batch);
    expect(Array.from(lp1).some((v, i) => Math.abs(v - lp[i]!) > 1e-3)).toBe(true);
    // The update scores the same ids at the same temperature: old == new bit for bit.
    const stats = await m.policyStep({ ...batch, advantages: new Float32Array(batch.mask.length).fill(1), oldLogprobs: lp },
      { temperature: options.temperature });
    expect(stats.approxKl).toBe(0);
    expect(stats.clipFrac).toBe(0);
    await m.dispose();
  });

  test("a padding id in a batch or a prompt is refused, naming validVocab", async () => {
    const m = model({ validVocab: TOKENIZER_IDS });
    const tokens = new Int32Array(8).fill(5);
    tokens[6] = 350;
    await expect(m.logprobs({ tokens, mask: new Float32Array(8).fill(1), batch: 2, seqLen: 4 })).rejects.toThrow(/batch\.tokens\[6\].*350.*0\.\.335/);
    await expect(m.generate([Int32Array.from([1, 399])], { maxNewTokens: 2 })).rejects.toThrow(/prompts\[0\].*399.*0\.\.335/);
    expect(() => model({ validVocab: ROWS + 1 })).toThrow(/config\.validVocab.*401.*1\.\.400/);
    await m.dispose();
  });

  test("top-k/top-p sampling is seeded: the same seed gives the same tokens, another seed others", async () => {
    const m = model({ validVocab: TOKENIZER_IDS });
    const o = { ...options, topK: 20, topP: 0.8 };
    const a = await m.generate(prompts, o), b = await m.generate(prompts, o), c = await m.generate(prompts, { ...o, seed: 18 });
    expect(b.tokens).toEqual(a.tokens);
    expect(c.tokens).not.toEqual(a.tokens);
    await expect(m.generate(prompts, { ...o, topP: 0 })).rejects.toThrow(/options\.topP.*\(0, 1\]/);
    await expect(m.generate(prompts, { ...o, topK: -1 })).rejects.toThrow(/options\.topK/);
    await m.dispose();
  });

  test("top-k/top-p sampling and the fused head give the same bits on 1 and 2 threads", async () => {
    const run = async (threads: number) => {
      const m = new PolicyModel({ ...paddedConfig(ROWS), validVocab: TOKENIZER_IDS }, { device: "cpu", threads });
      const gen = await m.generate(prompts, { ...options, topK: 30, topP: 0.9 });
      const lp = await m.logprobs(batchOf(gen, options.maxNewTokens), { temperature: 1.5 });
      await m.dispose();
      return { tokens: gen.tokens, logprobs: gen.logprobs, lp };
    };
    const one = await run(1), two = await run(2);
    expect(two.tokens).toEqual(one.tokens);
    expect(two.logprobs).toEqual(one.logprobs);
    expect(two.lp).toEqual(one.lp);
  });
});

const configFor = (folder: string, runDir: string, ...args: string[]) => resolveConfig({
  file: null, env: {},
  args: [`trainer.run_dir=${runDir}`, `worker.actor.model.path=${folder}`, `data.train_files=${join(DATA, "train.jsonl")}`,
    `data.val_files=${join(DATA, "val.jsonl")}`, "reward.name=math", "data.train_batch_size=4", "worker.actor.max_new_tokens=4",
    "algorithm.adv_estimator=grpo", "worker.actor.rollout_n=2", "algorithm.kl_coef=0", "worker.actor.ppo_mini_batch_size=8",
    "trainer.total_steps=3", "trainer.val_interval=3", "data.val_size=4", "checkpoint.interval=3", ...args],
}).config;

describe("a job on a padded folder", () => {
  test("trains 3 GRPO steps with top-k/top-p and sampled validation; each step's one mini-batch starts at ratio 1", async () => {
    const folder = makePaddedModelFolder(ROWS);
    const runDir = tempDir("revenant-padded-run-");
    const config = configFor(folder, runDir, "worker.actor.top_k=100", "worker.actor.top_p=0.95", "worker.actor.temperature=1.2",
      "worker.actor.val_temperature=1", "worker.actor.val_top_p=0.9");
    const job = createJob(config, "padded");
    await fit({ config, job, output: () => {}, onNote: () => {} });
    const metrics = new MetricsFile(job.metrics).read();
    expect(metrics.length).toBe(3);
    // One epoch of one mini-batch: the policy that scored the old log-probs is the one updated.
    for (const m of metrics) expect(m["actor/ppo_kl"]).toBe(0);
  }, 180_000);

  test("a tokenizer with more ids than the model's rows is refused before the job folder exists", async () => {
    const folder = makePaddedModelFolder(300);
    const runDir = tempDir("revenant-padded-run-");
    const refusal = await checkJobConfig(configFor(folder, runDir)).then(() => null, (e: unknown) => e as { path?: string; message: string });
    expect(refusal?.path).toBe("worker.actor.model.path");
    expect(refusal?.message).toMatch(/300 token ids, fewer than the tokenizer's 336/);
    expect(readdirSync(runDir)).toEqual([]);
  });
});
