/**
 * A job's data from its config: the shipped tasks as before, and data files with a Hugging Face
 * tokenizer and a built-in or module reward, every mistake refused before the job folder exists
 * with the key (and the file and row) named.
 */
import { describe, expect, test } from "bun:test";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { resolveConfig } from "../../config/index.ts";
import { taskTokenizer } from "../../runtime/rl/tasks/tokenizer.ts";
import { localReward, responseText } from "../../runtime/rl/trainer/job_data.ts";
import { checkJobConfig, checkTaskJobConfig, JobConfigError } from "../../runtime/rl/trainer/plan.ts";
import { loadHfTokenizer } from "../../runtime/rl/text/hf_tokenizer.ts";
import { tempDir } from "../helpers/tmp.ts";

const root = join(import.meta.dir, "..", "..");
const TOKENIZER = join(root, "tests", "fixtures", "tokenizer");
const DATA = join(root, "examples", "data", "arith_word_problems");
const filesConfig = (...args: string[]) => resolveConfig({
  file: null, env: {},
  args: [`data.train_files=${join(DATA, "train.jsonl")}`, `data.val_files=${join(DATA, "val.jsonl")}`, `data.tokenizer=${TOKENIZER}`,
    "reward.name=math", "worker.actor.model.context=96", "worker.critic.model.context=96", ...args],
}).config;

async function refusal(args: string[]): Promise<JobConfigError> {
  const e = await checkJobConfig(filesConfig(...args)).then(() => undefined, (e: unknown) => e);
  expect(e).toBeInstanceOf(JobConfigError);
  return e as JobConfigError;
}

describe("data files", () => {
  test("rows are tokenized with the folder's tokenizer; the model takes its vocabulary", async () => {
    const plan = await checkJobConfig(filesConfig());
    const tok = loadHfTokenizer(TOKENIZER);
    expect(plan.data.source).toBe("files");
    expect(plan.data.train).toHaveLength(1024);
    expect(plan.data.val).toHaveLength(64);
    const first = plan.data.train[0]!;
    expect(tok.decode(first.ids, { skipSpecialTokens: false })).toBe(first.text);
    expect(plan.roleOptions("actor").model.vocab).toBe(tok.vocabSize);
    expect(plan.seqLen).toBe(Math.max(...[...plan.data.train, ...plan.data.val].map((p) => p.ids.length)) + plan.maxNew);
    expect(plan.data.reward.kind).toBe("builtin");
  });

  test("chat template: string prompts rendered as one user turn", async () => {
    const plan = await checkJobConfig(filesConfig("data.chat_template=true"));
    expect(plan.data.train[0]!.text).toStartWith("<|im_start|>user\n");
    expect(plan.data.train[0]!.text).toEndWith("<|im_start|>assistant\n");
  });

  test("overlong prompts: an error naming the row by default; dropped with a note on request", async () => {
    const e = await refusal(["data.max_prompt_length=8"]);
    expect(e.path).toBe("data.train_files");
    expect(e.message).toMatch(/train\.jsonl line 1: the prompt is \d+ tokens, longer than max_prompt_length=8/);
    const plan = await checkJobConfig(filesConfig("data.max_prompt_length=30", "data.filter_overlong_prompts=true"));
    expect(plan.data.train.length).toBeLessThan(1024);
    expect(plan.data.notes.join("\n")).toContain("training prompts dropped: longer than data.max_prompt_length=30");
  });

  test("every missing piece is named", async () => {
    expect((await refusal(["data.val_files=[]"])).path).toBe("data.val_files");
    expect((await refusal(["reward.name=task"])).message).toContain("data files need reward.name=math or exact_match, or a reward.module");
    expect((await refusal(["data.tokenizer="])).message).toContain("data.train_files needs a tokenizer");
    expect((await refusal(["data.tokenizer=/nonexistent/tok"])).path).toBe("data.tokenizer");
    expect((await refusal(["reward.module=/nonexistent/reward.ts"])).message).toContain("reward.module /nonexistent/reward.ts not found");
    const bad = join(tempDir("revenant-rows-"), "bad.jsonl");
    writeFileSync(bad, '{"prompt":"a","answer":"1"}\n{"question":"b"}\n');
    const e = await refusal([`data.train_files=${bad}`]);
    expect(e.path).toBe("data.train_files");
    expect(e.message).toContain("bad.jsonl line 2");
    expect((await refusal(["worker.actor.model.context=16"])).path).toBe("worker.actor.model.context");
  });

  test("a task job is unchanged: the 16-symbol vocabulary and the partial-credit reward", () => {
    const plan = checkTaskJobConfig(resolveConfig({ file: null, env: {}, args: [] }).config);
    expect(plan.data.tokenizer).toBe(taskTokenizer);
    expect(plan.data.train[0]!.ids[0]).toBe(taskTokenizer.bosId!);
    const p = plan.data.train[0]!;
    expect(localReward(plan.data.reward, p, { text: p.answer, ended: true })).toBe(1);
    expect(localReward(plan.data.reward, p, { text: p.answer, ended: false })).toBeCloseTo(0.45);
  });
});

