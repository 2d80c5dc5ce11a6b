/**
 * The coordinator's job queue. Jobs are training runs (`fit`); they run in submission order, at
 * most `maxConcurrentJobs` at a time. Every status change is written to the job's durable record
 * (job_store.ts) first, so a coordinator that dies and starts again resumes the jobs that were
 * running from their last checkpoints and keeps the queued ones queued. Listeners (the SSE
 * route, the dashboard) get steps, actor events and status changes as they happen.
 *
 * @example
 * ```ts
 * const jobs = new JobManager({ runDir: "runs/" }).start();
 * const job = jobs.submit({ trainer: { total_steps: 20 } });
 * jobs.subscribe(job, (e) => console.log(e.type, jobs.view(job).step));
 * ```
 */
import { randomBytes } from "node:crypto";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { ConfigError, resolveConfig } from "../../config/index.ts";
import type { Config, ConfigInput } from "../../config/schema.ts";
import { hangActor, killActor } from "../chaos.ts";
import type { RuntimeEvent } from "../metrics/events.ts";
import type { MetricsRegistry } from "../metrics/registry.ts";
import type { OutputSink } from "../supervisor/incarnation.ts";
import type { Supervisor } from "../supervisor/supervisor.ts";
import { createJob, type JobPaths } from "../trainer/job.ts";
import { checkJobConfig, fit, JobConfigError, TrainingCancelledError, type FitResult } from "../trainer/trainer.ts";
import { HttpError, type Problem } from "./http_error.ts";
import { JobStore, type JobRecord } from "./job_store.ts";
import type { ActorRow, JobStatus, JobView } from "./schemas.ts";

/** What a job's listeners receive. */
export type JobEvent =
  | { type: "status"; job: JobView }
  | { type: "step"; step: number; metrics: Record<string, number> }
  /** `step`: the last completed step when it happened (live events only). */
  | { type: "actor"; event: RuntimeEvent; actors: ActorRow[]; step?: number }
  | { type: "end"; job: JobView };

export interface JobManagerOptions {
  /** Folder holding every job's folder; requests never choose it. */
  runDir: string;
  /** Jobs training at once (default 1). */
  maxConcurrentJobs?: number;
  /** Coordinator log lines (job status changes, resume notes); default stderr. */
  log?: (line: string) => void;
  /** Actor output; default stderr prefixed with the job and actor. */
  actorOutput?: OutputSink;
}

const TERMINAL: ReadonlySet<JobStatus> = new Set(["succeeded", "failed", "cancelled"]);
/** Abort reasons: a user's cancel ends the job; a coordinator shutdown leaves it to resume. */
const CANCEL = "cancelled by request";
const SHUTDOWN = "coordinator shutting down";
/** Keys that must never reach an object merge (prototype pollution). */
const FORBIDDEN_KEYS = new Set(["__proto__", "constructor", "prototype"]);
const MAX_DEPTH = 8;

/** One job, live or loaded from its record. */
export class ManagedJob {
  supervisor: Supervisor | undefined;
  /** Last completed step and its metrics. */
  step = 0;
  latest: Record<string, number> | undefined;
  /** The latest held-out evaluation reward (`val/score` appears only on evaluation steps). */
  valScore: number | undefined;
  controller: AbortController | undefined;
  done: Promise<void> | undefined;
  readonly listeners = new Set<(e: JobEvent) => void>();

  constructor(public record: JobRecord, readonly config: Config, readonly paths: JobPaths) {
    const last = readJsonLines<Record<string, number>>(paths.metrics);
    this.step = last.at(-1)?.step ?? 0;
    this.latest = last.at(-1);
    this.valScore = last.findLast((m) => m["val/score"] !== undefined)?.["val/score"];
  }

  get id(): string {
    return this.record.id;
  }

  get registry(): MetricsRegistry | undefined {
    return this.supervisor?.metrics;
  }

  emit(e: JobEvent): void {
    for (const l of this.listeners) {
      try {
        l(e);
      } catch {
        // a broken listener (a closed stream) must not stop the job
      }
    }
  }
}

/** Reads a JSON-lines file, skipping a torn last line (a coordinator killed mid-append). */
export function readJsonLines<T>(path: string): T[] {
  if (!existsSync(path)) return [];
  const rows: T[] = [];
  for (const line of readFileSync(path, "utf8").split("\n")) {
    if (!line.trim()) continue;
    try {
      rows.push(JSON.parse(line) as T);
    } catch {
      // torn line
    }
  }
  return rows;
}

