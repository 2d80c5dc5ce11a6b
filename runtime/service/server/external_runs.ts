/**
 * Read-only view of the runs that share the coordinator's run dir without being its jobs: a
 * `bun run train` job written into the same folder has `config.json` and `metrics.jsonl` but no
 * `job.json` (the coordinator's record), so the job manager never loads it. This module lists
 * such folders and serves their metrics history, and nothing else: it never writes, never
 * resumes, cancels or signals them (their actors belong to another process).
 *
 * Status, from the files alone:
 * - `succeeded`: `summary.json` is there (the trainer writes it only when a run completes);
 * - `running`: no summary, and `metrics.jsonl` changed within `liveWindowMs` (default 60 s);
 * - `stopped`: no summary and no recent step (killed, cancelled, failed or paused; the files
 *   cannot tell which).
 *
 * Mounted by app.ts as `GET /external-runs` (the list) and `GET /external-runs/:name/metrics[?since=N]`.
 *
 * @example
 * ```ts
 * for (const run of listExternalRuns("runs/")) console.log(run.id, run.status, run.step);
 * app.route("/external-runs", externalRunsApp("runs/"));
 * ```
 */
import { closeSync, existsSync, openSync, readdirSync, readFileSync, readSync, statSync, type Stats } from "node:fs";
import { join, resolve } from "node:path";
import { Hono } from "hono";
import { jobNameProblem } from "../../rl/trainer/job.ts";

/** The coordinator's own record file (job_store.ts's RECORD_FILE): a folder with one is not external. */
const RECORD_FILE = "job.json";
export const DEFAULT_LIVE_WINDOW_MS = 60_000;
/** At most this many external runs are listed (the most recently updated). */
export const DEFAULT_MAX_EXTERNAL_RUNS = 100;
/** The listing reads only this much of each metrics.jsonl's end (the latest step and val score). */
const TAIL_BYTES = 256 * 1024;
/** config.json larger than this is not read (a resolved config is a few KiB). */
const MAX_CONFIG_BYTES = 1024 * 1024;
/** GET /external-runs/:name/metrics refuses a metrics.jsonl larger than this. */
const MAX_HISTORY_BYTES = 64 * 1024 * 1024;

export type ExternalRunStatus = "succeeded" | "running" | "stopped";

export interface ExternalRun {
  id: string;
  /** Always true: tells these apart from the coordinator's jobs in a merged list. */
  external: true;
  status: ExternalRunStatus;
  task: string | null;
  total_steps: number | null;
  /** Last step in metrics.jsonl. */
  step: number;
  /** The latest `val/score` in the part of metrics.jsonl read (null if none there). */
  val_score: number | null;
  /** The latest step's metrics. */
  metrics: Record<string, number> | null;
  /** metrics.jsonl's modification time. */
  updated_at: string;
}

export interface ListOptions {
  now?: number;
  liveWindowMs?: number;
  max?: number;
}

const regularFile = (path: string): Stats | undefined => {
  try {
    const s = statSync(path);
    return s.isFile() ? s : undefined; // a device or a pipe would never end a read
  } catch {
    return undefined;
  }
};

/** The folder of external run `name` under `runDir`, or undefined if `name` is not one. */
function externalDir(runDir: string, name: string): { dir: string; metrics: Stats } | undefined {
  if (jobNameProblem(name) !== undefined) return undefined; // no `..`, `/`, hidden or odd names
  const dir = join(runDir, name);
  if (existsSync(join(dir, RECORD_FILE))) return undefined; // the coordinator's job
  if (!regularFile(join(dir, "config.json"))) return undefined;
  const metrics = regularFile(join(dir, "metrics.jsonl"));
  return metrics ? { dir, metrics } : undefined;
}

/** JSON lines, skipping any that do not parse (a torn last line, a line cut by the tail read). */
function parseLines(text: string): Array<Record<string, number>> {
  const rows: Array<Record<string, number>> = [];
  for (const line of text.split("\n")) {
    if (!line.trim()) continue;
    try {
      const row = JSON.parse(line) as unknown;
      if (typeof row === "object" && row !== null && !Array.isArray(row)) rows.push(row as Record<string, number>);
    } catch {
      // torn or cut
    }
  }
  return rows;
}

function readTail(path: string, size: number): string {
  const length = Math.min(size, TAIL_BYTES);
  const buf = new Uint8Array(length);
  const fd = openSync(path, "r");
  try {
    let off = 0;
    while (off < length) {
      const n = readSync(fd, buf, off, length - off, size - length + off);
      if (n <= 0) break;
      off += n;
    }
    return new TextDecoder().decode(buf.subarray(0, off)); // a character cut at the start spoils only a line that is skipped
  } finally {
    closeSync(fd);
  }
}

