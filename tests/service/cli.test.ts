/** `bun run train`: prints the resolved config and the device report; bad config exits 2 with the reason. */
import { describe, expect, test } from "bun:test";
import { spawn } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { resolveConfig } from "../../config/index.ts";
import { checkJobName, createJob, JobError, JobExistsError } from "../../runtime/rl/trainer/job.ts";
import { tempDir } from "../helpers/tmp.ts";
import { REPO_ROOT, runTrainCli } from "../helpers/train_cli.ts";

const root = REPO_ROOT;
const train = runTrainCli;
const tempRun = (tag: string) => tempDir(`revenant-cli-${tag}-`);


/** The arguments of a tiny job: 64 prompts, batches of 8, quick steps. */
const tiny = (runDir: string, job: string, steps: number) => [`trainer.run_dir=${runDir}`, "--job", job, `trainer.total_steps=${steps}`,
  "data.train_size=64", "data.val_size=16", "data.train_batch_size=8", "worker.actor.ppo_mini_batch_size=8", "worker.critic.ppo_mini_batch_size=8"];

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
  expect(r.err).toContain(`fault_tolerance.max_restarts = "abc" (env VERL_MAX_RESTARTS): expected an integer ≥ -1 and ≤ 1000000`);
});

test("an unknown flag exits 2 with the usage", () => {
  const r = train(["--bogus"]);
  expect(r.code).toBe(2);
  expect(r.err).toContain("usage: bun run train");
});

test("a short training run prints the device report, progress and a summary, exit 0", () => {
  const runDir = tempRun("tiny");
  const r = train([`trainer.run_dir=${runDir}`, "--job", "tiny", "trainer.total_steps=2", "data.train_size=64", "data.val_size=16", "data.train_batch_size=8"]);
  expect(r.code, r.err).toBe(0);
  expect(r.out).toMatch(/backends: cpu/);
  expect(r.out).toMatch(/device: actor_rollout (cpu|cuda) \(auto\), critic (cpu|cuda) \(auto\), ref_policy (cpu|cuda) \(auto\)/);
  // The banner names each trained model and the context it trains at.
  expect(r.out).toContain("model: actor new gpt2 model (2 layers, width 64), context 32\nmodel: critic new gpt2 model (2 layers, width 64), context 32");
  expect(r.out).toContain("step 2/2 reward");
  expect(r.out).toMatch(/step 2\/2 .* elapsed, ETA 0:00/);
  expect(r.out).toContain(`done: ${join(runDir, "tiny")}`);
  expect(r.out).toMatch(/val reward\s+\d\.\d{3} → \d\.\d{3}/);
  expect(existsSync(join(runDir, "tiny", "metrics.jsonl"))).toBe(true);
  expect(existsSync(join(runDir, "tiny", "checkpoints", "step-2", "manifest.json"))).toBe(true);
}, 60_000);

test("--help lists and explains every option and names the runtime", () => {
  const r = train(["--help"]);
  expect(r.code).toBe(0);
  for (const flag of ["--config FILE", "key.sub=value", "--job NAME", "--resume DIR", "--chaos RATE", "--fault-plan PLAN", "--print-config", "--print-schema", "--quiet", "--help"]) {
    expect(r.out).toContain(flag);
  }
  expect(r.out).toContain(`runtime: bun ${Bun.version}`);
  expect(r.out).toContain("usage: bun run train");
});

test("--fault-plan injects exactly its faults, one console line per death and restart; a bad plan exits 2 with the form", () => {
  const runDir = tempRun("plan");
  const r = train([...tiny(runDir, "plan", 4), "--fault-plan", "critic@2:1=kill", "fault_tolerance.restart_backoff_initial_s=0.005"]);
  expect(r.code, r.err).toBe(0);
  expect(r.out).toMatch(/actor critic \(incarnation 1\) died: exit, signal SIGKILL/);
  expect(r.out).toMatch(/actor critic restarted as incarnation 2 \([\d.]+ ms, state restored\)/);
  expect(r.out).toContain("1 failures, 1 restarts (1 injected)");
  const bad = train([...tiny(runDir, "plan2", 2), "--fault-plan", "critic@2=kill"]);
  expect(bad.code).toBe(2);
  expect(bad.err).toContain('--fault-plan: fault plan entry "critic@2=kill": expected <actor>@<step>:<call>=<kill|hang|corrupt>');
}, 60_000);

