/**
 * Write errors on the coordinator's side, with a real ENOSPC: a file replaced by a symlink to
 * /dev/full (writes to it fail with "no space left on device", even as root). A job whose fit
 * cannot write its metrics fails with that error, its actors stopped; a job record that cannot
 * be saved is logged and the job goes on in memory; a job that cannot be created is a 5xx naming
 * the file; and through all of it the server still lists, cancels, runs jobs, and shuts down.
 */
import { afterAll, describe, expect, test } from "bun:test";
import { mkdirSync, renameSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { createApp } from "../../runtime/service/server/app.ts";
import type { JobManager, ManagedJob } from "../../runtime/service/server/job_manager.ts";
import { processRuns, quietManager, shortJob, tempDir } from "./helpers.ts";

const runDir = tempDir("enospc");
const logs: string[] = [];
const jobs: JobManager = quietManager(runDir, 1, { log: (l) => logs.push(l) }).start();
const app = createApp({ jobs, requireHostHeader: false });
afterAll(async () => {
  await jobs.close();
  rmSync(runDir, { recursive: true, force: true });
});

const JSON_HEADERS = { "Content-Type": "application/json" };
const getJson = async (path: string) => (await (await app.request(path)).json()) as any;
const full = (path: string) => symlinkSync("/dev/full", path);

function ended(job: ManagedJob): Promise<string> {
  return new Promise((resolve) => {
    if (["succeeded", "failed", "cancelled"].includes(job.record.status)) return resolve(job.record.status);
    jobs.subscribe(job, (e) => void (e.type === "end" && resolve(e.job.status)));
  });
}

describe("a disk that is full", () => {
  test("a fit that cannot append its metrics fails with the error, its actors stopped; the server carries on", async () => {
    const job = await jobs.submit(shortJob(6));
    full(job.paths.metrics); // before its first step: the fit is still starting its actors
    const pids = new Set<number>();
    jobs.subscribe(job, (e) => {
      if (e.type === "actor") for (const a of e.actors) if (a.pid !== null) pids.add(a.pid);
    });
    expect(await ended(job)).toBe("failed");
    const view = await getJson(`/jobs/${job.id}`);
    expect(view.error).toContain("ENOSPC");
    expect(view.error).toContain("metrics.jsonl");
    expect(view.actors.length).toBeGreaterThan(0);
    expect(view.actors.every((a: any) => a.state === "stopped" && a.pid === null)).toBe(true);
    for (const pid of pids) expect(processRuns(pid)).toBe(false);

    // Reading the failed job back never reads /dev/full (it would never end).
    expect((await getJson(`/jobs/${job.id}/metrics`)).steps).toEqual([]);
    expect((await app.request(`/jobs/${job.id}/events`)).status).toBe(200);
    expect((await getJson("/jobs")).jobs.map((j: any) => j.id)).toContain(job.id);

    // The next job runs as if nothing happened.
    const next = await jobs.submit(shortJob(2));
    expect(await ended(next)).toBe("succeeded");
  }, 60_000);

  test("a job record that cannot be saved: the cancel still happens, the failure is logged", async () => {
    const blocker = await jobs.submit(shortJob(100_000, { checkpoint: { interval: 100_000 } }));
    const queued = await jobs.submit(shortJob(2));
    full(join(queued.paths.dir, "job.json.tmp")); // where the record is written before its rename
    const res = await app.request(`/jobs/${queued.id}`, { method: "DELETE" });
    expect(res.status).toBe(202);
    expect(((await res.json()) as any).status).toBe("cancelled");
    expect(logs.find((l) => l.includes(`job ${queued.id}: its record could not be saved (cancelled)`))).toContain("ENOSPC");
    jobs.cancel(blocker);
    expect(await ended(blocker)).toBe("cancelled");
  }, 60_000);

  test("a record that can never be saved does not hold up cancel, list or shutdown", async () => {
    const job = await jobs.submit(shortJob(100_000, { checkpoint: { interval: 100_000 } }));
    // A folder in the temporary file's place: every save of this record fails, and keeps failing.
    mkdirSync(join(job.paths.dir, "job.json.tmp", "x"), { recursive: true });
    await new Promise<void>((resolve) => jobs.subscribe(job, (e) => void (e.type === "step" && resolve())));
    expect((await app.request(`/jobs/${job.id}`, { method: "DELETE" })).status).toBe(202);
    expect(await ended(job)).toBe("cancelled");
    expect((await getJson("/jobs")).jobs.find((j: any) => j.id === job.id).status).toBe("cancelled");
    expect(logs.filter((l) => l.startsWith(`job ${job.id}: its record could not be saved`)).length).toBeGreaterThanOrEqual(2);
  }, 60_000);

  test("a job that cannot be created is a 5xx naming the file, and leaves nothing behind", async () => {
    // The run dir turned into a file: no job folder can be made in it.
    const aside = `${runDir}.aside`;
    renameSync(runDir, aside);
    writeFileSync(runDir, "");
    try {
      const res = await app.request("/jobs", { method: "POST", body: JSON.stringify(shortJob(2)), headers: JSON_HEADERS });
      expect(res.status).toBe(500);
      const body = (await res.json()) as any;
      expect(body.error.code).toBe("storage_error");
      expect(body.error.message).toContain(runDir);
    } finally {
      rmSync(runDir);
      renameSync(aside, runDir);
    }
    const before = jobs.list().length;
    expect((await app.request("/healthz")).status).toBe(200);
    expect(jobs.list()).toHaveLength(before);
  });

  test("shutdown with a running job whose writes fail still completes", async () => {
    const job = await jobs.submit(shortJob(100_000, { checkpoint: { interval: 100_000 } }));
    await new Promise<void>((resolve) => jobs.subscribe(job, (e) => void (e.type === "step" && resolve())));
    full(join(job.paths.dir, "job.json.tmp"));
    rmSync(job.paths.metrics);
    full(job.paths.metrics);
    await jobs.close(); // resolves: never waits on a write that cannot happen
    expect(jobs.runningCount).toBe(0);
    // Either the shutdown stopped it at the top of a step (its record left "running", to resume),
    // or the step's metrics append failed first and the job failed with it.
    if (job.record.status === "failed") expect(job.record.error).toContain("ENOSPC");
    else expect(job.record.status).toBe("running");
  }, 60_000);
});