/** Validates a request body as a partial job configuration; 400 with every problem otherwise. */
export function parseJobConfig(body: unknown, runDir: string): Config {
  if (typeof body !== "object" || body === null || Array.isArray(body)) {
    throw new HttpError(400, "invalid_config", "the body must be a JSON object: a (partial) training configuration", [{ path: "(body)", message: "expected an object" }]);
  }
  const unsafe: Problem[] = [];
  const visit = (v: unknown, path: string[]) => {
    if (typeof v !== "object" || v === null) return;
    if (path.length >= MAX_DEPTH) {
      unsafe.push({ path: path.join("."), message: `nested deeper than ${MAX_DEPTH} levels` });
      return;
    }
    for (const key of Object.keys(v)) {
      if (FORBIDDEN_KEYS.has(key)) unsafe.push({ path: [...path, key].join("."), message: "key not allowed" });
      else visit((v as Record<string, unknown>)[key], [...path, key]);
    }
  };
  visit(body, []);
  if (unsafe.length) throw new HttpError(400, "invalid_config", "invalid configuration", unsafe);
  const raw = body as Record<string, unknown>;
  const trainer = raw.trainer;
  if (typeof trainer === "object" && trainer !== null && !Array.isArray(trainer) && "run_dir" in trainer) {
    throw new HttpError(400, "invalid_config", "invalid configuration", [{ path: "trainer.run_dir", source: "request", value: (trainer as Record<string, unknown>).run_dir, message: "set by the server (--run-dir); a request cannot choose a path" }]);
  }
  const values = trainer === undefined || (typeof trainer === "object" && trainer !== null && !Array.isArray(trainer))
    ? { ...raw, trainer: { ...(trainer as object | undefined), run_dir: runDir } }
    : raw;
  try {
    const config = resolveConfig({ file: null, env: {}, values: values as ConfigInput }).config;
    checkJobConfig(config);
    return config;
  } catch (e) {
    if (e instanceof JobConfigError) {
      throw new HttpError(400, "invalid_config", "invalid configuration", [{ path: e.path, source: "request", message: e.message }]);
    }
    if (!(e instanceof ConfigError)) throw e;
    throw new HttpError(400, "invalid_config", "invalid configuration", e.problems.map((p) => ({
      path: p.path, message: p.message, source: p.source === "code" ? "request" : p.source, ...(p.value !== undefined ? { value: p.value } : {}),
    })));
  }
}

export class JobManager {
  readonly store: JobStore;
  readonly maxConcurrentJobs: number;
  private readonly jobs = new Map<string, ManagedJob>();
  private readonly queue: ManagedJob[] = [];
  private readonly running = new Set<ManagedJob>();
  private nextSeq = 0;
  private closing = false;
  private readonly log: (line: string) => void;
  private readonly output: OutputSink;

  constructor(private readonly o: JobManagerOptions) {
    this.log = o.log ?? ((line) => process.stderr.write(`${line}\n`));
    this.store = new JobStore(o.runDir, this.log);
    this.maxConcurrentJobs = o.maxConcurrentJobs ?? 1;
    if (!Number.isInteger(this.maxConcurrentJobs) || this.maxConcurrentJobs < 1) throw new RangeError(`maxConcurrentJobs must be an integer ≥ 1, got ${o.maxConcurrentJobs}`);
    this.output = o.actorOutput ?? ((actor, inc, _stream, line) => process.stderr.write(`[${actor}#${inc}] ${line}\n`));
  }

  /** Loads the durable records: running jobs go back to the head of the queue (to resume), queued ones stay queued. */
  start(): this {
    const interrupted: ManagedJob[] = [];
    const queued: ManagedJob[] = [];
    for (const { record, config, paths } of this.store.load()) {
      const job = new ManagedJob(record, config, paths);
      this.jobs.set(job.id, job);
      this.nextSeq = Math.max(this.nextSeq, record.seq + 1);
      if (record.status === "running" && record.cancel_requested) {
        this.finish(job, "cancelled", "cancelled by request (the coordinator stopped before the cancel completed)");
      } else if (record.status === "running") {
        this.log(`job ${job.id} was running when the coordinator stopped; it resumes from its last checkpoint`);
        interrupted.push(job);
      } else if (record.status === "queued") {
        queued.push(job);
      }
    }
    this.queue.push(...interrupted, ...queued);
    this.pump();
    return this;
  }

