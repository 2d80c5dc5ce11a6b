/**
 * The coordinator's bounds: the queue (a submission past --max-queued-jobs is a 503 naming the
 * limit), open event streams (503 past --max-event-streams), finished jobs kept in memory (count
 * and age: older ones leave GET /jobs and /metrics but GET /jobs/:id still reads them from disk,
 * and a restarted coordinator does not load them), the Prometheus series cap (jobs past it are
 * left out and counted), and SSE event ids with Last-Event-ID resumption.
 */
import { afterAll, describe, expect, test } from "bun:test";
import { rmSync } from "node:fs";
import { createApp } from "../../runtime/service/server/app.ts";
import type { JobManager, ManagedJob } from "../../runtime/service/server/job_manager.ts";
import { renderPrometheus, RESTART_LATENCY_BUCKETS_S, type JobMetricsSource } from "../../runtime/service/server/prometheus.ts";
import { promtoolCheck, quietManager, readSse, shortJob, tempDir } from "./helpers.ts";

const dirs: string[] = [];
const managers: JobManager[] = [];
function manager(tag: string, options: Parameters<typeof quietManager>[2] = {}, runDir = tempDir(tag)): JobManager {
  if (!dirs.includes(runDir)) dirs.push(runDir);
  const jobs = quietManager(runDir, 1, options).start();
  managers.push(jobs);
  return jobs;
}
afterAll(async () => {
  for (const m of managers) await m.close();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

const JSON_HEADERS = { "Content-Type": "application/json" };
/** A job that keeps the single slot busy until it is cancelled. */
const LONG = shortJob(100_000, { checkpoint: { interval: 100_000 } });

/** Resolves with the job's view when it ends (from its events, not by polling). */
function ended(jobs: JobManager, job: ManagedJob): Promise<string> {
  return new Promise((resolve) => {
    if (["succeeded", "failed", "cancelled"].includes(job.record.status)) return resolve(job.record.status);
    jobs.subscribe(job, (e) => void (e.type === "end" && resolve(e.job.status)));
  });
}

async function expectError(res: Response, status: number, code: string) {
  expect(res.status).toBe(status);
  const body = (await res.json()) as { error: { code: string; message: string } };
  expect(body.error.code).toBe(code);
  return body.error;
}

describe("queue length", () => {
  test("a submission past --max-queued-jobs is refused with 503 naming the limit; room again once one leaves", async () => {
    const jobs = manager("queue", { maxQueuedJobs: 2 });
    const app = createApp({ jobs, requireHostHeader: false });
    const post = (body: unknown) => app.request("/jobs", { method: "POST", body: JSON.stringify(body), headers: JSON_HEADERS });
    const running = await jobs.submit(LONG);
    const queued = [await jobs.submit(shortJob(2)), await jobs.submit(shortJob(2))];
    expect([running, ...queued].map((j) => j.record.status)).toEqual(["running", "queued", "queued"]);
    const full = await post(shortJob(2));
    const error = await expectError(full, 503, "queue_full");
    expect(error.message).toContain("the limit (--max-queued-jobs 2)");
    expect(full.headers.get("retry-after")).toBe("30");
    expect(jobs.list()).toHaveLength(3); // nothing was created for it

    jobs.cancel(queued[0]!);
    expect((await post(shortJob(2))).status).toBe(202);
    for (const j of jobs.list()) if (j.record.status === "queued" || j.record.status === "running") jobs.cancel(j);
    await ended(jobs, running);
  }, 60_000);

  test("submissions arriving together count those still being written: exactly the limit gets in", async () => {
    // Each submission's writes take a while; one that only counted the jobs already queued
    // would let every submission of a burst through before the first write ends.
    const jobs = manager("queue-burst", { maxQueuedJobs: 2 });
    const running = await jobs.submit(LONG);
    const burst = await Promise.allSettled([1, 2, 3, 4].map(() => jobs.submit(shortJob(2))));
    expect(burst.map((r) => r.status)).toEqual(["fulfilled", "fulfilled", "rejected", "rejected"]);
    for (const r of burst) if (r.status === "rejected") expect(String(r.reason)).toContain("the limit (--max-queued-jobs 2)");
    for (const j of jobs.list()) if (j.record.status === "queued" || j.record.status === "running") jobs.cancel(j);
    await ended(jobs, running);
  }, 60_000);
});

describe("event streams", () => {
  test("one stream past --max-event-streams is refused with 503; a stream that ends gives its slot back", async () => {
    const jobs = manager("streams");
    const app = createApp({ jobs, maxEventStreams: 1, requireHostHeader: false });
    const events = (id: string) => app.request(`/jobs/${id}/events`);
    const running = await jobs.submit(LONG);
    const waiting = await jobs.submit(shortJob(2));

    // A stream of a queued job stays open: it holds the only slot.
    const held = await events(waiting.id);
    expect(held.status).toBe(200);
    const second = await events(running.id);
    await expectError(second, 503, "too_many_streams");
    expect(second.headers.get("retry-after")).toBe("5");

    // When the job ends its stream ends, and the slot is free again.
    const heldEvents = readSse(held);
    jobs.cancel(waiting);
    expect((await heldEvents).at(-1)).toMatchObject({ event: "end", data: { status: "cancelled" } });
    const again = await events(waiting.id);
    expect(again.status).toBe(200);
    expect((await readSse(again)).at(-1)!.event).toBe("end");
    jobs.cancel(running);
    await ended(jobs, running);
  }, 60_000);
});

describe("finished jobs kept in memory", () => {
  test("past the count or the age, a finished job leaves the list but stays readable by id, from disk", async () => {
    let now = Date.parse("2026-12-02T10:00:00Z");
    const runDir = tempDir("retain");
    const jobs = manager("retain", { keepFinishedJobs: 2, keepFinishedS: 3600, now: () => now }, runDir);
    const app = createApp({ jobs, requireHostHeader: false });
    const running = await jobs.submit(LONG);
    const finished: ManagedJob[] = [];
    for (let i = 0; i < 3; i++) {
      const job = await jobs.submit(shortJob(2));
      now += 1000;
      jobs.cancel(job); // a queued job ends at once
      finished.push(job);
    }
    const listed = () => jobs.list().map((j) => j.id);
    // Count: the two newest finished jobs are kept, the oldest is dropped from memory.
    expect(listed()).toEqual([running.id, finished[1]!.id, finished[2]!.id]);
    const oldest = await app.request(`/jobs/${finished[0]!.id}`);
    expect(oldest.status).toBe(200);
    expect(await oldest.json()).toMatchObject({ id: finished[0]!.id, status: "cancelled", actors: [] });
    expect(((await (await app.request("/jobs")).json()) as any).jobs.map((j: any) => j.id)).not.toContain(finished[0]!.id);
    const replay = await readSse(await app.request(`/jobs/${finished[0]!.id}/events`));
    expect(replay.at(-1)).toMatchObject({ event: "end", data: { status: "cancelled" } });
    await expectError(await app.request(`/jobs/${finished[0]!.id}`, { method: "DELETE" }), 409, "job_finished");

    // Age: an hour later every finished job is gone from memory; the running one stays.
    now += 3601 * 1000;
    expect(listed()).toEqual([running.id]);
    expect(jobs.counts()).toMatchObject({ running: 1, cancelled: 0 });
    expect((await app.request(`/jobs/${finished[2]!.id}`)).status).toBe(200);

    // A coordinator started again on the run dir loads neither; new jobs still number after them.
    jobs.cancel(running);
    await ended(jobs, running);
    await jobs.close();
    const again = manager("retain", { keepFinishedJobs: 2, keepFinishedS: 3600, now: () => now }, runDir);
    expect(again.list().map((j) => j.id)).toEqual([running.id]); // it ended just now, within the hour
    const next = await again.submit(LONG);
    expect(next.record.seq).toBeGreaterThan(Math.max(...finished.map((j) => j.record.seq), running.record.seq));
    again.cancel(next);
    await ended(again, next);
  }, 60_000);
});

describe("Prometheus series cap", () => {
  const job = (id: string): JobMetricsSource => ({
    id, step: 3, totalSteps: 10, latest: { "critic/score/mean": 0.5 }, valScore: undefined,
    faults: {
      roles: ["actor_rollout", "critic"].map((role) => ({ role, failures: 1, restarts: 1, retries: 0, health: 1 })),
      restartLatency: { buckets: RESTART_LATENCY_BUCKETS_S.map(() => 1), sum: 0.01, count: 1 },
    },
  });
  // Per job: 2 roles × 4 series, 14 histogram series, step, total steps, reward.
  const PER_JOB = 2 * 4 + RESTART_LATENCY_BUCKETS_S.length + 3 + 3;

  test("jobs whose series would pass the cap are left out whole, and counted", () => {
    const jobs = ["a", "b", "c"].map((id) => job(`digit_reversal-20261202-100000-0000000${id}`));
    const all = renderPrometheus({ runtime: "bun", version: "1", counts: {}, jobs });
    expect(all).toContain("revenant_metrics_omitted_jobs 0");
    const capped = renderPrometheus({ runtime: "bun", version: "1", counts: {}, jobs, maxSeries: 2 * PER_JOB + PER_JOB - 1 });
    expect(capped).toContain("revenant_metrics_omitted_jobs 1");
    expect(capped).toContain(`job_id="${jobs[1]!.id}"`);
    expect(capped).not.toContain(`job_id="${jobs[2]!.id}"`);
    const series = capped.split("\n").filter((l) => l.includes("job_id="));
    expect(series).toHaveLength(2 * PER_JOB);
    const check = promtoolCheck(capped);
    if (check) expect(check.code, check.output).toBe(0);
    expect(renderPrometheus({ runtime: "bun", version: "1", counts: {}, jobs, maxSeries: 0 })).toContain("revenant_metrics_omitted_jobs 3");
  });
});

describe("SSE event ids", () => {
  test("every event has an id; Last-Event-ID resumes after that event; a foreign one is a 400", async () => {
    const jobs = manager("sse");
    const app = createApp({ jobs, requireHostHeader: false });
    const job = await jobs.submit(shortJob(6));
    await ended(jobs, job);
    const all = await readSse(await app.request(`/jobs/${job.id}/events`));
    expect(all.every((e) => /^\d+\.\d+$/.test(e.id ?? ""))).toBe(true);
    const steps = all.filter((e) => e.event === "step");
    expect(steps.map((e) => e.id!.split(".")[0])).toEqual(["1", "2", "3", "4", "5", "6"]);

    const third = steps[2]!;
    const resumed = await readSse(await app.request(`/jobs/${job.id}/events`, { headers: { "Last-Event-ID": third.id! } }));
    expect(resumed[0]!.event).toBe("status"); // where the job is now, then only what came after
    const after = all.slice(all.indexOf(third) + 1);
    expect(resumed.slice(1).map((e) => [e.event, e.id])).toEqual(after.map((e) => [e.event, e.id]));
    expect(resumed.filter((e) => e.event === "step").map((e) => e.data.step)).toEqual([4, 5, 6]);

    const last = all.at(-1)!;
    const nothingNew = await readSse(await app.request(`/jobs/${job.id}/events`, { headers: { "Last-Event-ID": last.id! } }));
    expect(nothingNew.map((e) => e.event)).toEqual(["status", "end"]);

    const bad = await app.request(`/jobs/${job.id}/events`, { headers: { "Last-Event-ID": "step-3" } });
    const error = await expectError(bad, 400, "invalid_last_event_id");
    expect(error.message).toContain("`<step>.<actor events>`");
  }, 60_000);
});
