/**
 * A finished job lets go of its fit: the supervisor (and with it the actors, their snapshots and
 * replay logs, the IPC listener) becomes unreachable and is collected, while the job's view
 * keeps its final actor table and /metrics its fault counters, as plain data.
 */
import { afterAll, expect, test } from "bun:test";
import { rmSync } from "node:fs";
import { createApp } from "../../runtime/service/server/app.ts";
import type { ManagedJob } from "../../runtime/service/server/job_manager.ts";
import { quietManager, shortJob, tempDir } from "./helpers.ts";

const runDir = tempDir("memory");
const jobs = quietManager(runDir).start();
afterAll(async () => {
  await jobs.close();
  rmSync(runDir, { recursive: true, force: true });
});

/** Runs a job to its end, holding its supervisor only through a WeakRef taken at the first step. */
async function runWatched(body: unknown): Promise<{ job: ManagedJob; supervisor: WeakRef<object> }> {
  const job = await jobs.submit(body);
  let supervisor: WeakRef<object> | undefined;
  await new Promise<void>((resolve) => {
    jobs.subscribe(job, (e) => {
      if (e.type === "step" && !supervisor) supervisor = new WeakRef(job.supervisor!);
      if (e.type === "end") resolve();
    });
  });
  return { job, supervisor: supervisor! };
}

/**
 * Full collections until `ref` is cleared, each after the event loop turned and timers ran: a
 * process's last output is drained under a short timer whose closure still holds its actor, so
 * collections in one tight burst can all come too early on a loaded machine. Gives up after 200
 * rounds (10 s), which only a real leak reaches.
 */
async function collected(ref: WeakRef<object>): Promise<boolean> {
  for (let round = 0; round < 200 && ref.deref() !== undefined; round++) {
    await new Promise((r) => setTimeout(r, 50)); // leave the frames and timers that held it
    Bun.gc(true);
  }
  return ref.deref() === undefined;
}

test("a finished job's supervisor is released and collected; its view and metrics stay", async () => {
  const { job, supervisor } = await runWatched(shortJob(4));
  expect(job.record.status).toBe("succeeded");
  expect(job.supervisor).toBeUndefined();
  expect(job.controller).toBeUndefined();
  expect(job.listeners.size).toBe(0);
  expect(await collected(supervisor)).toBe(true);

  // What the API shows of it did not go with the supervisor.
  const view = jobs.view(job);
  expect(view.actors.map((a) => a.role).sort()).toEqual(["actor_rollout", "critic", "ref_policy"]);
  expect(view.actors.every((a) => a.state === "stopped" && a.pid === null)).toBe(true);
  const metrics = await (await createApp({ jobs, requireHostHeader: false }).request("/metrics")).text();
  expect(metrics).toContain(`revenant_actor_failures_total{job_id="${job.id}",role="critic"} 0`);
  expect(metrics).toContain(`revenant_actor_restart_latency_seconds_count{job_id="${job.id}"} 0`);
}, 60_000);

test("a cancelled job lets go of its fit too", async () => {
  const job = await jobs.submit(shortJob(100_000, { checkpoint: { interval: 100_000 } }));
  let supervisor: WeakRef<object> | undefined;
  const end = new Promise<void>((resolve) => {
    jobs.subscribe(job, (e) => {
      if (e.type === "step" && !supervisor) {
        supervisor = new WeakRef(job.supervisor!);
        jobs.cancel(job);
      }
      if (e.type === "end") resolve();
    });
  });
  await end;
  expect(job.record.status).toBe("cancelled");
  expect(job.supervisor).toBeUndefined();
  expect(await collected(supervisor!)).toBe(true);
}, 60_000);
