/**
 * A job's folder under `trainer.run_dir`: `config.json` (the resolved config), `metrics.jsonl`
 * (one line per step), `events.jsonl` (deaths, restarts, retries), `checkpoints/`, and
 * `summary.json` when it ends.
 */
import { randomBytes } from "node:crypto";
import { existsSync, mkdirSync, readFileSync } from "node:fs";
import { basename, dirname, join, resolve } from "node:path";
import type { Config } from "../../../config/schema.ts";
import { validateConfig } from "../../../config/load.ts";
import { appendLine, writeFileDurably, writeFileDurablyAsync } from "../../core/files.ts";
import { readJsonLines } from "../../core/metrics/jsonl.ts";

/** A job folder that cannot be used. */
export class JobError extends Error {
  override name = "JobError";
}

export interface JobPaths {
  id: string;
  dir: string;
  config: string;
  metrics: string;
  events: string;
  checkpoints: string;
  summary: string;
}

export function jobPaths(dir: string): JobPaths {
  const abs = resolve(dir);
  return {
    id: abs.split("/").pop()!,
    dir: abs,
    config: join(abs, "config.json"),
    metrics: join(abs, "metrics.jsonl"),
    events: join(abs, "events.jsonl"),
    checkpoints: join(abs, "checkpoints"),
    summary: join(abs, "summary.json"),
  };
}

/** A job folder that exists already: a new job never reuses one (`--resume` continues it). */
export class JobExistsError extends JobError {
  override name = "JobExistsError";
  constructor(readonly dir: string) {
    super(`${dir} already exists; a new job needs a folder of its own`);
  }
}

/** What a job name may be; said in every refusal. */
export const JOB_NAME_RULE = "a job name is 1-128 characters from A-Z a-z 0-9 . _ -, starting with a letter or digit";
const JOB_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;

/** Why `name` cannot be a job folder's name, or undefined when it can. */
export function jobNameProblem(name: string): string | undefined {
  if (JOB_NAME.test(name)) return undefined;
  if (name === "") return "it is empty";
  if (/[/\\]/.test(name)) return "it contains a path separator";
  if (name === "." || name === "..") return "it would name the run folder itself or its parent";
  // deno-lint-ignore no-control-regex
  if (/[\x00-\x1f\x7f]/.test(name)) return "it contains a control character";
  if (name.length > 128) return `it is ${name.length} characters long`;
  return /^[.-]/.test(name) ? `it starts with ${JSON.stringify(name[0])}` : "it contains a character outside the allowed set";
}

/**
 * Refuses a name that could escape `run_dir` (`..`, `a/b`), hide (`.x`), read as a flag (`-x`)
 * or garble a terminal or log line (control characters).
 */
export function checkJobName(name: string): void {
  const problem = jobNameProblem(name);
  if (problem) throw new JobError(`invalid job name ${JSON.stringify(name)}: ${problem}; ${JOB_NAME_RULE}`);
}

/**
 * What a job trains on, in a word fit for a folder name: the shipped task, or the first training
 * file's name without its extension ("train" for data/gsm8k/train.jsonl is the parent's: "gsm8k").
 * Any file name gives one: characters outside A-Z a-z 0-9 . _ - become "_", leading ". _ -" go
 * (a hidden folder, a flag) and it is cut to 64 characters, so it always starts a valid job id.
 */
export function dataName(config: Config): string {
  const file = config.data.train_files[0];
  if (file === undefined) return config.data.task;
  const stem = basename(file).replace(/\.[^.]*$/, "");
  const name = ["train", "training", "data"].includes(stem.toLowerCase()) ? basename(dirname(resolve(file))) : stem;
  return name.replace(/[^A-Za-z0-9_.-]+/g, "_").replace(/^[._-]+/, "").slice(0, 64) || "files";
}

