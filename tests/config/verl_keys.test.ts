/**
 * verl's key names: each lands on Revenant's key from every source, is reported once, keeps the
 * origin its errors name; list syntax for every list key; unknown sections blamed on their source.
 */
import { afterAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ConfigError, configJsonSchema, resolveConfig } from "../../config/index.ts";
import { leafKeys } from "../../config/reference.ts";
import { VERL_ALIASES } from "../../config/verl.ts";
import { runLength } from "../../runtime/rl/trainer/plan.ts";

const dir = mkdtempSync(join(tmpdir(), "revenant-verl-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const resolve = (o: Parameters<typeof resolveConfig>[0] = {}) => resolveConfig({ file: null, env: {}, ...o });
function problemsOf(fn: () => unknown): ConfigError {
  try {
    fn();
  } catch (e) {
    if (e instanceof ConfigError) return e;
    throw e;
  }
  throw new Error("expected a ConfigError");
}

describe("verl's key names", () => {
  test("each alias from the command line sets Revenant's key and is noted once", () => {
    const { config, notes } = resolve({
      args: [
        "data.max_response_length=9", "actor_rollout_ref.model.path=models/q", "actor_rollout_ref.rollout.n=4",
        "actor_rollout_ref.rollout.temperature=0.7", "actor_rollout_ref.actor.optim.lr=0.0005", "actor_rollout_ref.actor.ppo_mini_batch_size=16",
        "algorithm.kl_ctrl.kl_coef=0.02", "trainer.save_freq=7", "trainer.test_freq=5", "trainer.default_local_dir=out/", "actor_rollout_ref.rollout.n=4",
      ],
    });
    expect(config.worker.actor.max_new_tokens).toBe(9);
    expect(config.worker.actor.model.path).toBe("models/q");
    expect(config.worker.actor.rollout_n).toBe(4);
    expect(config.worker.actor.temperature).toBe(0.7);
    expect(config.worker.actor.lr).toBe(0.0005);
    expect(config.worker.actor.ppo_mini_batch_size).toBe(16);
    expect(config.algorithm.kl_coef).toBe(0.02);
    expect(config.checkpoint.interval).toBe(7);
    expect(config.trainer.val_interval).toBe(5);
    expect(config.trainer.run_dir).toBe("out/");
    expect(notes).toContain("verl key actor_rollout_ref.rollout.n → worker.actor.rollout_n");
    expect(notes).toContain("verl key algorithm.kl_ctrl.kl_coef → algorithm.kl_coef");
    expect(notes).toHaveLength(10);
  });

  test("every alias whose target exists names a real key of the schema", () => {
    const keys = new Set(leafKeys(configJsonSchema()).map(([k]) => k));
    const targets = Object.values(VERL_ALIASES).map((a) => a.target).filter((t) => !t.endsWith("top_p") && !t.endsWith("top_k"));
    expect(targets.filter((t) => !keys.has(t))).toEqual([]);
  });

  test("from a YAML file and the environment too; verl's -1 (never) for test_freq is 0", () => {
    const file = join(dir, "verl.yaml");
    writeFileSync(file, "actor_rollout_ref:\n  rollout:\n    n: 8\n  actor:\n    optim:\n      lr: 0.002\ntrainer:\n  test_freq: -1\n");
    const { config, notes } = resolve({ file, env: { REVENANT_ACTOR_ROLLOUT_REF__ROLLOUT__TEMPERATURE: "0.5" } });
    expect([config.worker.actor.rollout_n, config.worker.actor.lr, config.trainer.val_interval, config.worker.actor.temperature]).toEqual([8, 0.002, 0, 0.5]);
    expect(notes).toContain("verl key trainer.test_freq → trainer.val_interval (-1 (never) becomes 0)");
  });

  test("a bad value under a verl name is blamed on the argument or file line that set it", () => {
    const e = problemsOf(() => resolve({ args: ["actor_rollout_ref.rollout.n=400"] }));
    expect(e.problems).toEqual([{ path: "worker.actor.rollout_n", source: "argument actor_rollout_ref.rollout.n=400", value: 400, message: "expected an integer ≥ 1 and ≤ 64" }]);
    const file = join(dir, "bad.yaml");
    writeFileSync(file, "data:\n  max_response_length: 0\n");
    const fromFile = problemsOf(() => resolve({ file }));
    expect(fromFile.problems[0]).toMatchObject({ path: "worker.actor.max_new_tokens", source: `${file}:2:3`, value: 0 });
  });

  test("a verl key and its Revenant key set by one source: set one of them", () => {
    const e = problemsOf(() => resolve({ args: ["actor_rollout_ref.rollout.n=4", "worker.actor.rollout_n=2"] }));
    expect(e.message).toContain("actor_rollout_ref.rollout.n = \"4\" (argument actor_rollout_ref.rollout.n=4): verl's name for worker.actor.rollout_n, which argument worker.actor.rollout_n=2 sets too; set one of them");
  });
});

describe("unknown keys are blamed on what set them", () => {
  test("an unknown section made by an argument names that argument, not the defaults", () => {
    const e = problemsOf(() => resolve({ args: ["actor_rollout_ref.ref.fsdp_config.param_offload=true"] }));
    expect(e.problems[0]).toMatchObject({ path: "actor_rollout_ref", source: "argument actor_rollout_ref.ref.fsdp_config.param_offload=true" });
    const file = join(dir, "unknown.yaml");
    writeFileSync(file, "trainer:\n  total_steps: 3\ncritic:\n  optim:\n    lr: 0.1\n");
    expect(problemsOf(() => resolve({ file })).problems[0]).toMatchObject({ path: "critic", source: `${file}:3:1` });
  });
});

describe("[a,b] list syntax for every list key", () => {
  test("data files take a one-value or a bracketed list, like trainer.logger", () => {
    const { config } = resolve({ args: ["data.train_files=[a.jsonl, b.jsonl]", "data.val_files=[c.parquet]", "trainer.logger=[console,tensorboard]"] });
    expect(config.data.train_files).toEqual(["a.jsonl", "b.jsonl"]);
    expect(config.data.val_files).toEqual(["c.parquet"]);
    expect(config.trainer.logger).toEqual(["console", "tensorboard"]);
    expect(resolve({ args: ["data.train_files=a.jsonl"] }).config.data.train_files).toEqual(["a.jsonl"]);
    expect(resolve({ env: { REVENANT_DATA__VAL_FILES: "[x.jsonl,y.jsonl]" } }).config.data.val_files).toEqual(["x.jsonl", "y.jsonl"]);
  });

  test("every list-valued key of the schema takes the bracketed form", () => {
    // A valid item for each list key; a list key added later without one fails here until it gets one.
    const samples: Record<string, string> = {
      "data.train_files": "x.jsonl", "data.val_files": "x.jsonl", "trainer.logger": "tensorboard",
      "cluster.slurm.nodes": "node1", "cluster.slurm.srun_args": "--mem=16G", "cluster.kubernetes.node_selector": "gpu=a100",
    };
    const listKeys = leafKeys(configJsonSchema()).filter(([, n]) => n.type === "array" || n.anyOf?.some((b) => b.type === "array")).map(([k]) => k);
    expect(listKeys.sort()).toEqual(Object.keys(samples).sort());
    for (const key of listKeys) {
      const sample = samples[key]!;
      const { config } = resolve({ args: [`${key}=[${sample}]`] });
      const value = key.split(".").reduce<unknown>((v, k) => (v as Record<string, unknown>)[k], config);
      expect(value, key).toEqual([sample]);
    }
  });
});

describe("trainer.total_epochs: passes over the data, as steps", () => {
  test("ceil(epochs × prompts / batch) steps, with a note saying so; 0 leaves total_steps", () => {
    const { config } = resolve({ args: ["trainer.total_epochs=3", "data.train_batch_size=128"] });
    const { config: run, note } = runLength(config, 1000);
    expect(run.trainer.total_steps).toBe(24); // 3000 / 128 = 23.4: the last batch runs into a fourth pass
    expect(note).toBe("trainer.total_epochs=3 → trainer.total_steps=24 (3 passes over 1000 training prompts in batches of 128)");
    expect(runLength(resolve().config, 1000)).toEqual({ config: resolve().config });
  });
});