function readConfigFacts(path: string): { task: string | null; total_steps: number | null } {
  try {
    const s = regularFile(path);
    if (!s || s.size > MAX_CONFIG_BYTES) return { task: null, total_steps: null };
    const c = JSON.parse(readFileSync(path, "utf8")) as { data?: { task?: unknown }; trainer?: { total_steps?: unknown } };
    return {
      task: typeof c?.data?.task === "string" ? c.data.task : null,
      total_steps: typeof c?.trainer?.total_steps === "number" ? c.trainer.total_steps : null,
    };
  } catch {
    return { task: null, total_steps: null };
  }
}

const num = (v: unknown): number | null => (typeof v === "number" && Number.isFinite(v) ? v : null);

/** One external run's summary, or undefined if `name` is not an external run folder. */
export function readExternalRun(runDir: string, name: string, o: ListOptions = {}): ExternalRun | undefined {
  const found = externalDir(resolve(runDir), name);
  if (!found) return undefined;
  const { dir, metrics: stat } = found;
  let rows: Array<Record<string, number>> = [];
  try {
    rows = parseLines(readTail(join(dir, "metrics.jsonl"), stat.size));
  } catch {
    // unreadable: listed with no steps
  }
  const last = rows.at(-1);
  const now = o.now ?? Date.now();
  const status: ExternalRunStatus = regularFile(join(dir, "summary.json"))
    ? "succeeded"
    : now - stat.mtimeMs <= (o.liveWindowMs ?? DEFAULT_LIVE_WINDOW_MS) ? "running" : "stopped";
  return {
    id: name, external: true, status, ...readConfigFacts(join(dir, "config.json")),
    step: num(last?.step) ?? 0,
    val_score: num(rows.findLast((m) => num(m["val/score"]) !== null)?.["val/score"]),
    metrics: last ?? null,
    updated_at: new Date(stat.mtimeMs).toISOString(),
  };
}

/**
 * Every external run folder in `runDir`, oldest update first (like GET /jobs, the newest last),
 * at most `max` of them (the most recently updated).
 */
export function listExternalRuns(runDir: string, o: ListOptions = {}): ExternalRun[] {
  let names: string[];
  try {
    names = readdirSync(resolve(runDir));
  } catch {
    return [];
  }
  const runs = names.flatMap((name) => readExternalRun(runDir, name, o) ?? []);
  runs.sort((a, b) => a.updated_at.localeCompare(b.updated_at) || a.id.localeCompare(b.id));
  return runs.slice(-(o.max ?? DEFAULT_MAX_EXTERNAL_RUNS));
}

/** An external run's per-step metrics after step `since`; undefined if `name` is not an external run. */
export function externalRunHistory(runDir: string, name: string, since = 0): Array<Record<string, number>> | undefined {
  const found = externalDir(resolve(runDir), name);
  if (!found) return undefined;
  if (found.metrics.size > MAX_HISTORY_BYTES) throw new RangeError(`metrics.jsonl is over ${MAX_HISTORY_BYTES} bytes`);
  return parseLines(readFileSync(join(found.dir, "metrics.jsonl"), "utf8")).filter((m) => (num(m.step) ?? 0) > since);
}

const error = (status: number, code: string, message: string) => ({ error: { status, code, message } });

/**
 * The routes, as a Hono app to mount under `/external-runs`:
 * `GET /` → `{runs: ExternalRun[]}`; `GET /:name/metrics[?since=N]` → `{id, steps}` (404 for
 * anything that is not an external run folder, 400 for a bad `since`, 413 for a huge history).
 */
export function externalRunsApp(runDir: string, o: Omit<ListOptions, "now"> = {}): Hono {
  const app = new Hono();
  app.get("/", (c) => c.json({ runs: listExternalRuns(runDir, o) }));
  app.get("/:name/metrics", (c) => {
    const name = c.req.param("name");
    const sinceText = c.req.query("since");
    const since = sinceText === undefined ? 0 : Number(sinceText);
    if (!Number.isInteger(since) || since < 0) return c.json(error(400, "invalid_query", "since: expected an integer ≥ 0"), 400);
    let steps: Array<Record<string, number>> | undefined;
    try {
      steps = externalRunHistory(runDir, name, since);
    } catch (e) {
      if (!(e instanceof RangeError)) throw e;
      return c.json(error(413, "history_too_large", e.message), 413);
    }
    if (!steps) return c.json(error(404, "run_not_found", `no external run ${JSON.stringify(name.slice(0, 100))}`), 404);
    return c.json({ id: name, steps });
  });
  return app;
}