/**
 * A job id: `<dataName>-<UTC yyyymmdd-hhmmss>-<8 hex>`. The one pattern that makes and checks ids
 * (the service looks nothing up that does not match it): anchored, with no "/" and no leading ".",
 * so an id is always one plain folder name under the run dir.
 */
export const JOB_ID_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}-\d{8}-\d{6}-[0-9a-f]{8}$/;

/** Whether `id` has the shape `newJobId` makes. */
export function isJobId(id: string): boolean {
  return JOB_ID_PATTERN.test(id);
}

/** A fresh job id for `config` (JOB_ID_PATTERN's shape), stamped with `nowMs`. */
export function newJobId(config: Config, nowMs: number = Date.now()): string {
  const stamp = new Date(nowMs).toISOString().replace(/[-:]/g, "").replace(/\..*$/, "").replace("T", "-");
  return `${dataName(config)}-${stamp}-${randomBytes(4).toString("hex")}`;
}

/**
 * Makes the job folder itself with a plain (non-recursive) mkdir: the one atomic step that
 * decides who owns the name, so two jobs racing for one name never share a folder.
 */
function makeJobDir(dir: string): boolean {
  try {
    mkdirSync(dir);
    return true;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "EEXIST") return false;
    throw e;
  }
}

/**
 * A new job folder, with the config saved in it. `id` names it (checked by `checkJobName`; an
 * existing folder is a JobExistsError); without one it is `<task>-<UTC time>-<random>`, drawn
 * again on the rare collision.
 */
export function createJob(config: Config, id?: string): JobPaths {
  const paths = reserveJobDir(config, id);
  // Durable and atomic: a job folder either has its whole config.json or none.
  writeFileDurably(paths.config, JSON.stringify(config, null, 2) + "\n");
  return paths;
}

/** `createJob` with the config written off the event loop (a server keeps answering meanwhile). */
export async function createJobAsync(config: Config, id?: string): Promise<JobPaths> {
  const paths = reserveJobDir(config, id);
  await writeFileDurablyAsync(paths.config, JSON.stringify(config, null, 2) + "\n");
  return paths;
}

/** Makes the job's folder: named `id`, or a fresh default name. */
function reserveJobDir(config: Config, id: string | undefined): JobPaths {
  if (id !== undefined) checkJobName(id);
  mkdirSync(config.trainer.run_dir, { recursive: true });
  let name = id ?? newJobId(config);
  while (!makeJobDir(join(config.trainer.run_dir, name))) {
    if (id !== undefined) throw new JobExistsError(join(config.trainer.run_dir, name));
    name = newJobId(config);
  }
  return jobPaths(join(config.trainer.run_dir, name));
}

/** Reopens a job folder for `--resume`: its saved config, validated again. */
export function openJob(dir: string): { paths: JobPaths; config: Config } {
  const paths = jobPaths(dir);
  if (!existsSync(paths.config)) throw new JobError(`${dir} is not a job folder (no config.json); expected runs/<job>`);
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(paths.config, "utf8"));
  } catch (e) {
    throw new JobError(`${paths.config}: unreadable (${(e as Error).message})`);
  }
  return { paths, config: validateConfig(raw as Record<string, unknown>, new Map([["", paths.config]])) };
}

/** Per-step metrics: appended one JSON line per step. */
export class MetricsFile {
  constructor(private readonly path: string) {}

  append(step: number, metrics: Record<string, number>): void {
    appendLine(this.path, JSON.stringify({ step, ...metrics }));
  }

  /** Every line so far; a torn last line (a coordinator killed mid-append) is left out. */
  read(): Array<Record<string, number>> {
    return readJsonLines<Record<string, number>>(this.path);
  }

  /** Drops lines after `step` (they will be produced again by a resumed run), and a torn last line. */
  truncateAfter(step: number): void {
    const keep = this.read().filter((m) => m.step! <= step);
    writeFileDurably(this.path, keep.map((m) => JSON.stringify(m) + "\n").join(""));
  }
}
