/**
 * Durability: the coordinator (a `bun run serve` child) is killed with SIGKILL while a job
 * trains and another waits in the queue. Its actors exit on their own (no orphans). Started
 * again on the same run dir, it resumes the running job from its last checkpoint and keeps the
 * queued one queued until its turn; both complete, no step is lost or repeated (metrics.jsonl
 * has every step once), and the resumed job ends with the weights of an uninterrupted run.
 */
import { afterAll, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { resolveConfig } from "../../config/index.ts";
import { createJob, MetricsFile } from "../../runtime/rl/trainer/job.ts";
import { fit } from "../../runtime/rl/trainer/trainer.ts";
import { processRuns, removeTempDirs, shortJob, startServe, tempDir, until } from "./helpers.ts";

afterAll(removeTempDirs);

const JSON_TYPE = { "Content-Type": "application/json" };

async function submit(base: string, body: unknown): Promise<string> {
  const res = await fetch(`${base}/jobs`, { method: "POST", body: JSON.stringify(body), headers: JSON_TYPE });
  expect(res.status).toBe(202);
  return ((await res.json()) as { id: string }).id;
}
const view = async (base: string, id: string) => (await (await fetch(`${base}/jobs/${id}`)).json()) as any;
const finished = (base: string, id: string) => until(async () => {
  const v = await view(base, id);
  return v.status === "succeeded" || v.status === "failed" ? v : undefined;
}, `job ${id} to finish`, 60_000);

test("a coordinator killed mid-job resumes it after a restart, with no step lost", async () => {
  const runDir = tempDir("durable");
  const longJob = shortJob(40, { checkpoint: { interval: 5 } });
  const first = await startServe(["--run-dir", runDir, "--quiet"]);
  const running = await submit(first.base, longJob);
  const queued = await submit(first.base, shortJob(4));
  const before = await until(async () => {
    const v = await view(first.base, running);
    return v.step >= 13 ? v : undefined;
  }, "the job to pass step 13");
  expect((await view(first.base, queued)).status).toBe("queued");
  first.kill("SIGKILL");
  await first.exited;

  // Its actors notice the coordinator is gone and exit: nothing is orphaned.
  const actorPids = (before.actors as Array<{ pid: number | null }>).map((a) => a.pid).filter((p): p is number => p !== null);
  expect(actorPids).toHaveLength(3);
  for (const pid of actorPids) await until(() => !processRuns(pid), `actor pid ${pid} to exit`, 15_000);
  expect(JSON.parse(readFileSync(join(runDir, running, "job.json"), "utf8")).status).toBe("running");

  const second = await startServe(["--run-dir", runDir, "--quiet"]);
  try {
    const done = await finished(second.base, running);
    expect(done).toMatchObject({ status: "succeeded", step: 40, runs: 2 });
    expect(done.result.startStep).toBeGreaterThanOrEqual(10);
    expect(done.result.startStep % 5).toBe(0);
    const steps = new MetricsFile(join(runDir, running, "metrics.jsonl")).read().map((m) => m.step);
    expect(steps).toEqual(Array.from({ length: 40 }, (_, i) => i + 1));
    expect(await finished(second.base, queued)).toMatchObject({ status: "succeeded", runs: 1 });

    // Exactly the weights of the same job never interrupted.
    const values = { ...longJob, trainer: { ...(longJob.trainer as object), run_dir: tempDir("durable-clean") } };
    const config = resolveConfig({ file: null, env: {}, values: values as never }).config;
    const clean = await fit({ config, job: createJob(config, "clean"), output: () => {}, onNote: () => {} });
    expect(done.result.weightsSha256).toBe(clean.weightsSha256);
  } finally {
    second.kill("SIGTERM");
    expect(await second.exited).toBe(0);
  }
}, 120_000);
