/**
 * A padded Qwen-vocabulary job end to end: `bun bench/padded_vocab_job.ts [--seconds N]`.
 *
 * A random Qwen2-shaped folder (151,936 embedding rows, width 64, one layer, tied) with a tokenizer
 * of 151,669 ids (the fixture byte-level BPE tokenizer, its vocabulary filled to Qwen's size with
 * made-up tokens and its three special tokens moved to the last ids, as Qwen has them) trains 3
 * GRPO steps with top-p 0.95 on the arithmetic word problems. Prints each step's actor/ppo_kl
 * (exactly 0: one mini-batch, scored over the same ids it was sampled from), its timings, the wall
 * time and the process's peak RSS. Stops within --seconds (default 900): the job is cancelled.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { resolveConfig } from "../config/index.ts";
import { saveHfModel } from "../native/hf/model_folder.ts";
import { PolicyModel } from "../native/policy_model.ts";
import { createJob, MetricsFile } from "../runtime/rl/trainer/job.ts";
import { fit } from "../runtime/rl/trainer/trainer.ts";

const ROWS = 151_936, IDS = 151_669;
const root = join(import.meta.dir, "..");
const made: string[] = [];
/** A temporary folder, removed when the benchmark exits. */
const tempDir = (prefix: string) => {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  made.push(dir);
  return dir;
};
process.on("exit", () => made.forEach((d) => rmSync(d, { recursive: true, force: true })));
const FIXTURE = join(root, "tests", "fixtures", "tokenizer");
const DATA = join(root, "examples", "data", "arith_word_problems");

/** The fixture tokenizer filled to `IDS` ids, its special tokens last. */
function writeTokenizer(dir: string): number {
  const tok = JSON.parse(readFileSync(join(FIXTURE, "tokenizer.json"), "utf8"));
  const vocab = tok.model.vocab as Record<string, number>;
  const specials = tok.added_tokens as { id: number }[];
  const moved = new Map<number, number>();
  let next = Object.keys(vocab).length;
  const letters = "abcdefghijklmnopqrstuvwxyz";
  for (let i = 0; next < IDS - specials.length; i++) {
    let s = "Ġ", n = i + letters.length ** 3;  // four letters and up, base 26
    while (n > 0) { s += letters[n % 26]; n = Math.floor(n / 26); }
    if (vocab[s] === undefined) vocab[s] = next++;
  }
  specials.forEach((a, i) => { moved.set(a.id, IDS - specials.length + i); a.id = IDS - specials.length + i; });
  writeFileSync(join(dir, "tokenizer.json"), JSON.stringify(tok));
  const gen = JSON.parse(readFileSync(join(FIXTURE, "generation_config.json"), "utf8"));
  gen.eos_token_id = (gen.eos_token_id as number[]).map((id) => moved.get(id) ?? id);
  gen.pad_token_id = moved.get(gen.pad_token_id) ?? gen.pad_token_id;
  writeFileSync(join(dir, "generation_config.json"), JSON.stringify(gen, null, 2));
  const cfg = JSON.parse(readFileSync(join(FIXTURE, "tokenizer_config.json"), "utf8"));
  if (cfg.added_tokens_decoder) {
    cfg.added_tokens_decoder = Object.fromEntries(Object.entries(cfg.added_tokens_decoder).map(([k, v]) => [String(moved.get(Number(k)) ?? k), v]));
  }
  writeFileSync(join(dir, "tokenizer_config.json"), JSON.stringify(cfg, null, 2));
  return moved.get(335) ?? 335;  // <|im_end|>
}

const at = process.argv.indexOf("--seconds");
const budget = at > 0 ? Number(process.argv[at + 1]) : 900;
const dir = join(tempDir("revenant-padded-qwen-"), "model");
const config = { arch: "llama" as const, vocab: ROWS, context: 96, width: 64, layers: 1, heads: 4, kvHeads: 2, intermediate: 128,
  ropeTheta: 1e6, normEps: 1e-6, tiedEmbeddings: true, attentionBias: true, seed: 9 };
const model = new PolicyModel(config, { device: "cpu" });
saveHfModel(dir, config, model.tensors, model.initialParams(), { eosTokenId: IDS - 1 });  // <|im_end|>, last as in Qwen
await model.dispose();
const eos = writeTokenizer(dir);
const cfg = resolveConfig({ file: null, env: {}, args: [`trainer.run_dir=${tempDir("revenant-padded-qwen-run-")}`, `worker.actor.model.path=${dir}`,
  `data.train_files=${join(DATA, "train.jsonl")}`, `data.val_files=${join(DATA, "val.jsonl")}`, "reward.name=math", "data.train_batch_size=8",
  "worker.actor.max_new_tokens=8", "algorithm.adv_estimator=grpo", "worker.actor.rollout_n=4", "algorithm.kl_coef=0.01",
  "worker.actor.ppo_mini_batch_size=32", "trainer.total_steps=3", "trainer.val_interval=0", "checkpoint.interval=3",
  "worker.actor.top_p=0.95", "checkpoint.save_hf_model=never"] }).config;
console.log(`padded vocabulary: ${ROWS} embedding rows, tokenizer of ${IDS} ids (end token ${eos}); 3 GRPO steps, stops within ${budget} s`);
const controller = new AbortController();
const timer = setTimeout(() => controller.abort(), budget * 1000);
const t = performance.now();
const job = createJob(cfg, "padded-qwen");
await fit({ config: cfg, job, output: () => {}, onNote: () => {}, signal: controller.signal });
clearTimeout(timer);
for (const r of new MetricsFile(job.metrics).read()) {
  console.log(`step ${r.step}: actor/ppo_kl ${r["actor/ppo_kl"]} (target exactly 0), entropy ${Number(r["actor/entropy"]).toFixed(3)}, ` +
    `gen ${Number(r["timing_s/gen"]).toFixed(1)} s, update ${Number(r["timing_s/update_actor"]).toFixed(1)} s`);
}
const hwm = /VmHWM:\s+(\d+) kB/.exec(readFileSync("/proc/self/status", "utf8"))![1];
console.log(`wall ${((performance.now() - t) / 1000).toFixed(1)} s; peak RSS of this process ${(Number(hwm) / 1e6).toFixed(2)} GB (actors are separate processes)`);
process.exit(0);
