/** A job whose length is trainer.total_epochs shows its steps once its data is planned, over the API and in /metrics. */
import { afterAll, expect, test } from "bun:test";
import { createApp } from "../../runtime/service/server/app.ts";
import { quietManager, removeTempDirs, shortJob, tempDir, until } from "./helpers.ts";

afterAll(removeTempDirs);

test("trainer.total_epochs: total_steps is the planned count (64 prompts in batches of 8 → 8 per epoch)", async () => {
  const jobs = quietManager(tempDir("epochs")).start();
  const app = createApp({ jobs, requireHostHeader: false });
  try {
    const base = shortJob(6);
    const body = { ...base, trainer: { ...(base.trainer as object), total_steps: undefined, total_epochs: 1, val_interval: 4 } };
    const res = await app.request("/jobs", { method: "POST", body: JSON.stringify(body), headers: { "Content-Type": "application/json" } });
    expect(res.status).toBe(202);
    const { id } = (await res.json()) as { id: string };
    const done = await until(async () => {
      const v = (await (await app.request(`/jobs/${id}`)).json()) as { status: string; total_steps: number | null; step: number };
      return v.status === "succeeded" || v.status === "failed" ? v : undefined;
    }, "the job to finish", 120_000);
    expect(done).toMatchObject({ status: "succeeded", total_steps: 8, step: 8 });
    expect(await (await app.request("/metrics")).text()).toContain(`revenant_job_total_steps{job_id="${id}"} 8`);
  } finally {
    await jobs.close();
  }
}, 150_000);
