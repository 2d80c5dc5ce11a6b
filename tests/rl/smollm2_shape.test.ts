/**
 * examples/smollm2_shape.yaml: SmolLM2-135M's shape with a 49,152-id tokenizer. Its tokenizer is
 * what the shipped script makes, and the example runs: two GRPO steps of a 2-layer version (the
 * full 30 layers are measured in bench/RESULTS.md, not here).
 */
import { expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { resolveConfig } from "../../config/index.ts";
import { smolTokenizerFiles, VOCAB_SIZE } from "../../examples/smollm2_shape/make_tokenizer.ts";
import { createJob } from "../../runtime/rl/trainer/job.ts";
import { checkJobConfig } from "../../runtime/rl/trainer/plan.ts";
import { fit } from "../../runtime/rl/trainer/trainer.ts";
import { loadHfTokenizer } from "../../runtime/rl/text/hf_tokenizer.ts";
import { tempDir } from "../helpers/tmp.ts";

const root = join(import.meta.dir, "..", "..");
const TOKENIZER = join(root, "examples", "smollm2_shape", "tokenizer");

test("the shipped 49,152-id tokenizer is what make_tokenizer.ts makes, and round-trips the word problems", () => {
  for (const [name, text] of Object.entries(smolTokenizerFiles())) expect(readFileSync(join(TOKENIZER, name), "utf8")).toBe(text);
  const tok = loadHfTokenizer(TOKENIZER);
  expect(tok.vocabSize).toBe(VOCAB_SIZE);
  const text = "Mia finds 2 pencils in the morning and 5 in the afternoon. How many pencils does Mia find in all?";
  const ids = tok.encode(text, { addSpecialTokens: false });
  expect(ids.length).toBeLessThan(30); // the words it was learned from are single tokens
  expect(tok.decode(ids, { skipSpecialTokens: false })).toBe(text);
});

test("the example at SmolLM2's shape resolves, and a 2-layer version trains two GRPO steps", async () => {
  const cwd = process.cwd();
  process.chdir(root); // the example's paths are relative to the repository root
  try {
    const file = join(root, "examples", "smollm2_shape.yaml");
    const full = resolveConfig({ file, env: {}, args: [] }).config.worker.actor.model;
    expect(full).toMatchObject({ arch: "llama", width: 576, layers: 30, heads: 9, kv_heads: 3, intermediate: 1536, tied_embeddings: true });
    const { config } = resolveConfig({
      file, env: {},
      args: [`trainer.run_dir=${tempDir("revenant-smol-")}`, "worker.actor.model.layers=2", "trainer.total_steps=2", "trainer.val_interval=2", "checkpoint.interval=2"],
    });
    const plan = await checkJobConfig(config);
    expect(plan.roleOptions("actor").model.vocab).toBe(VOCAB_SIZE);
    const result = await fit({ config, plan, job: createJob(config, "smol"), output: () => {}, onNote: () => {} });
    expect(result.steps).toBe(2);
  } finally {
    process.chdir(cwd);
  }
}, 300_000);
