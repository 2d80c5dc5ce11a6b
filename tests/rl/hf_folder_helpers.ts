/** Shared by the tests of jobs on Hugging Face folders: a small saved model and a job config over it. */
import { copyFileSync } from "node:fs";
import { join } from "node:path";
import { resolveConfig } from "../../config/index.ts";
import type { LlamaModelConfig } from "../../native/hf/config.ts";
import { saveHfModel } from "../../native/hf/model_folder.ts";
import { PolicyModel } from "../../native/policy_model.ts";
import { tempDir } from "../helpers/tmp.ts";

const root = join(import.meta.dir, "..", "..");
export const TOKENIZER = join(root, "tests", "fixtures", "tokenizer");
export const DATA = join(root, "examples", "data", "arith_word_problems");

/** A random model of `config` saved as a folder in `dtype`, with the fixture tokenizer's files beside it. */
export function makeModelFolder(config: LlamaModelConfig, o: { dtype?: "F32" | "BF16" | "F16"; maxPositions?: number } = {}): string {
  const dir = join(tempDir("revenant-hf-folder-"), "model");
  const model = new PolicyModel(config, { device: "cpu" });
  saveHfModel(dir, config, model.tensors, model.initialParams(), {
    dtype: o.dtype ?? "F32", eosTokenId: 333, ...(o.maxPositions !== undefined ? { maxPositionEmbeddings: o.maxPositions } : {}),
  });
  model.dispose();
  for (const f of ["tokenizer.json", "tokenizer_config.json", "generation_config.json"]) copyFileSync(join(TOKENIZER, f), join(dir, f));
  return dir;
}

/** A short job on the word problems with the math reward over `folder`, then `args`. */
export const folderJobConfig = (folder: string, runDir: string, ...args: string[]) => resolveConfig({
  file: null, env: {},
  args: [`trainer.run_dir=${runDir}`, `worker.actor.model.path=${folder}`, `data.train_files=${join(DATA, "train.jsonl")}`,
    `data.val_files=${join(DATA, "val.jsonl")}`, "reward.name=math", "data.train_batch_size=4", "worker.actor.max_new_tokens=2", ...args],
}).config;