test("--resume of a folder that is not a job exits 2 and says what it expected", () => {
  const r = train(["--resume", tmpdir()]);
  expect(r.code).toBe(2);
  expect(r.err).toContain("is not a job folder (no config.json)");
});

test("a config that cannot fit the task is refused before anything starts, its job folder included", () => {
  const runDir = mkdtempSync(join(tmpdir(), "revenant-cli-fit-"));
  const r = train([`trainer.run_dir=${runDir}`, "worker.actor.max_new_tokens=3"]);
  expect(r.code).toBe(2);
  expect(r.err).toContain("worker.actor.max_new_tokens=3 is too short");
  expect(readdirSync(runDir)).toEqual([]);
  rmSync(runDir, { recursive: true, force: true });
});

test("--chaos takes 0 or a rate whose intervals fit a timer, and refuses anything else with the range", () => {
  const range = "expected 0 (off) or a rate from 0.0001 to 1000 faults per second";
  for (const text of ["often", "", "-1", "1e-300", "0.00001", "1001", "Infinity"]) {
    const r = train([`--chaos=${text}`, "--print-config"]);
    expect(r.code, text).toBe(2);
    expect(r.err).toContain(`--chaos ${JSON.stringify(text)}: ${range}`);
  }
  for (const text of ["0", "0.0001", "1000"]) expect(train(["--chaos", text, "--print-config"]).code, text).toBe(0);
});

test("a configured duration that would overflow a timer is refused before anything starts", () => {
  const r = train(["fault_tolerance.call_deadline_s=1e300"]);
  expect(r.code).toBe(2);
  expect(r.err).toContain("fault_tolerance.call_deadline_s = 1e+300 (argument fault_tolerance.call_deadline_s=1e300): expected a number of seconds ≥ 0.001 and ≤ 604800");
});

test("ping_timeout_s not above ping_interval_s is refused, naming both keys, values and sources", () => {
  const r = train(["--print-config", "fault_tolerance.ping_timeout_s=0.5"], { REVENANT_FAULT_TOLERANCE__PING_INTERVAL_S: "2" });
  expect(r.code).toBe(2);
  expect(r.err).toContain("fault_tolerance.ping_timeout_s = 0.5 (argument fault_tolerance.ping_timeout_s=0.5): " +
    "must be greater than fault_tolerance.ping_interval_s = 2 (env REVENANT_FAULT_TOLERANCE__PING_INTERVAL_S)");
});

// --chaos strikes at wall-clock times: how many land depends on the machine's speed (a fast one
// may finish first), so this checks only that every fault it did inject was survived and
// counted. Tests that need faults to happen use --fault-plan (above) or FaultPlan.
test("a run with --chaos survives whatever faults it injected and counts each once", () => {
  const runDir = tempRun("chaos");
  const r = train([`trainer.run_dir=${runDir}`, "--job", "chaotic", "--chaos", "4", "trainer.total_steps=30", "data.train_size=64",
    "data.val_size=16", "data.train_batch_size=8", "worker.actor.ppo_mini_batch_size=8", "worker.critic.ppo_mini_batch_size=8",
    "fault_tolerance.max_restarts=-1", "fault_tolerance.max_task_retries=-1", "fault_tolerance.ping_interval_s=0.1",
    "fault_tolerance.ping_timeout_s=0.5", "fault_tolerance.restart_intensity=1000", "--quiet"]);
  expect(r.code, r.err).toBe(0);
  const [, failures, restarts, injected] = /faults survived\s+(\d+) failures, (\d+) restarts(?: \((\d+) injected\))?/.exec(r.out) ?? [];
  expect(failures).toBeDefined();
  expect(restarts).toBe(failures);
  expect(injected ?? "0").toBe(failures!);
}, 60_000);

