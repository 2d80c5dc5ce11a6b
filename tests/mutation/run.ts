/**
 * The mutation run (`bun run mutate`): applies each one-line mutant of mutants.ts to a copy of
 * this checkout, runs only the test files that should catch it, and prints the score and the
 * survivors. A mutant that no test notices is a behaviour no test pins down.
 *
 * The checkout is never written to. Its files (tracked, and untracked ones git does not ignore)
 * are copied to a temporary folder with node_modules linked in; mutants are applied there, one
 * at a time, and undone before the next. Native mutants are compiled in the copy's own build
 * folder, which the tests load through REVENANT_ADDON. The temporary folder is removed at the
 * end, on Ctrl-C and on SIGTERM (only a SIGKILL can leave a /tmp/revenant-mutate-* behind).
 *
 *   bun run mutate                  every mutant (about 15 minutes on two cores)
 *   bun run mutate ppo minibatch    mutants whose area or file contains one of the words
 *   bun run mutate --list           the mutants, without running anything
 *
 * Exit status: 0 when every survivor is explained as equivalent, 1 otherwise, 2 when the run
 * could not be made (a stale mutant, a failing baseline, a build error).
 */
import { spawn, spawnSync } from "node:child_process";
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { constants, tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { MUTANTS, type Mutant } from "./mutants.ts";

const CHECKOUT = resolve(import.meta.dir, "..", "..");
/** A test run that takes this much longer than its baseline is stopped: the mutant made it hang. */
const HANG_FACTOR = 3;
const HANG_MARGIN_S = 60;

type Outcome = "killed" | "timeout" | "survived";

interface Workspace {
  root: string;
  tree: string;
  env: Record<string, string>;
}

/** The child process running now, killed (its whole process group) if the run is interrupted. */
let running: number | undefined;
let workspace: Workspace | undefined;

async function main(): Promise<number> {
  const args = process.argv.slice(2);
  const selected = select(MUTANTS, args.filter((a) => !a.startsWith("--")));
  const stale = staleMutants(selected);
  if (stale.length > 0) return fail(`mutants that no longer match the code (update tests/mutation/mutants.ts):\n${stale.join("\n")}`);
  if (args.includes("--list")) {
    selected.forEach((m) => console.log(`${m.area.padEnd(20)} ${describe(m)}`));
    return 0;
  }
  if (selected.length === 0) return fail("no mutant matches");
  installCleanup();
  const native = selected.some(isNative);
  workspace = copyCheckout(native);
  console.log(`${selected.length} mutants; working copy ${workspace.tree}`);
  if (native) buildAddon(workspace);
  const baseline = await runBaseline(workspace, selected);
  if (!baseline) return fail("the tests fail on the unmutated copy: fix them before measuring them");
  const results: { mutant: Mutant; outcome: Outcome }[] = [];
  for (const [i, m] of selected.entries()) {
    results.push({ mutant: m, outcome: await runMutant(workspace, m, baseline, `${i + 1}/${selected.length}`) });
  }
  return report(results);
}

/** Mutants whose area or file contains one of `words` (all of them when there are none). */
function select(all: readonly Mutant[], words: string[]): Mutant[] {
  if (words.length === 0) return [...all];
  return all.filter((m) => words.some((w) => m.area.includes(w) || m.file.includes(w)));
}

/** Mutants whose text is not found exactly once in its file, or whose test files are gone. */
function staleMutants(mutants: readonly Mutant[]): string[] {
  const problems: string[] = [];
  for (const m of mutants) {
    const path = join(CHECKOUT, m.file);
    const count = existsSync(path) ? readFileSync(path, "utf8").split(m.from).length - 1 : 0;
    if (count !== 1) problems.push(`  ${describe(m)}: found ${count} times`);
    if (m.from.includes("\n") || m.to.includes("\n")) problems.push(`  ${describe(m)}: more than one line`);
    for (const t of m.tests) if (!existsSync(join(CHECKOUT, t))) problems.push(`  ${describe(m)}: no test file ${t}`);
  }
  return problems;
}

const isNative = (m: Mutant) => /\.(cc|h|cu|cuh)$/.test(m.file);
const describe = (m: Mutant) => `${m.file}: ${JSON.stringify(m.from)} → ${JSON.stringify(m.to)}`;

/** Copies the checkout's files to a temporary folder, node_modules linked, not copied. */
function copyCheckout(native: boolean): Workspace {
  const root = mkdtempSync(join(tmpdir(), "revenant-mutate-"));
  const tree = join(root, "tree");
  const tmp = join(root, "tmp");
  mkdirSync(tmp);
  for (const file of sourceFiles()) {
    mkdirSync(dirname(join(tree, file)), { recursive: true });
    cpSync(join(CHECKOUT, file), join(tree, file));
  }
  symlinkSync(join(CHECKOUT, "node_modules"), join(tree, "node_modules"));
  // With native mutants, every test loads the copy's own addon; otherwise the checkout's, only read.
  const addon = native ? join(tree, "build", "Release", "revenant.node") : join(CHECKOUT, "build", "Release", "revenant.node");
  // TMPDIR inside the workspace: what a test run stopped half-way leaves behind goes with it.
  const env = { ...(process.env as Record<string, string>), REVENANT_ADDON: addon, TMPDIR: tmp, REVENANT_CUDA: "0" };
  return { root, tree, env };
}

/** Builds the unmutated addon and native test executable in the copy's build folder (CPU only). */
function buildAddon(ws: Workspace): void {
  console.log("building the addon in the working copy (a minute or two)");
  if (!command(ws, ["bun", "run", "build:native"])) throw new Error("the native build of the unmutated copy failed");
}

/** Tracked files and untracked ones git does not ignore, as they are in the working tree now. */
function sourceFiles(): string[] {
  const out = spawnSync("git", ["ls-files", "-z", "--cached", "--others", "--exclude-standard"], { cwd: CHECKOUT, encoding: "utf8" });
  if (out.status !== 0) throw new Error(`git ls-files failed in ${CHECKOUT}: ${out.stderr}`);
  return out.stdout.split("\0").filter((f) => f !== "" && existsSync(join(CHECKOUT, f)));
}

/** Runs a command in the copy, output discarded; true when it succeeds. */
function command(ws: Workspace, argv: string[]): boolean {
  const r = spawnSync(argv[0]!, argv.slice(1), { cwd: ws.tree, env: ws.env, stdio: ["ignore", "pipe", "pipe"], encoding: "utf8" });
  if (r.status !== 0) console.log(`${argv.join(" ")} failed:\n${(r.stdout + r.stderr).slice(-3000)}`);
  return r.status === 0;
}

/** Seconds each distinct test set takes unmutated; undefined when one of them fails. */
async function runBaseline(ws: Workspace, mutants: readonly Mutant[]): Promise<Map<string, number> | undefined> {
  const seconds = new Map<string, number>();
  for (const [key, m] of new Map(mutants.map((m) => [testKey(m), m]))) {
    const run = await runTests(ws, m, Infinity);
    console.log(`baseline ${run.outcome === "survived" ? "passes" : "FAILS"} in ${run.seconds.toFixed(1)}s: ${key}`);
    if (run.outcome !== "survived") {
      console.log(run.output.slice(-4000));
      return undefined;
    }
    seconds.set(key, run.seconds);
  }
  return seconds;
}

const testKey = (m: Mutant) => [...m.tests].sort().join(" ") + (m.filter ? ` -t ${JSON.stringify(m.filter)}` : "");

/** Applies one mutant, runs its tests, undoes it; a native mutant is compiled before and after. */
async function runMutant(ws: Workspace, m: Mutant, baseline: Map<string, number>, counter: string): Promise<Outcome> {
  const path = join(ws.tree, m.file);
  const original = readFileSync(path, "utf8");
  writeFileSync(path, original.replace(m.from, () => m.to));
  try {
    if (isNative(m) && !command(ws, ["cmake", "--build", "build"])) throw new Error(`the mutant does not compile: ${describe(m)}`);
    const limit = HANG_FACTOR * baseline.get(testKey(m))! + HANG_MARGIN_S;
    const run = await runTests(ws, m, limit);
    console.log(`${counter.padStart(7)} ${run.outcome.padEnd(8)} ${run.seconds.toFixed(1).padStart(6)}s  ${m.area}: ${describe(m)}`);
    if (run.outcome === "killed") console.log(`${" ".repeat(17)}by ${firstFailure(run.output)}`);
    return run.outcome;
  } finally {
    writeFileSync(path, original);
    if (isNative(m) && !command(ws, ["cmake", "--build", "build"])) throw new Error("the restored native sources do not compile");
  }
}

/** Runs `bun test` on a mutant's test files in the copy, stopped after `limitS` seconds. */
async function runTests(ws: Workspace, m: Mutant, limitS: number): Promise<{ outcome: Outcome; seconds: number; output: string }> {
  const started = performance.now();
  const args = ["test", ...m.tests.map((f) => `./${f}`), ...(m.filter ? ["-t", m.filter] : [])];
  // Its own process group, so a run stopped for hanging takes the actors it started with it.
  const child = spawn("bun", args, { cwd: ws.tree, env: ws.env, detached: true, stdio: ["ignore", "pipe", "pipe"] });
  running = child.pid;
  let output = "";
  child.stdout!.on("data", (d) => (output += d));
  child.stderr!.on("data", (d) => (output += d));
  const result = await exitOf(child, limitS);
  running = undefined;
  const seconds = (performance.now() - started) / 1000;
  const outcome: Outcome = result === "timeout" ? "timeout" : result === 0 ? "survived" : "killed";
  return { outcome, seconds, output };
}

/** The first test bun reports failed, so a kill can be traced to the test that made it. */
function firstFailure(output: string): string {
  const line = output.split("\n").find((l) => l.startsWith("(fail) "));
  return line ? line.slice("(fail) ".length).replace(/ \[[\d.]+m?s\]$/, "") : "a failure outside any test (see bun test's output)";
}

/** The child's exit status, or "timeout" once `limitS` has passed (its process group then killed). */
function exitOf(child: ReturnType<typeof spawn>, limitS: number): Promise<number | "timeout"> {
  return new Promise((resolve) => {
    let timedOut = false;
    const timer = Number.isFinite(limitS) ? setTimeout(() => ((timedOut = true), killGroup(child.pid)), limitS * 1000) : undefined;
    child.on("exit", (code, signal) => {
      clearTimeout(timer);
      resolve(timedOut ? "timeout" : (code ?? (signal ? 128 : 1)));
    });
  });
}

function killGroup(pid: number | undefined): void {
  if (pid === undefined) return;
  try {
    process.kill(-pid, "SIGKILL");
  } catch {
    // already gone
  }
}

/** Prints every survivor and the score; the exit status says whether any survivor is unexplained. */
function report(results: { mutant: Mutant; outcome: Outcome }[]): number {
  const killed = results.filter((r) => r.outcome !== "survived");
  const survivors = results.filter((r) => r.outcome === "survived");
  const unexplained = survivors.filter((r) => !r.mutant.equivalent);
  const wronglyMarked = killed.filter((r) => r.mutant.equivalent);
  const pct = (100 * killed.length) / results.length;
  console.log(`\nmutation score: ${killed.length} of ${results.length} killed (${pct.toFixed(1)}%), ` +
    `${results.filter((r) => r.outcome === "timeout").length} of them by a timeout`);
  for (const r of survivors) {
    console.log(`  survived${r.mutant.equivalent ? " (equivalent)" : ""}: ${r.mutant.area}: ${describe(r.mutant)}`);
    if (r.mutant.equivalent) console.log(`    ${r.mutant.equivalent}`);
  }
  for (const r of wronglyMarked) console.log(`  killed but marked equivalent (remove the mark): ${describe(r.mutant)}`);
  if (unexplained.length > 0) console.log(`${unexplained.length} survivors are neither killed nor explained: add a test, or explain why they are equivalent`);
  return unexplained.length > 0 ? 1 : 0;
}

function fail(message: string): number {
  console.error(message);
  return 2;
}

/** Removes the workspace on every way out; a signal first stops the test run in progress. */
function installCleanup(): void {
  const cleanup = () => {
    killGroup(running);
    if (workspace) rmSync(workspace.root, { recursive: true, force: true });
    workspace = undefined;
  };
  process.on("exit", cleanup);
  for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"] as const) {
    process.on(signal, () => {
      cleanup();
      process.exit(128 + constants.signals[signal]);
    });
  }
}

try {
  process.exitCode = await main();
} catch (e) {
  process.exitCode = fail(`the mutation run stopped: ${(e as Error).message}`);
}
