/** `bun run train`: prints the resolved config and the device report; bad config exits 2 with the reason. */
import { expect, test } from "bun:test";
import { existsSync, mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const root = join(import.meta.dir, "..", "..");
function train(args: string[], env: Record<string, string> = {}) {
  const proc = Bun.spawnSync([process.execPath, "runtime/cli/train.ts", ...args], { cwd: root, env: { ...process.env, ...env } });
  return { code: proc.exitCode, out: proc.stdout.toString(), err: proc.stderr.toString() };
}

test("--print-config prints the resolved YAML, overrides applied", () => {
  const r = train(["--print-config", "fault_tolerance.max_restarts=5"], { VERL_MAX_TASK_RETRIES: "-1" });
  expect(r.code).toBe(0);
  expect(r.out).toContain("max_restarts: 5");
  expect(r.out).toContain("max_task_retries: -1");
});

test("--print-schema prints JSON Schema", () => {
  const r = train(["--print-schema"]);
  expect(r.code).toBe(0);
  expect(JSON.parse(r.out).properties.fault_tolerance.properties.max_restarts.default).toBe(3);
});

test("a bad value exits 2 and names it", () => {
  const r = train(["--print-config"], { VERL_MAX_RESTARTS: "abc" });
  expect(r.code).toBe(2);
  expect(r.err).toContain(`fault_tolerance.max_restarts = "abc" (env VERL_MAX_RESTARTS): expected an integer ≥ -1`);
});

test("an unknown flag exits 2 with the usage", () => {
  const r = train(["--bogus"]);
  expect(r.code).toBe(2);
  expect(r.err).toContain("usage: bun run train");
});

test("a short training run prints the device report, progress and a summary, exit 0", () => {
  const runDir = mkdtempSync(join(tmpdir(), "revenant-cli-"));
  const r = train([`trainer.run_dir=${runDir}`, "--job", "tiny", "trainer.total_steps=2", "data.train_size=64", "data.val_size=16", "data.train_batch_size=8"]);
  expect(r.code, r.err).toBe(0);
  expect(r.out).toMatch(/backends: cpu/);
  expect(r.out).toContain("step 2/2 reward");
  expect(r.out).toContain(`done: ${join(runDir, "tiny")}`);
  expect(r.out).toMatch(/val reward\s+\d\.\d{3} → \d\.\d{3}/);
  expect(existsSync(join(runDir, "tiny", "metrics.jsonl"))).toBe(true);
  expect(existsSync(join(runDir, "tiny", "checkpoints", "step-2", "manifest.json"))).toBe(true);
}, 60_000);

test("--resume of a folder that is not a job exits 2 and says what it expected", () => {
  const r = train(["--resume", tmpdir()]);
  expect(r.code).toBe(2);
  expect(r.err).toContain("is not a job folder (no config.json)");
});

test("a config that cannot fit the task is refused before anything starts", () => {
  const r = train(["worker.actor.max_new_tokens=3"]);
  expect(r.code).toBe(2);
  expect(r.err).toContain("worker.actor.max_new_tokens=3 is too short");
});

test("--chaos takes a rate ≥ 0 and refuses anything else", () => {
  const r = train(["--chaos", "often"]);
  expect(r.code).toBe(2);
  expect(r.err).toContain(`--chaos "often": expected a rate ≥ 0 (faults per second)`);
});

test("a run with --chaos survives its faults and says so in the summary", () => {
  const runDir = mkdtempSync(join(tmpdir(), "revenant-cli-chaos-"));
  const r = train([`trainer.run_dir=${runDir}`, "--job", "chaotic", "--chaos", "4", "trainer.total_steps=30", "data.train_size=64",
    "data.val_size=16", "data.train_batch_size=8", "worker.actor.ppo_mini_batch_size=8", "worker.critic.ppo_mini_batch_size=8",
    "fault_tolerance.max_restarts=-1", "fault_tolerance.max_task_retries=-1", "fault_tolerance.ping_interval_s=0.1",
    "fault_tolerance.ping_timeout_s=0.5", "fault_tolerance.restart_intensity=1000", "--quiet"]);
  expect(r.code, r.err).toBe(0);
  expect(r.out).toMatch(/faults survived\s+[1-9]\d* failures, [1-9]\d* restarts \([1-9]\d* injected\)/);
}, 60_000);

test("SIGINT stops a run after its step with a checkpoint, and --resume finishes it", async () => {
  const runDir = mkdtempSync(join(tmpdir(), "revenant-cli-int-"));
  const args = [`trainer.run_dir=${runDir}`, "--job", "interrupted", "trainer.total_steps=400", "data.train_size=64", "data.val_size=16",
    "data.train_batch_size=8", "worker.actor.ppo_mini_batch_size=8", "worker.critic.ppo_mini_batch_size=8", "--quiet"];
  const proc = Bun.spawn([process.execPath, "runtime/cli/train.ts", ...args], { cwd: root, stdout: "pipe", stderr: "pipe" });
  const metrics = join(runDir, "interrupted", "metrics.jsonl");
  const until = Date.now() + 30_000;
  while (!(existsSync(metrics) && readFileSync(metrics, "utf8").split("\n").length > 5) && Date.now() < until) await Bun.sleep(20);
  proc.kill("SIGINT");
  expect(await proc.exited).toBe(130);
  const err = await new Response(proc.stderr).text();
  expect(err).toMatch(/training cancelled after step (\d+): SIGINT; continue with: bun run train --resume .*interrupted/);
  const stopped = Number(/after step (\d+)/.exec(err)![1]);
  expect(existsSync(join(runDir, "interrupted", "checkpoints", `step-${stopped}`, "manifest.json"))).toBe(true);
  const resumed = Bun.spawnSync([process.execPath, "runtime/cli/train.ts", "--resume", join(runDir, "interrupted"), "--quiet"], { cwd: root });
  expect(resumed.exitCode, resumed.stderr.toString()).toBe(0);
  expect(resumed.stdout.toString()).toContain(`resumed interrupted from checkpoint step ${stopped}`);
  const steps = readFileSync(metrics, "utf8").trim().split("\n").map((l) => JSON.parse(l).step);
  expect(steps).toEqual(Array.from({ length: 400 }, (_, i) => i + 1));
}, 120_000);