test("SIGINT stops a run after its step with a checkpoint, and --resume finishes it", async () => {
  const runDir = tempRun("int");
  const args = [`trainer.run_dir=${runDir}`, "--job", "interrupted", "trainer.total_steps=400", "data.train_size=64", "data.val_size=16",
    "data.train_batch_size=8", "worker.actor.ppo_mini_batch_size=8", "worker.critic.ppo_mini_batch_size=8", "--quiet"];
  const proc = Bun.spawn([process.execPath, "runtime/service/cli/train.ts", ...args], { cwd: root, stdout: "pipe", stderr: "pipe" });
  const metrics = join(runDir, "interrupted", "metrics.jsonl");
  const until = Date.now() + 30_000;
  while (!(existsSync(metrics) && readFileSync(metrics, "utf8").split("\n").length > 5) && Date.now() < until) await Bun.sleep(20);
  proc.kill("SIGINT");
  expect(await proc.exited).toBe(130);
  const err = await new Response(proc.stderr).text();
  expect(err).toMatch(/training cancelled after step (\d+): SIGINT; continue with: bun run train --resume .*interrupted/);
  const stopped = Number(/after step (\d+)/.exec(err)![1]);
  expect(existsSync(join(runDir, "interrupted", "checkpoints", `step-${stopped}`, "manifest.json"))).toBe(true);
  const resumed = Bun.spawnSync([process.execPath, "runtime/service/cli/train.ts", "--resume", join(runDir, "interrupted"), "--quiet"], { cwd: root });
  expect(resumed.exitCode, resumed.stderr.toString()).toBe(0);
  expect(resumed.stdout.toString()).toContain(`resumed interrupted from checkpoint step ${stopped}`);
  const steps = readFileSync(metrics, "utf8").trim().split("\n").map((l) => JSON.parse(l).step);
  expect(steps).toEqual(Array.from({ length: 400 }, (_, i) => i + 1));
}, 120_000);

describe("job names: checked in createJob, so the CLI and the server both refuse bad ones", () => {
  const rule = "a job name is 1-128 characters from A-Z a-z 0-9 . _ -, starting with a letter or digit";
  const bad: Array<[string, string]> = [
    ["", "it is empty"],
    ["a/b", "it contains a path separator"],
    ["..\\x", "it contains a path separator"],
    [".", "it would name the run folder itself or its parent"],
    ["..", "it would name the run folder itself or its parent"],
    ["a\0b", "it contains a control character"],
    ["a\x1b[31mb", "it contains a control character"],
    ["x".repeat(129), "it is 129 characters long"],
    [".hidden", `it starts with "."`],
    ["-rf", `it starts with "-"`],
    ["a b", "it contains a character outside the allowed set"],
    ["é", "it contains a character outside the allowed set"],
  ];

  test("createJob refuses each bad name with the reason and the rule, and makes no folder", () => {
    const runDir = tempRun("names");
    const { config } = resolveConfig({ file: null, env: {}, args: [`trainer.run_dir=${runDir}`] });
    for (const [name, why] of bad) {
      expect(() => createJob(config, name)).toThrow(new JobError(`invalid job name ${JSON.stringify(name)}: ${why}; ${rule}`));
    }
    expect(readdirSync(runDir)).toEqual([]);
    for (const name of ["a", "run-1.b_2", "x".repeat(128)]) expect(() => checkJobName(name)).not.toThrow();
  });

  test("createJob never reuses a folder: the second job of one name is refused and the first is left alone", () => {
    const runDir = tempRun("exists");
    const { config } = resolveConfig({ file: null, env: {}, args: [`trainer.run_dir=${runDir}`] });
    const first = createJob(config, "same");
    const saved = readFileSync(first.config, "utf8");
    expect(() => createJob(config, "same")).toThrow(JobExistsError);
    expect(readFileSync(first.config, "utf8")).toBe(saved);
    // Without a name, each job gets a fresh one.
    expect(createJob(config).dir).not.toBe(createJob(config).dir);
  });

  test("--job with a bad name exits 2 with the reason", () => {
    const runDir = tempRun("badjob");
    const r = train([`trainer.run_dir=${runDir}`, "--job", "../escape"]);
    expect(r.code).toBe(2);
    expect(r.err).toContain(`invalid job name "../escape": it contains a path separator; ${rule}`);
    expect(readdirSync(runDir)).toEqual([]);
  });

  test("--job naming an existing job exits 2 and says how to continue it", () => {
    const runDir = tempRun("dupjob");
    const { config } = resolveConfig({ file: null, env: {}, args: [`trainer.run_dir=${runDir}`] });
    createJob(config, "x");
    mkdirSync(join(runDir, "notajob"));
    const r = train([`trainer.run_dir=${runDir}`, "--job", "x"]);
    expect(r.code).toBe(2);
    const dir = join(runDir, "x");
    expect(r.err).toContain(`${dir} already exists; continue it with bun run train --resume ${dir} or choose another --job`);
    const other = train([`trainer.run_dir=${runDir}`, "--job", "notajob"]);
    expect(other.code).toBe(2);
    expect(other.err).toContain(`${join(runDir, "notajob")} already exists and is not a job folder; choose another --job`);
  });

  test("--resume with --job is refused: a resumed job keeps its folder", () => {
    const r = train(["--resume", "runs/x", "--job", "y"]);
    expect(r.code).toBe(2);
    expect(r.err).toContain("--resume continues the job in its own folder; drop --job");
  });
});

