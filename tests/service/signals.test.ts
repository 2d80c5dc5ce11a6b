/**
 * `bun run serve` as a process: SIGTERM checkpoints the running job and exits 0, and the next
 * start resumes it; a job that cannot stop within --grace-s (its actor hung with SIGSTOP, pings
 * and deadlines set to a week) gets its actors killed and the coordinator exits 1 saying so; a
 * second signal exits at once; and a second coordinator on the same run dir exits 2 naming the
 * first (the run dir's lock).
 */
import { afterAll, describe, expect, test } from "bun:test";
import { spawnSync } from "node:child_process";
import { existsSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { processRuns, readSse, repoRoot, serveCommand, shortJob, startServe, tempDir, until, type ServeProcess } from "./helpers.ts";

const dirs: string[] = [];
const children: ServeProcess[] = [];
function runDir(tag: string): string {
  const d = tempDir(tag);
  dirs.push(d);
  return d;
}
async function serve(args: string[]): Promise<ServeProcess> {
  const child = await startServe(args);
  children.push(child);
  return child;
}
afterAll(async () => {
  for (const c of children) {
    c.kill("SIGKILL");
    await c.exited;
  }
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

const JSON_TYPE = { "Content-Type": "application/json" };
const LONG = shortJob(100_000, { checkpoint: { interval: 100_000 } });
/** A job whose hung actor is never found out: pings and calls may take a week. */
const UNWATCHED = shortJob(100_000, {
  checkpoint: { interval: 100_000 },
  fault_tolerance: { ping_interval_s: 1, ping_timeout_s: 604_800, call_deadline_s: 604_800 },
});

async function submit(base: string, body: unknown): Promise<string> {
  const res = await fetch(`${base}/jobs`, { method: "POST", body: JSON.stringify(body), headers: JSON_TYPE });
  expect(res.status).toBe(202);
  return ((await res.json()) as { id: string }).id;
}

/** Follows the job's events until step `n` has completed. */
async function reachStep(base: string, id: string, n: number): Promise<void> {
  await readSse(await fetch(`${base}/jobs/${id}/events`), (e) => e.event === "step" && e.data.step >= n);
}

const record = (dir: string, id: string) => JSON.parse(readFileSync(join(dir, id, "job.json"), "utf8")) as { status: string; runs: number };
const actorPids = async (base: string, id: string) =>
  ((await (await fetch(`${base}/jobs/${id}`)).json()) as { actors: Array<{ pid: number | null }> }).actors.map((a) => a.pid).filter((p): p is number => p !== null);

/** Starts a coordinator with an UNWATCHED job past step 2 and its rollout actor stopped (SIGSTOP): the job cannot reach its next step. */
async function stuckJob(args: string[]): Promise<{ server: ServeProcess; dir: string; id: string; pids: number[] }> {
  const dir = runDir("stuck");
  const server = await serve(["--run-dir", dir, "--chaos", ...args]);
  const id = await submit(server.base, UNWATCHED);
  await reachStep(server.base, id, 2);
  const pids = await actorPids(server.base, id);
  const stop = await fetch(`${server.base}/jobs/${id}/actors/actor_rollout/kill`, { method: "POST", body: '{"signal":"SIGSTOP"}', headers: JSON_TYPE });
  expect(stop.status).toBe(202);
  return { server, dir, id, pids };
}

describe("signals", () => {
  test("SIGTERM checkpoints the running job and exits 0; the next start resumes it", async () => {
    const dir = runDir("sigterm");
    const first = await serve(["--run-dir", dir]);
    const id = await submit(first.base, LONG);
    await reachStep(first.base, id, 2);
    first.kill("SIGTERM");
    expect(await first.exited).toBe(0);
    expect(first.output()).toContain("SIGTERM: checkpointing running jobs and stopping (at most 30 s; a second signal stops at once)");
    expect(record(dir, id).status).toBe("running");
    const saved = readdirSync(join(dir, id, "checkpoints")).filter((f) => f.startsWith("step-")).map((f) => Number(f.slice(5)));
    expect(Math.max(...saved)).toBeGreaterThanOrEqual(2);
    expect(existsSync(join(dir, "coordinator.lock"))).toBe(false);

    const second = await serve(["--run-dir", dir]);
    await reachStep(second.base, id, Math.max(...saved) + 1);
    expect(record(dir, id).runs).toBe(2);
    expect(second.output()).toContain(`job ${id} was running when the coordinator stopped; it resumes from its last checkpoint`);
    second.kill("SIGTERM");
    expect(await second.exited).toBe(0);
  }, 120_000);

  test("a job that cannot stop within --grace-s: its actors are killed and the coordinator exits 1, saying so", async () => {
    const { server, dir, id, pids } = await stuckJob(["--grace-s", "1"]);
    server.kill("SIGTERM");
    expect(await server.exited).toBe(1);
    expect(server.output()).toContain("grace period of 1 s over, still stopping: killed the actors of 1 running job(s) and exiting; " +
      "they resume from their last checkpoints on the next start");
    for (const pid of pids) await until(() => !processRuns(pid), `actor pid ${pid} to be gone`);
    expect(record(dir, id).status).toBe("running");
  }, 120_000);

  test("a second signal stops at once", async () => {
    const { server, pids } = await stuckJob(["--grace-s", "600"]);
    server.kill("SIGTERM");
    await until(() => server.output().includes("SIGTERM: checkpointing running jobs"), "the shutdown to begin");
    server.kill("SIGTERM");
    expect(await server.exited).toBe(128 + 15);
    expect(server.output()).toContain("SIGTERM again: killed the actors of 1 running job(s) and exiting");
    for (const pid of pids) await until(() => !processRuns(pid), `actor pid ${pid} to be gone`);
  }, 120_000);
});

describe("one coordinator per run dir", () => {
  test("a second one exits 2 naming the first; once the first stops, the run dir is free", async () => {
    const dir = runDir("locked");
    const first = await serve(["--run-dir", dir, "--quiet"]);
    const second = spawnSync(serveCommand()[0]!, [...serveCommand().slice(1), "--port", "0", "--run-dir", dir], { cwd: repoRoot, encoding: "utf8", env: { ...process.env, TMPDIR: tempDir("serve") } });
    expect(second.status).toBe(2);
    expect(second.stderr).toContain(`revenant serve: ${join(dir, "coordinator.lock")} is locked: held by coordinator (pid ${first.pid}, since `);
    first.kill("SIGTERM");
    expect(await first.exited).toBe(0);
    const third = await serve(["--run-dir", dir, "--quiet"]);
    expect((await fetch(`${third.base}/healthz`)).status).toBe(200);
    third.kill("SIGTERM");
    expect(await third.exited).toBe(0);
  }, 60_000);

  test("bad flags are refused with exit 2, naming the flag and what is allowed", () => {
    for (const [flag, value, allowed] of [["grace-s", "-1", "a number from 0 to 3600"], ["idle-timeout-s", "0", "an integer from 1 to 255"],
      ["max-queued-jobs", "x", "an integer from 0 to 100000"], ["max-event-streams", "1.5", "an integer from 0 to 10000"]] as const) {
      const r = spawnSync(serveCommand()[0]!, [...serveCommand().slice(1), `--${flag}=${value}`], { cwd: repoRoot, encoding: "utf8", env: { ...process.env, TMPDIR: tempDir("serve") } });
      expect(r.status).toBe(2);
      expect(r.stderr).toContain(`--${flag} "${value}": expected ${allowed}`);
    }
  });
});
