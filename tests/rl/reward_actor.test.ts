/**
 * A user reward module runs in its own supervised actor: a crash or a hang (past
 * reward.call_deadline_s) is restarted and the call retried, so the job ends with the weights of
 * an undisturbed one; a row whose score throws is a counted reward failure, left out of the
 * update, never a silent 0. The module misbehaves on its first call only (a marker file), so the
 * faults land on every machine alike.
 */
import { afterEach, describe, expect, test } from "bun:test";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { resolveConfig } from "../../config/index.ts";
import { readJsonLines } from "../../runtime/core/metrics/jsonl.ts";
import { createJob, MetricsFile } from "../../runtime/rl/trainer/job.ts";
import { RewardFailedError } from "../../runtime/rl/trainer/phases.ts";
import { fit } from "../../runtime/rl/trainer/trainer.ts";
import { tempDir } from "../helpers/tmp.ts";

const MODULE = join(import.meta.dir, "..", "fixtures", "rewards", "digit_match.ts");

async function run(mode: string) {
  const dir = tempDir("revenant-reward-");
  process.env.REVENANT_TEST_REWARD_MODE = mode;
  process.env.REVENANT_TEST_REWARD_DIR = dir;
  const { config } = resolveConfig({
    file: null, env: {},
    args: [`trainer.run_dir=${dir}`, "trainer.total_steps=4", "trainer.val_interval=2", "trainer.seed=5", `reward.module=${MODULE}`,
      "reward.call_deadline_s=1", "data.train_size=64", "data.val_size=16", "data.train_batch_size=8",
      "worker.actor.ppo_mini_batch_size=4", "worker.critic.ppo_mini_batch_size=4", "checkpoint.interval=2",
      "fault_tolerance.ping_interval_s=0.1", "fault_tolerance.ping_timeout_s=5", "fault_tolerance.restart_backoff_initial_s=0.005"],
  });
  const job = createJob(config, mode || "calm");
  const notes: string[] = [];
  const result = await fit({ config, job, output: () => {}, onNote: (line) => notes.push(line) });
  const events = [...readJsonLines(job.events)] as Array<Record<string, unknown>>;
  return { result, metrics: new MetricsFile(job.metrics).read(), events, notes };
}

afterEach(() => {
  delete process.env.REVENANT_TEST_REWARD_MODE;
  delete process.env.REVENANT_TEST_REWARD_DIR;
});

describe("the reward actor", () => {
  test("crash and hang: restarted, the call retried, the same weights as a calm job", async () => {
    const calm = await run("");
    expect(calm.metrics.every((m) => m["reward/failures"] === 0)).toBe(true);
    for (const mode of ["crash", "hang"]) {
      const faulty = await run(mode);
      const deaths = faulty.events.filter((e) => e.type === "death" && e.actor === "reward");
      expect(deaths, mode).toHaveLength(1);
      expect(faulty.events.some((e) => e.type === "restart" && e.actor === "reward"), mode).toBe(true);
      if (mode === "hang") expect(JSON.stringify(deaths[0])).toContain("deadline");
      expect(faulty.result.weightsSha256, mode).toBe(calm.result.weightsSha256);
      expect(faulty.result.finalValScore, mode).toBe(calm.result.finalValScore);
    }
  }, 120_000);

  test("a score that throws is a reward failure: counted, the row left out, never scored 0", async () => {
    const { metrics, notes } = await run("throw");
    const failures = metrics.reduce((n, m) => n + m["reward/failures"]!, 0);
    expect(failures).toBeGreaterThan(0);
    // One console line per step with failures: the count and the first message.
    for (const m of metrics.filter((m) => m["reward/failures"]! > 0)) {
      const lines = notes.filter((l) => l.startsWith(`step ${m.step}: `));
      expect(lines).toHaveLength(1);
      expect(lines[0]).toMatch(new RegExp(`^step ${m.step}: the reward failed on ${m["reward/failures"]} of 8 rows \\(left out, not scored 0\\); the first: row \\d+: reward module .*digit_match\\.ts: score threw: no score for "0`));
    }
    expect(notes.filter((l) => /^step \d+: the reward failed/.test(l))).toHaveLength(metrics.filter((m) => m["reward/failures"]! > 0).length);
    for (const m of metrics) expect(m["critic/score/mean"]).toBeGreaterThanOrEqual(0);
  }, 120_000);

  test("a data file's data_source and extra_info reach a module's compute_score through the reward actor", async () => {
    const dir = tempDir("revenant-verl-reward-");
    const rows = (n: number, split: string) => Array.from({ length: n }, (_, i) =>
      JSON.stringify({ prompt: `What is ${i} + 1?`, answer: String(i + 1), data_source: "arith", extra_info: { split, index: i } })).join("\n");
    writeFileSync(join(dir, "train.jsonl"), rows(8, "train"));
    writeFileSync(join(dir, "val.jsonl"), rows(4, "test"));
    // Without the row's extras every call throws, and a step where every row fails ends the job.
    writeFileSync(join(dir, "verl_reward.mjs"), [
      "export function compute_score(data_source, solution_str, ground_truth, extra_info) {",
      "  if (data_source !== 'arith' || typeof extra_info.index !== 'number' || !extra_info.prompt) throw new Error('no extras: ' + JSON.stringify([data_source, extra_info]));",
      "  return { score: solution_str.trim() === ground_truth ? 1 : 0 };",
      "}",
    ].join("\n"));
    const { config } = resolveConfig({
      file: null, env: {},
      args: [`trainer.run_dir=${dir}`, `data.train_files=${join(dir, "train.jsonl")}`, `data.val_files=${join(dir, "val.jsonl")}`,
        `data.tokenizer=${join(import.meta.dir, "..", "fixtures", "tokenizer")}`, `reward.module=${join(dir, "verl_reward.mjs")}`,
        "data.train_batch_size=4", "worker.actor.model.arch=llama", "worker.actor.model.context=48", "worker.actor.max_new_tokens=2",
        "worker.actor.ppo_mini_batch_size=4", "worker.critic.ppo_mini_batch_size=4", "trainer.total_steps=2", "trainer.val_interval=1"],
    });
    const job = createJob(config, "verl-extras");
    await fit({ config, job, output: () => {}, onNote: () => {} });
    const metrics = new MetricsFile(job.metrics).read();
    expect(metrics.map((m) => [m["reward/failures"], m["val/reward_failures"]])).toEqual([[0, 0], [0, 0]]);
  }, 120_000);

  test("a reward that fails on every row fails the job with its own first message and the count", async () => {
    const error = await run("always").catch((e: unknown) => e);
    expect(error).toBeInstanceOf(RewardFailedError);
    expect((error as Error).message).toBe(`the reward failed on all 8 rows of step 1; the first: row 0: reward module ${MODULE}: score threw: the judge is unreachable`);
  }, 120_000);
});