describe("responses", () => {
  test("read up to the first stop token, special tokens left out", () => {
    const tok = loadHfTokenizer(TOKENIZER);
    const ids = tok.encode("12", { addSpecialTokens: false });
    expect(responseText(tok, [...ids, tok.eosId, ...ids])).toEqual({ text: "12", ended: true });
    expect(responseText(tok, ids)).toEqual({ text: "12", ended: false });
  });
});

describe("job names", () => {
  test("after the task, or the training file (its folder when the file is just 'train')", async () => {
    const { dataName } = await import("../../runtime/rl/trainer/job.ts");
    expect(dataName(resolveConfig({ file: null, env: {}, args: ["data.task=sorting"] }).config)).toBe("sorting");
    expect(dataName(filesConfig())).toBe("arith_word_problems");
    expect(dataName(filesConfig("data.train_files=/data/my set.v2.parquet"))).toBe("my_set.v2");
  });
});

describe("off the coordinator's thread", () => {
  const same = async (config: ReturnType<typeof filesConfig>) => {
    const { loadJobData, loadJobDataOffThread } = await import("../../runtime/rl/trainer/job_data.ts");
    const [here, there] = [await loadJobData(config), await loadJobDataOffThread(config)];
    for (const key of ["train", "val"] as const) {
      expect(there[key].map((p) => p.text)).toEqual(here[key].map((p) => p.text));
      expect(there[key].map((p) => p.answer)).toEqual(here[key].map((p) => p.answer));
      expect(there[key].map((p) => [...p.ids])).toEqual(here[key].map((p) => [...p.ids]));
    }
    expect([there.source, there.answerTokens, there.notes, there.reward.kind, there.tokenizer.vocabSize])
      .toEqual([here.source, here.answerTokens, here.notes, here.reward.kind, here.tokenizer.vocabSize]);
  };

  test("a worker thread makes the same data: a shipped task, and data files", async () => {
    await same(resolveConfig({ file: null, env: {}, args: ["data.task=addition", "data.train_size=500"] }).config);
    await same(filesConfig("data.max_prompt_length=30", "data.filter_overlong_prompts=true"));
  });

  test("its errors keep their key", async () => {
    const e = await checkJobConfig(filesConfig("data.val_files=[]"), { offThread: true }).catch((e: unknown) => e);
    expect(e).toBeInstanceOf(JobConfigError);
    expect((e as JobConfigError).path).toBe("data.val_files");
    const big = resolveConfig({ file: null, env: {}, args: ["data.min_digits=1", "data.max_digits=1", "data.val_size=11"] }).config;
    expect(((await checkJobConfig(big, { offThread: true }).catch((e: unknown) => e)) as JobConfigError).message).toContain("cannot make 11 held-out");
  });
});
