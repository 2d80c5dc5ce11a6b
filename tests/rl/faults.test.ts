/**
 * Faults around the trainer rather than inside an actor: a disk that fills up (a real ENOSPC,
 * from /dev/full) fails the job with the path and the error named and stops its actors; the
 * fault counters survive a resume; a torn last line in metrics.jsonl and events.jsonl (a
 * coordinator killed mid-append) does not stop a resume; a rollout sent ahead of its step is
 * counted in that step by a fault plan, and checkpoints keep the data position before it.
 */
import { expect, test } from "bun:test";
import { appendFileSync, existsSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { resolveConfig } from "../../config/index.ts";
import type { Config } from "../../config/schema.ts";
import { FaultPlan } from "../../runtime/core/chaos.ts";
import { LockedError } from "../../runtime/core/checkpoint/lock.ts";
import { WriteError } from "../../native/files.ts";
import { readJsonLines } from "../../runtime/core/metrics/jsonl.ts";
import type { Supervisor } from "../../runtime/core/supervisor/supervisor.ts";
import { createJob, MetricsFile, type JobPaths } from "../../runtime/rl/trainer/job.ts";
import { fit, TrainingCancelledError } from "../../runtime/rl/trainer/trainer.ts";
import { processRuns } from "../helpers/supervision.ts";
import { tempDir } from "../helpers/tmp.ts";

const quiet = () => {};

function config(runDir: string, extra: string[] = []) {
  return resolveConfig({
    file: null, env: {},
    args: [
      `trainer.run_dir=${runDir}`, "trainer.total_steps=6", "trainer.val_interval=3", "checkpoint.interval=3", "trainer.seed=9",
      "data.train_size=64", "data.val_size=16", "data.train_batch_size=8",
      "worker.actor.ppo_mini_batch_size=8", "worker.critic.ppo_mini_batch_size=8",
      "fault_tolerance.restart_backoff_initial_s=0.005", ...extra,
    ],
  }).config;
}

/** Runs `job` to the write failure it must end in; every actor is stopped and its process gone. */
async function failedWrite(c: Config, job: JobPaths): Promise<WriteError> {
  let sup: Supervisor | undefined;
  const err = await fit({ config: c, job, output: quiet, onNote: quiet, onSupervisor: (s) => (sup = s) }).then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(WriteError);
  expect(sup!.actors().every((a) => a.state === "stopped")).toBe(true);
  for (const e of sup!.events.events) if (typeof e.pid === "number") expect(processRuns(e.pid)).toBe(false);
  return err as WriteError;
}

test("a full disk fails the job naming the file and ENOSPC, and stops its actors", async () => {
  const c = config(tempDir("revenant-enospc-"));
  const job = createJob(c, "full");
  symlinkSync("/dev/full", job.metrics); // every append to metrics.jsonl now fails with ENOSPC
  const err = await failedWrite(c, job);
  expect(err.code).toBe("ENOSPC");
  expect(err.message).toContain(`cannot write ${job.metrics}: ENOSPC`);
});

test("a checkpoint that cannot be written (written behind the next step) fails the job with the path named, its actors stopped", async () => {
  const c = config(tempDir("revenant-ckpt-unwritable-"));
  const job = createJob(c, "ckpt-unwritable");
  writeFileSync(job.checkpoints, "a file where the checkpoints folder should be");
  const err = await failedWrite(c, job);
  expect(err.message).toContain(`cannot write ${join(job.checkpoints, ".tmp-step-3-")}`);
  // Step 3's checkpoint failed while step 4 ran: the job stops there, before step 4's metrics.
  expect(new MetricsFile(job.metrics).read().map((m) => m.step)).toEqual([1, 2, 3]);
});

test("an event that cannot be written fails the job with the path named", async () => {
  const c = config(tempDir("revenant-enospc-events-"), ["trainer.total_steps=3"]);
  const job = createJob(c, "events-full");
  symlinkSync("/dev/full", job.events);
  let err: unknown;
  try {
    // The first event (the planned kill's death) cannot be appended.
    await fit({ config: c, job, output: quiet, onNote: quiet, faultPlan: FaultPlan.parse("actor_rollout@1:1=kill") });
  } catch (e) {
    err = e;
  }
  expect(err).toBeInstanceOf(WriteError);
  expect((err as Error).message).toContain(`cannot write ${job.events}: ENOSPC`);
});

test("fault counters survive a resume, and torn last lines in metrics.jsonl and events.jsonl are repaired", async () => {
  const c = config(tempDir("revenant-counters-"));
  const job = createJob(c, "counters");
  const controller = new AbortController();
  // Two kills before the cancel at step 4 (checkpointed then): one critic, one actor_rollout.
  const plan = FaultPlan.parse("critic@2:1=kill,actor_rollout@4:2=kill");
  await expect(fit({
    config: c, job, output: quiet, onNote: quiet, signal: controller.signal, faultPlan: plan,
    onStep: (step) => step === 4 && controller.abort("test"),
  })).rejects.toBeInstanceOf(TrainingCancelledError);
  expect(plan.injected).toBe(2);
  const before = new MetricsFile(job.metrics).read().at(-1)!;
  expect(before["actor_failures/critic_cumulative"]).toBe(1);
  expect(before["actor_failures/actor_rollout_cumulative"]).toBe(1);

  // A coordinator killed mid-append leaves half a line at the end of both logs.
  appendFileSync(job.metrics, '{"step":5,"critic/score/me');
  appendFileSync(job.events, '{"ts":1,"type":"dea');
  const notes: string[] = [];
  await fit({ config: c, job, resume: true, output: quiet, onNote: (l) => notes.push(l) });
  expect(notes).toContain("resumed counters from checkpoint step 4");
  const rows = new MetricsFile(job.metrics).read();
  expect(rows.map((r) => r.step)).toEqual([1, 2, 3, 4, 5, 6]);
  expect(rows.at(-1)!["actor_failures/critic_cumulative"]).toBe(1);
  expect(rows.at(-1)!["actor_restarts/actor_rollout_cumulative"]).toBe(1);
  // Every line of both files parses: the torn tails were cut before appending went on.
  for (const path of [job.metrics, job.events]) {
    for (const line of readFileSync(path, "utf8").trim().split("\n")) expect(() => JSON.parse(line)).not.toThrow();
  }
  expect(readJsonLines<{ type: string }>(job.events).filter((e) => e.type === "death")).toHaveLength(2);
  rmSync(job.dir, { recursive: true });
});

test("one driver per job folder: a second fit of a running job is refused naming the holder; the lock goes with the job", async () => {
  const c = config(tempDir("revenant-joblock-"), ["trainer.total_steps=3"]);
  const job = createJob(c, "locked");
  let second: unknown;
  await fit({
    config: c, job, output: quiet, onNote: quiet,
    onStep: async (step) => {
      if (step !== 1) return;
      second = await fit({ config: c, job, resume: true, output: quiet, onNote: quiet }).catch((e) => e);
    },
  });
  expect(second).toBeInstanceOf(LockedError);
  expect((second as Error).message).toContain(`${join(job.dir, "job.lock")} is locked`);
  expect((second as Error).message).toContain(`job locked`);
  expect(existsSync(join(job.dir, "job.lock"))).toBe(false); // released at the end
  await fit({ config: c, job, resume: true, output: quiet, onNote: quiet }); // and free again
});

test("a step's generate, sent behind the update of the step before, counts as that step's first call; checkpoints keep the position before its batch", async () => {
  const c = config(tempDir("revenant-ahead-"));
  const calm = await fit({ config: c, job: createJob(c, "ahead-calm"), output: quiet, onNote: quiet });
  // Step 3's generate is sent during step 2; step 4's behind step 3's update and checkpoint snapshot.
  const plan = FaultPlan.parse("actor_rollout@3:1=kill,actor_rollout@4:1=kill");
  const job = createJob(c, "ahead-kills");
  const struck = await fit({ config: c, job, output: quiet, onNote: quiet, faultPlan: plan });
  expect(plan.injected).toBe(2);
  expect(plan.remaining).toEqual([]);
  expect(struck.weightsSha256).toBe(calm.weightsSha256);
  // 8 prompts a step: the checkpoint of step 3 is at prompt 24 of epoch 0, not 32 (step 4's batch, drawn before it was saved).
  const manifest = JSON.parse(readFileSync(join(job.checkpoints, "step-3", "manifest.json"), "utf8")) as { trainer: { step: number; data: unknown } };
  expect(manifest.trainer.step).toBe(3);
  expect(manifest.trainer.data).toEqual({ epoch: 0, offset: 24 });
});