/** Resolves once `metrics` has `lines` lines; rejects if the child exits first (with its stderr). */
async function untilSteps(metrics: string, lines: number, exited: Promise<unknown>, stderr: () => string): Promise<void> {
  let done = false;
  void exited.then(() => (done = true));
  const count = () => (existsSync(metrics) ? readFileSync(metrics, "utf8").split("\n").filter((l) => l.trim()).length : 0);
  while (count() < lines) {
    if (done) throw new Error(`train exited before ${lines} steps:\n${stderr()}`);
    await Bun.sleep(20);
  }
}

test("Ctrl-C with fault tolerance off: the whole process group gets SIGINT, the run checkpoints, exits 130, and --resume finishes it", async () => {
  const runDir = tempRun("ctrlc");
  const steps = 400;
  const args = [...tiny(runDir, "ctrlc", steps), "fault_tolerance.enable_fault_tolerance=false", "--quiet"];
  // Its own process group, as a shell gives a foreground job; a terminal's Ctrl-C signals the whole group.
  const child = spawn(process.execPath, ["runtime/service/cli/train.ts", ...args], { cwd: root, detached: true, stdio: ["ignore", "pipe", "pipe"] });
  let err = "";
  child.stderr.on("data", (d) => (err += d));
  child.stdout.resume();
  const exited = new Promise<{ code: number | null; signal: string | null }>((done) => child.on("exit", (code, signal) => done({ code, signal })));
  const metrics = join(runDir, "ctrlc", "metrics.jsonl");
  try {
    await untilSteps(metrics, 3, exited, () => err);
    process.kill(-child.pid!, "SIGINT");
    expect(await exited, err).toEqual({ code: 130, signal: null });
  } finally {
    if (child.exitCode === null) process.kill(-child.pid!, "SIGKILL");
  }
  expect(err).toMatch(/training cancelled after step (\d+): SIGINT; continue with: bun run train --resume .*ctrlc/);
  const stopped = Number(/after step (\d+)/.exec(err)![1]);
  expect(existsSync(join(runDir, "ctrlc", "checkpoints", `step-${stopped}`, "manifest.json"))).toBe(true);
  const resumed = Bun.spawnSync([process.execPath, "runtime/service/cli/train.ts", "--resume", join(runDir, "ctrlc"), "--quiet"], { cwd: root });
  expect(resumed.exitCode, resumed.stderr.toString()).toBe(0);
  expect(resumed.stdout.toString()).toContain(`resumed ctrlc from checkpoint step ${stopped}`);
  const done = readFileSync(metrics, "utf8").trim().split("\n").map((l) => JSON.parse(l).step);
  expect(done).toEqual(Array.from({ length: steps }, (_, i) => i + 1));
}, 180_000);
