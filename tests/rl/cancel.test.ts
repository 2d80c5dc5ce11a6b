/**
 * Cancelling a job (`FitOptions.signal`): fit stops at the top of the next step, keeps a final
 * checkpoint of the last completed step, stops every actor, and throws TrainingCancelledError;
 * resuming the cancelled job ends with exactly the weights of an uninterrupted run. A promise
 * returned by `onStep` is awaited before the next step begins.
 */
import { expect, test } from "bun:test";
import { readdirSync } from "node:fs";
import { join } from "node:path";
import { resolveConfig } from "../../config/index.ts";
import { CheckpointStore } from "../../runtime/core/checkpoint/store.ts";
import { createJob, MetricsFile } from "../../runtime/rl/trainer/job.ts";
import { fit, TrainingCancelledError } from "../../runtime/rl/trainer/trainer.ts";
import type { Supervisor } from "../../runtime/core/supervisor/supervisor.ts";
import { processRuns } from "../helpers/supervision.ts";
import { tempDir } from "../helpers/tmp.ts";

const quiet = () => {};

/** A small job in `runDir`: batches of 4 from 32 prompts, then `extra`. */
function smallJob(runDir: string, extra: string[]) {
  return resolveConfig({
    file: null, env: {},
    args: [
      `trainer.run_dir=${runDir}`, "data.train_size=32", "data.val_size=8", "data.train_batch_size=4",
      "worker.actor.ppo_mini_batch_size=4", "worker.critic.ppo_mini_batch_size=4", ...extra,
    ],
  }).config;
}

test("an aborted signal checkpoints the last step, stops the actors, and the job resumes to the same weights", async () => {
  const runDir = tempDir("revenant-cancel-");
  const config = resolveConfig({
    file: null, env: {},
    args: [
      `trainer.run_dir=${runDir}`, "trainer.total_steps=8", "trainer.val_interval=4", "checkpoint.interval=4",
      "data.train_size=64", "data.val_size=16", "data.train_batch_size=8",
      "worker.actor.ppo_mini_batch_size=8", "worker.critic.ppo_mini_batch_size=8",
    ],
  }).config;
  const clean = await fit({ config, job: createJob(config, "clean"), output: quiet, onNote: quiet });

  const job = createJob(config, "cancelled");
  const controller = new AbortController();
  let sup: Supervisor | undefined;
  let err: unknown;
  try {
    await fit({
      config, job, output: quiet, onNote: quiet, signal: controller.signal,
      onSupervisor: (s) => (sup = s),
      onStep: (step) => step === 3 && controller.abort("test"),
    });
  } catch (e) {
    err = e;
  }
  expect(err).toBeInstanceOf(TrainingCancelledError);
  expect((err as TrainingCancelledError).step).toBe(3);
  expect((err as Error).message).toBe("training cancelled after step 3: test");
  // Step 3 is not a checkpoint interval: the cancel saved it.
  expect(readdirSync(job.checkpoints).sort()).toEqual(["step-3"]);
  expect(sup!.actors().every((a) => a.state === "stopped")).toBe(true);
  for (const e of sup!.events.events) if (typeof e.pid === "number") expect(processRuns(e.pid)).toBe(false);

  const resumed = await fit({ config, job, resume: true, output: quiet, onNote: quiet });
  expect(resumed.startStep).toBe(3);
  expect(resumed.weightsSha256).toBe(clean.weightsSha256);
  expect(new MetricsFile(job.metrics).read().map((m) => m.step)).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
}, 60_000);

test("a promise returned by onStep is awaited before the next step: a cancel made in it stops the job at that step", async () => {
  const runDir = tempDir("revenant-cancel-await-");
  const config = smallJob(runDir, [
    "trainer.total_steps=4", "trainer.val_interval=4", "worker.actor.device=null", "worker.critic.device=null", "worker.ref.device=null",
  ]);
  const controller = new AbortController();
  // The abort comes a macrotask after onStep returns: only a trainer that waits for the promise
  // sees it at the top of step 3 (one that does not checks the signal in the same tick, and runs on).
  const cancelLater = () => new Promise<void>((resolve) => setTimeout(() => {
    controller.abort("test");
    resolve();
  }, 0));
  const run = fit({
    config, job: createJob(config, "awaited"), output: quiet, onNote: quiet, signal: controller.signal,
    onStep: (step) => (step === 2 ? cancelLater() : undefined),
  });
  await expect(run).rejects.toThrow("training cancelled after step 2: test");
});

test("a checkpoint is on disk by the end of the step after it; a cancel right after it, and the end of a job, leave it whole when fit settles", async () => {
  const runDir = tempDir("revenant-cancel-ckpt-");
  const config = smallJob(runDir, ["trainer.total_steps=6", "trainer.val_interval=0", "checkpoint.interval=3", "checkpoint.keep=5"]);
  // The job's checkpoints are written behind the steps: each is on disk by the end of the step
  // after it, and the last one, verified, with no temporary folder beside it, when fit returns.
  const cleanJob = createJob(config, "clean");
  const onDisk: string[][] = [];
  const clean = await fit({
    config, job: cleanJob, output: quiet, onNote: quiet, onStep: (step) => step === 4 && onDisk.push(readdirSync(cleanJob.checkpoints)),
  });
  expect(onDisk).toEqual([["step-3"]]);
  expect(readdirSync(cleanJob.checkpoints).sort()).toEqual(["step-3", "step-6"]);
  expect(new CheckpointStore(cleanJob.checkpoints, 5).load(6).step).toBe(6);

  // Cancelled in step 3's onStep, while step 3's checkpoint may still be written: the cancel
  // waits for it and finds it (no second save under the same name), and it is whole when fit throws.
  const job = createJob(config, "cancelled");
  const controller = new AbortController();
  await expect(fit({
    config, job, output: quiet, onNote: quiet, signal: controller.signal,
    onStep: (step) => step === 3 && controller.abort("test"),
  })).rejects.toThrow("training cancelled after step 3: test");
  expect(readdirSync(job.checkpoints)).toEqual(["step-3"]);
  expect(new CheckpointStore(job.checkpoints, 5).load(3).manifest.trainer).toMatchObject({ step: 3 });

  const resumed = await fit({ config, job, resume: true, output: quiet, onNote: quiet });
  expect(resumed.startStep).toBe(3);
  expect(resumed.weightsSha256).toBe(clean.weightsSha256);
}, 60_000);
