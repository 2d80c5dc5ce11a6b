/**
 * The loggers wired into a training job (`trainer.logger`): TensorBoard event files with every
 * step's scalars and sampled generations at each validation, and an MLflow run with the config as
 * params, every step's metrics and its end status; a resumed job reattaches to its MLflow run; an
 * mlflow logger without a tracking URI is refused before the job starts. Null backend: no addon.
 */
import { afterEach, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { resolveConfig } from "../../config/index.ts";
import { createJob } from "../../runtime/rl/trainer/job.ts";
import { checkTaskJobConfig, fit, JobConfigError, TrainingCancelledError } from "../../runtime/rl/trainer/trainer.ts";
import { FakeMlflow } from "../helpers/fake_mlflow.ts";
import { eventFiles, readEvents } from "../helpers/tfevents.ts";
import { tempDir } from "../helpers/tmp.ts";

let server: FakeMlflow | undefined;
afterEach(() => server?.stop());
const quiet = () => {};

function config(runDir: string, uri: string, extra: string[] = []) {
  return resolveConfig({
    file: null, env: {},
    args: [
      `trainer.run_dir=${runDir}`, "trainer.total_steps=4", "trainer.val_interval=2", "checkpoint.interval=2",
      "data.train_size=32", "data.val_size=8", "data.train_batch_size=4",
      "worker.actor.ppo_mini_batch_size=4", "worker.critic.ppo_mini_batch_size=4",
      "worker.actor.device=null", "worker.critic.device=null", "worker.ref.device=null",
      "trainer.logger=[jsonl,tensorboard,mlflow]", `trainer.mlflow_tracking_uri=${uri}`, "trainer.project_name=digits", ...extra,
    ],
  }).config;
}

test("TensorBoard and MLflow get every step; samples at each validation; the run ends FINISHED", async () => {
  const fake = (server = new FakeMlflow());
  const c = config(tempDir("revenant-loggers-"), fake.uri);
  const job = createJob(c, "logged");
  await fit({ config: c, job, output: quiet, onNote: quiet });

  const dir = join(job.dir, "tensorboard");
  const events = eventFiles(dir).flatMap((f) => readEvents(join(dir, f)));
  const scalarSteps = events.filter((e) => e.values.some((v) => v.tag === "critic/score/mean")).map((e) => Number(e.step));
  expect(scalarSteps).toEqual([1, 2, 3, 4]);
  const texts = events.filter((e) => e.values.some((v) => v.tag === "val/generations"));
  expect(texts.map((e) => Number(e.step))).toEqual([0, 2, 4]);
  expect(texts[0]!.values[0]!.strings![0]).toStartWith("| prompt | response | reward |");

  const runId = readFileSync(join(job.dir, "mlflow_run_id"), "utf8").trim();
  expect([...fake.experiments.keys()]).toEqual(["digits"]);
  expect(fake.runs.get(runId)!.status).toBe("FINISHED");
  const batches = fake.calls("runs/log-batch").map((r) => r.body!);
  const params = batches.flatMap((b) => (b.params as Array<{ key: string; value: string }> | undefined) ?? []);
  expect(params).toContainEqual({ key: "trainer.total_steps", value: "4" });
  const metricSteps = new Set(batches.flatMap((b) => ((b.metrics as Array<{ step: number }> | undefined) ?? []).map((m) => m.step)));
  expect([...metricSteps].sort()).toEqual([1, 2, 3, 4]);
});

test("a cancelled job's run ends KILLED and its resume reattaches to the same run", async () => {
  const fake = (server = new FakeMlflow());
  const c = config(tempDir("revenant-loggers-resume-"), fake.uri);
  const job = createJob(c, "resumed");
  const controller = new AbortController();
  await expect(fit({ config: c, job, output: quiet, onNote: quiet, signal: controller.signal, onStep: (s) => s === 2 && controller.abort("test") }))
    .rejects.toBeInstanceOf(TrainingCancelledError);
  const runId = readFileSync(join(job.dir, "mlflow_run_id"), "utf8").trim();
  expect(fake.runs.get(runId)!.status).toBe("KILLED");
  await fit({ config: c, job, resume: true, output: quiet, onNote: quiet });
  expect(fake.runs.size).toBe(1);
  expect(fake.runs.get(runId)!.status).toBe("FINISHED");
});

test("the mlflow logger without a tracking URI is refused before anything starts, naming the key", () => {
  const c = config(tempDir("revenant-loggers-bad-"), "");
  expect(() => checkTaskJobConfig(c)).toThrow(JobConfigError);
  expect(() => checkTaskJobConfig(c)).toThrow("trainer.mlflow_tracking_uri must be the tracking server's http(s) address");
});
