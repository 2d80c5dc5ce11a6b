/**
 * `bun run train` errors: one line naming the file or actor and the cause, the --resume command
 * where the job folder holds a job, the documented exit code, and a stack trace only with --debug.
 */
import { describe, expect, test } from "bun:test";
import { readdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { WriteError } from "../../native/files.ts";
import { errorReport, EXIT } from "../../runtime/service/cli/train.ts";
import { RewardFailedError } from "../../runtime/rl/trainer/phases.ts";
import { tempDir } from "../helpers/tmp.ts";
import { REPO_ROOT, runTrainCli } from "../helpers/train_cli.ts";

const root = REPO_ROOT;
const train = runTrainCli;
const tempRun = (tag: string) => tempDir(`revenant-clierr-${tag}-`);
/** A stack frame line, as Bun and V8 print them. */
const STACK_FRAME = /^\s+at /m;
const tiny = (runDir: string, job: string, steps: number) => [`trainer.run_dir=${runDir}`, "--job", job, `trainer.total_steps=${steps}`,
  "data.train_size=64", "data.val_size=16", "data.train_batch_size=8", "worker.actor.ppo_mini_batch_size=8", "worker.critic.ppo_mini_batch_size=8"];

describe("errorReport", () => {
  const jobDir = (() => {
    const dir = tempRun("job");
    writeFileSync(join(dir, "config.json"), "{}");
    return dir;
  })();

  test("a full or read-only disk: one line naming the file and the cause, then how to resume", () => {
    for (const code of ["ENOSPC", "EROFS"]) {
      const cause = Object.assign(new Error(`${code}: no can do, write`), { code });
      const report = errorReport(new WriteError(join(jobDir, "metrics.jsonl"), cause), jobDir, false);
      expect(report.code).toBe(EXIT.failed);
      expect(report.text).toBe(`cannot write ${join(jobDir, "metrics.jsonl")}: ${code} (${code}: no can do, write); after fixing that, continue with: bun run train --resume ${jobDir}`);
    }
  });

  test("no resume command where the folder holds no job", () => {
    const empty = tempRun("empty");
    const report = errorReport(new RewardFailedError(1, 8, "row 0: boom"), empty, false);
    expect(report.text).toBe("the reward failed on all 8 rows of step 1; the first: row 0: boom");
  });

  test("an unexpected error: one line, no stack, the hint to --debug; with --debug the stack follows", () => {
    const e = new TypeError("x is not a function\nsecond line");
    const plain = errorReport(e, undefined, false);
    expect(plain).toEqual({ code: EXIT.failed, text: "error: x is not a function (run again with --debug for the stack trace)" });
    const debug = errorReport(e, undefined, true);
    expect(debug.text.split("\n")[0]).toBe("error: x is not a function");
    expect(debug.text).toMatch(STACK_FRAME);
  });
});

describe("the CLI", () => {
  test("a reward module without score is refused in one line before the job folder exists (exit 2)", () => {
    const runDir = tempRun("reward");
    const module = join(tempRun("reward-module"), "reward.ts");
    writeFileSync(module, "export const scores = 1;\n");
    const r = train([...tiny(runDir, "noscore", 1), `reward.module=${module}`]);
    expect(r.code).toBe(EXIT.refused);
    expect(r.err.trim().split("\n")).toEqual([
      `invalid configuration: reward.module: reward module ${module} must export a function scoreBatch(rows), score(prompt, response, answer) or compute_score(data_source, solution_str, ground_truth, extra_info) returning a number (or a promise of one) (it exports: scores)`,
    ]);
    expect(readdirSync(runDir)).toEqual([]);
  });

  test("an actor death with fault tolerance off: one line naming the actor, the resume command, exit 1, no stack", () => {
    const runDir = tempRun("death");
    const r = train([...tiny(runDir, "death", 3), "fault_tolerance.enable_fault_tolerance=false", "--fault-plan", "critic@2:1=kill", "--quiet"]);
    expect(r.code).toBe(EXIT.failed);
    const line = r.err.trim().split("\n").at(-1)!;
    expect(line).toMatch(/^training failed at step 2: critic.* \(role critic\): .*SIGKILL.*; after fixing that, continue with: bun run train --resume /);
    expect(line.endsWith(`--resume ${join(runDir, "death")}`)).toBe(true);
    expect(r.err).not.toMatch(STACK_FRAME);
  }, 60_000);

  test("verl key names are noted once on the console", () => {
    const runDir = tempRun("verl");
    const r = train([...tiny(runDir, "verl", 1), "actor_rollout_ref.rollout.n=1", "trainer.test_freq=-1", "--quiet"]);
    expect(r.code, r.err).toBe(EXIT.ok);
    expect(r.out.split("\n").filter((l) => l.includes("verl key"))).toEqual([
      "verl key actor_rollout_ref.rollout.n → worker.actor.rollout_n",
      "verl key trainer.test_freq → trainer.val_interval (-1 (never) becomes 0)",
    ]);
  }, 60_000);
});

describe("bun run serve", () => {
  test("a run dir that cannot be made: one line naming it and the cause, exit 1, the stack only with --debug", () => {
    const serve = (args: string[]) => Bun.spawnSync([process.execPath, "runtime/service/cli/serve.ts", "--port", "0", ...args], { cwd: root, env: { ...process.env } });
    const plain = serve(["--run-dir", "/proc/1/revenant-runs"]);
    expect(plain.exitCode).toBe(1);
    expect(plain.stderr.toString().trim().split("\n")).toEqual([
      "revenant serve: ENOENT: no such file or directory, mkdir '/proc/1/revenant-runs' (run again with --debug for the stack trace)",
    ]);
    const debug = serve(["--run-dir", "/proc/1/revenant-runs", "--debug"]);
    expect(debug.exitCode).toBe(1);
    expect(debug.stderr.toString()).toMatch(STACK_FRAME);
  });
});