  get size(): number {
    return this.jobs.size;
  }

  /** Accepts a partial configuration; the job is durably queued before this returns. */
  submit(body: unknown): ManagedJob {
    if (this.closing) throw new HttpError(503, "shutting_down", "the coordinator is shutting down");
    const config = parseJobConfig(body, this.store.root);
    const id = this.newId(config);
    const paths = createJob(config, id);
    this.store.sync(paths.config);
    const record: JobRecord = {
      format: "revenant-job/1", id, seq: this.nextSeq++, status: "queued", submitted_at: new Date().toISOString(),
      started_at: null, finished_at: null, cancel_requested: false, error: null, runs: 0, result: null,
    };
    this.store.save(paths, record);
    const job = new ManagedJob(record, config, paths);
    this.jobs.set(id, job);
    this.queue.push(job);
    this.log(`job ${id} queued (${config.data.task}, ${config.trainer.total_steps} steps)`);
    this.pump();
    return job;
  }

  private newId(config: Config): string {
    const stamp = new Date().toISOString().replace(/[-:]/g, "").replace(/\..*$/, "").replace("T", "-");
    for (;;) {
      const id = `${config.data.task}-${stamp}-${randomBytes(4).toString("hex")}`;
      if (!this.jobs.has(id) && !existsSync(join(this.store.root, id))) return id;
    }
  }

  /** The job, or a 404. */
  get(id: string): ManagedJob {
    const job = this.jobs.get(id);
    if (!job) throw new HttpError(404, "job_not_found", `no job ${JSON.stringify(id)}`);
    return job;
  }

  list(): ManagedJob[] {
    return [...this.jobs.values()].sort((a, b) => a.record.seq - b.record.seq);
  }

  counts(): Record<JobStatus, number> {
    const out: Record<JobStatus, number> = { queued: 0, running: 0, succeeded: 0, failed: 0, cancelled: 0 };
    for (const j of this.jobs.values()) out[j.record.status]++;
    return out;
  }

  view(job: ManagedJob): JobView {
    const r = job.record;
    return {
      id: r.id, status: r.status, task: job.config.data.task, total_steps: job.config.trainer.total_steps, step: job.step,
      submitted_at: r.submitted_at, started_at: r.started_at, finished_at: r.finished_at, cancel_requested: r.cancel_requested,
      error: r.error, runs: r.runs, metrics: job.latest ?? null, actors: this.actorRows(job), result: r.result,
    };
  }

  actorRows(job: ManagedJob): ActorRow[] {
    const sup = job.supervisor;
    if (!sup) return [];
    return sup.actors().map((a) => ({
      id: a.id, role: a.role, rank: a.rank, incarnation: a.incarnation, pid: a.pid ?? null, state: a.state,
      health: sup.metrics.healthOf(a.role) ?? null, restarts: a.restarts, failures: sup.metrics.totals(a.role).failures,
    }));
  }

  /** Per-step metrics from the job's metrics.jsonl, after step `since`. */
  history(job: ManagedJob, since = 0): Array<Record<string, number>> {
    return readJsonLines<Record<string, number>>(job.paths.metrics).filter((m) => (m.step ?? 0) > since);
  }

  /** Every actor event of the job so far (all its runs), from events.jsonl. */
  actorEvents(job: ManagedJob): RuntimeEvent[] {
    return readJsonLines<RuntimeEvent>(job.paths.events);
  }

  subscribe(job: ManagedJob, listener: (e: JobEvent) => void): () => void {
    job.listeners.add(listener);
    return () => job.listeners.delete(listener);
  }

  /** Cancels a queued job at once, a running one at its next step (after a final checkpoint). */
  cancel(job: ManagedJob): void {
    const status = job.record.status;
    if (TERMINAL.has(status)) throw new HttpError(409, "job_finished", `job ${job.id} is already ${status}`);
    if (status === "queued") {
      const at = this.queue.indexOf(job);
      if (at >= 0) this.queue.splice(at, 1);
      job.record.cancel_requested = true;
      this.finish(job, "cancelled", CANCEL);
      return;
    }
    if (job.record.cancel_requested) return;
    job.record.cancel_requested = true;
    this.store.save(job.paths, job.record);
    job.controller?.abort(CANCEL);
    job.emit({ type: "status", job: this.view(job) });
  }

