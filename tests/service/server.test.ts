/**
 * The real server under Bun (runtime.serve, real sockets): a short job submitted over HTTP is
 * followed through its SSE stream to the end; an actor killed through the chaos route shows up
 * as a death and a restart in the stream and in /metrics; the exposition passes
 * `promtool check metrics` (skipped with the reason when promtool is absent). And `bun run
 * serve` refuses to bind a non-loopback address without REVENANT_TOKEN.
 */
import { describe, expect, test } from "bun:test";
import { spawnSync } from "node:child_process";
import { join } from "node:path";
import { runtime } from "../../runtime/core/adapter/index.ts";
import { promtoolCheck, quietManager, readSse, shortJob, tempDir } from "./helpers.ts";
import { serveTestApp } from "./serve_app.ts";

const root = join(import.meta.dir, "..", "..");
const { jobs, base } = await serveTestApp(tempDir("server"));

async function submit(body: unknown): Promise<string> {
  const res = await fetch(`${base}/jobs`, { method: "POST", body: JSON.stringify(body), headers: { "Content-Type": "application/json" } });
  expect(res.status).toBe(202);
  return ((await res.json()) as { id: string }).id;
}

async function scrape(): Promise<string> {
  const res = await fetch(`${base}/metrics`);
  expect(res.status).toBe(200);
  return await res.text();
}

function expectPromtoolAccepts(text: string) {
  const r = promtoolCheck(text);
  if (r) expect(r.output.trim(), r.output).toBe("");
  if (r) expect(r.code).toBe(0);
}

describe(`coordinator over HTTP (${runtime.name})`, () => {
  test("submit a short job, follow its SSE stream to the end, read /metrics", async () => {
    const id = await submit(shortJob(6));
    const events = await readSse(await fetch(`${base}/jobs/${id}/events`));
    const steps = events.filter((e) => e.event === "step").map((e) => e.data.step);
    expect(steps).toEqual([1, 2, 3, 4, 5, 6]);
    expect(events.find((e) => e.event === "step")!.data.metrics["critic/score/mean"]).toBeNumber();
    expect(events.at(-1)).toMatchObject({ event: "end", data: { id, status: "succeeded", step: 6 } });
    const text = await scrape();
    expect(text).toContain(`revenant_job_step{job_id="${id}"} 6`);
    expect(text).toContain(`revenant_actor_failures_total{job_id="${id}",role="critic"} 0`);
    expect(text).toMatch(new RegExp(`revenant_actor_health\\{job_id="${id}",role="actor_rollout"\\} 1`));
    expect(text).toMatch(new RegExp(`revenant_job_reward\\{job_id="${id}"\\} [0-9.e-]+`));
    // Prometheus overwrites a target's `job` label on scrape: jobs are `job_id`, never `job`.
    expect(text).not.toMatch(/[{,]job="/);
    expectPromtoolAccepts(text);
  });

  test("an actor killed through the API dies, is restarted, and the job still succeeds", async () => {
    const id = await submit(shortJob(30));
    let killed: any;
    const events = await readSse(await fetch(`${base}/jobs/${id}/events`), (e) => {
      if (e.event === "step" && e.data.step === 5 && !killed) {
        killed = fetch(`${base}/jobs/${id}/actors/critic/kill`, { method: "POST", body: '{"signal":"SIGKILL"}', headers: { "Content-Type": "application/json" } })
          .then(async (r) => ({ status: r.status, body: await r.json() }));
      }
    });
    const kill = await killed;
    expect(kill.status).toBe(202);
    expect(kill.body).toMatchObject({ job: id, actor: "critic", signal: "SIGKILL", incarnation: 1 });
    const actorEvents = events.filter((e) => e.event === "actor").map((e) => e.data.event);
    const death = actorEvents.find((e) => e.type === "death" && e.actor === "critic");
    expect(death).toMatchObject({ signal: "SIGKILL", pid: kill.body.pid });
    expect(actorEvents.find((e) => e.type === "restart" && e.actor === "critic")).toMatchObject({ incarnation: 2 });
    expect(events.at(-1)).toMatchObject({ event: "end", data: { status: "succeeded", step: 30 } });
    const critic = events.at(-1)!.data.actors.find((a: any) => a.id === "critic");
    expect(critic).toMatchObject({ incarnation: 2, restarts: 1, failures: 1 });

    const text = await scrape();
    expect(text).toContain(`revenant_actor_failures_total{job_id="${id}",role="critic"} 1`);
    expect(text).toContain(`revenant_actor_restarts_total{job_id="${id}",role="critic"} 1`);
    expect(text).toContain(`revenant_actor_restart_latency_seconds_count{job_id="${id}"} 1`);
    expect(text).toContain(`revenant_actor_restart_latency_seconds_bucket{job_id="${id}",le="+Inf"} 1`);
    expectPromtoolAccepts(text);
  });

  test("an actor hung through the API (SIGSTOP) misses its pings, is killed, restarted, and the job succeeds", async () => {
    const id = await submit(shortJob(20));
    let hung: Promise<Response> | undefined;
    const events = await readSse(await fetch(`${base}/jobs/${id}/events`), (e) => {
      if (e.event === "step" && e.data.step === 4 && !hung) {
        hung = fetch(`${base}/jobs/${id}/actors/actor_rollout/kill`, { method: "POST", body: '{"signal":"SIGSTOP"}', headers: { "Content-Type": "application/json" } });
      }
    });
    expect((await hung!).status).toBe(202);
    const actorEvents = events.filter((e) => e.event === "actor").map((e) => e.data.event);
    expect(actorEvents.find((e) => e.type === "death" && e.actor === "actor_rollout")).toBeDefined();
    expect(actorEvents.find((e) => e.type === "restart" && e.actor === "actor_rollout")).toMatchObject({ incarnation: 2 });
    expect(events.at(-1)).toMatchObject({ event: "end", data: { status: "succeeded", step: 20 } });
  });
});

test("bun run serve refuses a non-loopback address without REVENANT_TOKEN", () => {
  const env = { ...process.env, REVENANT_TOKEN: "" };
  const r = spawnSync(process.execPath, ["runtime/service/cli/serve.ts", "--host", "0.0.0.0", "--port", "0"], { cwd: root, env, encoding: "utf8" });
  expect(r.status).toBe(2);
  expect(r.stderr).toContain("refusing to bind 0.0.0.0 without a token: set REVENANT_TOKEN");
  const bad = spawnSync(process.execPath, ["runtime/service/cli/serve.ts", "--port", "http"], { cwd: root, env, encoding: "utf8" });
  expect(bad.status).toBe(2);
  expect(bad.stderr).toContain("usage: bun run serve");
});
