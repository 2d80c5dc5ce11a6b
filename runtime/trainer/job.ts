/**
 * A job's folder under `trainer.run_dir`: `config.json` (the resolved config), `metrics.jsonl`
 * (one line per step), `events.jsonl` (deaths, restarts, retries), `checkpoints/`, and
 * `summary.json` when it ends.
 */
import { randomBytes } from "node:crypto";
import { appendFileSync, existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import type { Config } from "../../config/schema.ts";
import { validateConfig } from "../../config/load.ts";

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

/** A new job folder, named `<task>-<UTC time>-<random>`, with the config saved in it. */
export function createJob(config: Config, id?: string): JobPaths {
  const stamp = new Date().toISOString().replace(/[-:]/g, "").replace(/\..*$/, "").replace("T", "-");
  const paths = jobPaths(join(config.trainer.run_dir, id ?? `${config.data.task}-${stamp}-${randomBytes(2).toString("hex")}`));
  mkdirSync(paths.dir, { recursive: true });
  writeFileSync(paths.config, JSON.stringify(config, null, 2) + "\n");
  return paths;
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
    appendFileSync(this.path, JSON.stringify({ step, ...metrics }) + "\n");
  }

  /** Every line so far. */
  read(): Array<Record<string, number>> {
    if (!existsSync(this.path)) return [];
    return readFileSync(this.path, "utf8").split("\n").filter((l) => l.trim()).map((l) => JSON.parse(l));
  }

  /** Drops lines after `step` (they will be produced again by a resumed run). */
  truncateAfter(step: number): void {
    const keep = this.read().filter((m) => m.step! <= step);
    writeFileSync(this.path, keep.map((m) => JSON.stringify(m) + "\n").join(""));
  }
}