  /** Chaos from outside: SIGKILL or SIGSTOP one actor of a running job. */
  signalActor(job: ManagedJob, actorId: string, signal: "SIGKILL" | "SIGSTOP"): { pid: number; incarnation: number } {
    const sup = job.supervisor;
    if (job.record.status !== "running" || !sup) throw new HttpError(409, "job_not_running", `job ${job.id} is ${job.record.status}; only a running job's actors can be signalled`);
    const actor = sup.actors().find((a) => a.id === actorId);
    if (!actor) throw new HttpError(404, "actor_not_found", `job ${job.id} has no actor ${JSON.stringify(actorId)}; actors: ${sup.actors().map((a) => a.id).join(", ")}`);
    const pid = actor.current?.pid;
    const incarnation = actor.incarnation;
    if (actor.state !== "alive" || pid === undefined) throw new HttpError(409, "actor_not_alive", `actor ${actorId} is ${actor.state}`);
    const sent = signal === "SIGKILL" ? killActor(actor) : hangActor(actor);
    if (!sent) throw new HttpError(409, "actor_not_alive", `actor ${actorId} has no live process`);
    this.log(`job ${job.id}: ${signal} sent to ${actorId} (pid ${pid}, incarnation ${incarnation}) through the API`);
    return { pid, incarnation };
  }

  /**
   * Stops taking jobs; running ones save a checkpoint and stop, their records left "running" so
   * the next start resumes them.
   */
  async close(): Promise<void> {
    this.closing = true;
    for (const job of this.running) job.controller?.abort(SHUTDOWN);
    await Promise.all([...this.running].map((j) => j.done));
  }

  private pump(): void {
    while (!this.closing && this.running.size < this.maxConcurrentJobs) {
      const job = this.queue.shift();
      if (!job) return;
      this.running.add(job);
      job.done = this.run(job).finally(() => {
        this.running.delete(job);
        job.controller = undefined;
        this.pump();
      });
    }
  }

  private async run(job: ManagedJob): Promise<void> {
    const resume = job.record.runs > 0;
    const controller = new AbortController();
    job.controller = controller;
    job.record.status = "running";
    job.record.started_at ??= new Date().toISOString();
    job.record.runs++;
    this.store.save(job.paths, job.record);
    this.log(`job ${job.id} ${resume ? "resuming" : "running"}`);
    job.emit({ type: "status", job: this.view(job) });
    try {
      const result = await fit({
        config: job.config, job: job.paths, resume, signal: controller.signal,
        output: (actor, inc, stream, line) => this.output(`${job.id}/${actor}`, inc, stream, line),
        onNote: (line) => this.log(`job ${job.id}: ${line}`),
        onSupervisor: (sup) => {
          job.supervisor = sup;
          sup.events.subscribe((event) => job.emit({ type: "actor", event, actors: this.actorRows(job), step: job.step }));
        },
        onStep: (step, metrics) => {
          job.step = step;
          job.latest = { step, ...metrics };
          if (metrics["val/score"] !== undefined) job.valScore = metrics["val/score"];
          job.emit({ type: "step", step, metrics });
        },
      });
      this.finish(job, "succeeded", null, result);
    } catch (e) {
      if (e instanceof TrainingCancelledError && controller.signal.reason === SHUTDOWN) {
        this.log(`job ${job.id} stopped at step ${e.step} for the shutdown; it resumes on the next start`);
        return;
      }
      if (e instanceof TrainingCancelledError) this.finish(job, "cancelled", CANCEL);
      else this.finish(job, "failed", e instanceof Error ? e.message : String(e));
    }
  }

  private finish(job: ManagedJob, status: JobStatus, error: string | null, result?: FitResult): void {
    job.record.status = status;
    job.record.error = status === "succeeded" ? null : error;
    job.record.finished_at = new Date().toISOString();
    if (result) {
      const { steps, startStep, initialValScore, finalValScore, failures, restarts, wallS, tokensPerS, weightsSha256 } = result;
      job.record.result = { steps, startStep, initialValScore: initialValScore ?? null, finalValScore, failures, restarts, wallS, tokensPerS, weightsSha256 };
    }
    this.store.save(job.paths, job.record);
    this.log(`job ${job.id} ${status}${error && status !== "succeeded" ? `: ${error.split("\n")[0]}` : ""}`);
    const view = this.view(job);
    job.emit({ type: "status", job: view });
    job.emit({ type: "end", job: view });
  }
}
