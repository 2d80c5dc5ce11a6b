/**
 * The coordinator's job queue. Jobs are training runs (`fit`); they run in submission order, at
 * most `maxConcurrentJobs` at a time. Every status change is written to the job's durable record
 * (job_store.ts) first, so a coordinator that dies and starts again resumes the jobs that were
 * running from their last checkpoints and keeps the queued ones queued. Listeners (the SSE
 * route, the dashboard) get steps, actor events and status changes as they happen.
 *
 * Bounded: at most `maxQueuedJobs` wait (a submission beyond is refused: QueueFull); a finished
 * job keeps only plain data (its actor table and fault counters, frozen when it ends; the
 * supervisor, actor snapshots and replay logs are dropped with the fit), and only the newest
 * `keepFinishedJobs` finished jobs, none older than `keepFinishedS`, stay in memory. Older ones
 * keep their folders: `get` reads them back from disk on each request, `list` leaves them out.
 * One JobManager at a time drives a run dir (`coordinator.lock`, see checkpoint/lock.ts).
 *
 * @example
 * ```ts
 * const jobs = new JobManager({ runDir: "runs/" }).start();
 * const job = jobs.submit({ trainer: { total_steps: 20 } });
 * jobs.subscribe(job, (e) => console.log(e.type, jobs.view(job).step));
 * ```
 */
import { existsSync, rmSync, statSync } from "node:fs";
import { join } from "node:path";
import { resolveConfig } from "../../../config/index.ts";
import type { Config } from "../../../config/schema.ts";
import { hangActor, killActor } from "../../core/chaos.ts";
import { acquireLock, type Lock } from "../../core/checkpoint/lock.ts";
import type { RuntimeEvent } from "../../core/metrics/events.ts";
import { JsonLinesError, readJsonLines } from "../../core/metrics/jsonl.ts";
import type { OutputSink } from "../../core/supervisor/incarnation.ts";
import type { Supervisor } from "../../core/supervisor/supervisor.ts";
import { createJobAsync, dataName, newJobId, openJob, type JobPaths } from "../../rl/trainer/job.ts";
import { fit, TrainingCancelledError, type FitResult } from "../../rl/trainer/trainer.ts";
import { ActorNotAlive, ActorNotFound, JobNotCancellable, JobNotFound, JobNotRunning, QueueFull, ShuttingDown, StorageError } from "./job_errors.ts";
import { parseJobConfig, type RequestPolicy } from "./job_request.ts";
import { requestRoots } from "./request_paths.ts";
import { JobStore, type JobRecord, type StoredJob, type UnreadableJob } from "./job_store.ts";
import { faultSnapshot, type FaultSnapshot } from "./prometheus.ts";
import { JobIdSchema, TERMINAL_STATUSES, type ActorRow, type JobStatus, type JobView } from "./schemas.ts";

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
  /** Jobs waiting to run; a submission beyond is refused with QueueFull (default 100). */
  maxQueuedJobs?: number;
  /** Finished jobs kept in memory, newest first (default 100); older ones are read from disk when asked for. */
  keepFinishedJobs?: number;
  /** Seconds a finished job stays in memory after it ends (default 86400). */
  keepFinishedS?: number;
  /** Coordinator log lines (job status changes, resume notes); default stderr. */
  log?: (line: string) => void;
  /** Actor output; default stderr prefixed with the job and actor. */
  actorOutput?: OutputSink;
  /** The clock for the retention age (tests); default Date.now. */
  now?: () => number;
  /** Folders a request's data files (`serve --data-root`) and model folders (`--model-root`) may be in; none = no paths in requests. */
  dataRoots?: readonly string[];
  modelRoots?: readonly string[];
  /** The MLflow tracking server every job with the mlflow logger uses (`serve --mlflow-tracking-uri`). */
  mlflowTrackingUri?: string;
}

export const JOB_MANAGER_DEFAULTS = { maxConcurrentJobs: 1, maxQueuedJobs: 100, keepFinishedJobs: 100, keepFinishedS: 86_400 } as const;
/** The file that keeps a second coordinator off a run dir. */
export const COORDINATOR_LOCK = "coordinator.lock";

/** Abort reasons: a user's cancel ends the job; a coordinator shutdown leaves it to resume. */
const CANCEL = "cancelled by request";
const SHUTDOWN = "coordinator shutting down";
/** Error codes that mean the disk (or quota) is full. */
const NO_SPACE = new Set(["ENOSPC", "EDQUOT"]);

/** One job, live or loaded from its record. */
export class ManagedJob {
  /** The running fit's supervisor; dropped when the fit ends, with everything it holds. */
  supervisor: Supervisor | undefined;
  /** The actor table and fault counters as they were when the last fit ended. */
  finalActors: ActorRow[] = [];
  finalFaults: FaultSnapshot | undefined;
  /** Last completed step and its metrics. */
  step = 0;
  latest: Record<string, number> | undefined;
  /** The latest held-out evaluation reward (`val/score` appears only on evaluation steps). */
  valScore: number | undefined;
  controller: AbortController | undefined;
  done: Promise<void> | undefined;
  /** The steps its plan fixed (trainer.total_epochs over the data), once a run has made it. */
  plannedSteps: number | undefined;
  readonly listeners = new Set<(e: JobEvent) => void>();

  constructor(public record: JobRecord, readonly config: Config, readonly paths: JobPaths) {
    const last = readLog<Record<string, number>>(paths.metrics);
    this.step = last.at(-1)?.step ?? 0;
    this.latest = last.at(-1);
    this.valScore = last.findLast((m) => m["val/score"] !== undefined)?.["val/score"];
  }

  get id(): string {
    return this.record.id;
  }

  /** Steps the job runs: known from its config, or, with trainer.total_epochs, once its data is planned (null before). */
  get totalSteps(): number | null {
    if (this.plannedSteps !== undefined) return this.plannedSteps;
    if (this.config.trainer.total_epochs > 0) return this.record.result?.steps ?? null;
    return this.config.trainer.total_steps;
  }

  /** Fault counters: live while a fit runs, frozen after. */
  get faults(): FaultSnapshot | undefined {
    return this.supervisor ? faultSnapshot(this.supervisor.metrics) : this.finalFaults;
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

  /** Keeps the fit's actor table and counters as plain data and lets go of the supervisor. */
  releaseFit(rows: ActorRow[]): void {
    if (this.supervisor) this.finalFaults = faultSnapshot(this.supervisor.metrics);
    this.finalActors = rows;
    this.supervisor = undefined;
    this.controller = undefined;
  }
}

/**
 * A job's log (metrics.jsonl, events.jsonl) through the shared reader, for listing and views:
 * a torn last line is dropped; a log that is not a regular file (a device or a pipe would never
 * end the read) or is corrupt before its last line reads as empty rather than failing the
 * request (the job's own run reports the corruption).
 */
function readLog<T>(path: string): T[] {
  if (!existsSync(path) || !statSync(path).isFile()) return [];
  try {
    return readJsonLines<T>(path);
  } catch (e) {
    if (e instanceof JsonLinesError) return [];
    throw e;
  }
}


/** An integer option within [min, max], or a RangeError naming it and what is allowed. */
function intOption(name: string, value: number | undefined, dflt: number, min: number, max = Number.MAX_SAFE_INTEGER): number {
  const v = value ?? dflt;
  if (!Number.isInteger(v) || v < min || v > max) throw new RangeError(`${name} must be an integer from ${min} to ${max}, got ${value}`);
  return v;
}

const errorMessage = (e: unknown) => (e instanceof Error ? e.message : String(e));

export class JobManager {
  readonly store: JobStore;
  readonly maxConcurrentJobs: number;
  readonly maxQueuedJobs: number;
  readonly keepFinishedJobs: number;
  readonly keepFinishedS: number;
  private readonly jobs = new Map<string, ManagedJob>();
  private readonly queue: ManagedJob[] = [];
  private readonly running = new Set<ManagedJob>();
  private nextSeq = 0;
  private closing = false;
  /** Submissions whose writes are under way (they count against maxQueuedJobs). */
  private storing = 0;
  /** The last submission's writes: the next one starts after them, keeping submission order. */
  private lastStore: Promise<unknown> = Promise.resolve();
  private lock: Lock | undefined;
  private readonly log: (line: string) => void;
  private readonly output: OutputSink;
  private readonly now: () => number;
  private readonly policy: RequestPolicy;

  constructor(o: JobManagerOptions) {
    const d = JOB_MANAGER_DEFAULTS;
    this.maxConcurrentJobs = intOption("maxConcurrentJobs", o.maxConcurrentJobs, d.maxConcurrentJobs, 1);
    this.maxQueuedJobs = intOption("maxQueuedJobs", o.maxQueuedJobs, d.maxQueuedJobs, 0);
    this.keepFinishedJobs = intOption("keepFinishedJobs", o.keepFinishedJobs, d.keepFinishedJobs, 0);
    this.keepFinishedS = intOption("keepFinishedS", o.keepFinishedS, d.keepFinishedS, 0);
    this.log = o.log ?? ((line) => process.stderr.write(`${line}\n`));
    this.store = new JobStore(o.runDir, this.log);
    this.output = o.actorOutput ?? ((actor, inc, _stream, line) => process.stderr.write(`[${actor}#${inc}] ${line}\n`));
    this.now = o.now ?? Date.now;
    this.policy = { roots: requestRoots(o), mlflowTrackingUri: o.mlflowTrackingUri };
  }

  /**
   * Locks the run dir (LockedError if another coordinator drives it), then loads the durable
   * records: running jobs go back to the head of the queue (to resume), queued ones stay queued,
   * finished ones are kept within the retention limits.
   */
  start(): this {
    this.lock = acquireLock(join(this.store.root, COORDINATOR_LOCK), "coordinator", { log: this.log });
    const cutoff = this.now() - this.keepFinishedS * 1000;
    const { jobs, unreadable, nextSeq } = this.store.load((r) => !TERMINAL_STATUSES.has(r.status) || finishedAt(r) >= cutoff);
    this.nextSeq = nextSeq;
    for (const broken of unreadable) this.listUnreadable(broken);
    const interrupted: ManagedJob[] = [];
    const queued: ManagedJob[] = [];
    for (const { record, config, paths } of jobs) {
      const job = new ManagedJob(record, config, paths);
      this.jobs.set(job.id, job);
      if (record.status === "running" && record.cancel_requested) {
        this.finish(job, "cancelled", "cancelled by request (the coordinator stopped before the cancel completed)");
      } else if (record.status === "running") {
        this.log(`job ${job.id} was running when the coordinator stopped; it resumes from its last checkpoint`);
        interrupted.push(job);
      } else if (record.status === "queued") {
        queued.push(job);
      }
    }
    this.prune();
    this.queue.push(...interrupted, ...queued);
    this.pump();
    return this;
  }

  /**
   * A job folder whose record or configuration cannot be read is listed as failed, with the file
   * and the reason, so its owner sees it over the API (it is not run: nothing in it can be trusted).
   * Its record on disk is left as it is, for the operator to inspect.
   */
  private listUnreadable(broken: UnreadableJob): void {
    if (broken.id === undefined) return; // not a job id: only reported (JobStore), never reachable
    const now = new Date(this.now()).toISOString();
    const record: JobRecord = {
      format: "revenant-job/1", id: broken.id, seq: broken.seq ?? this.nextSeq++, status: "failed", submitted_at: now,
      started_at: null, finished_at: now, cancel_requested: false, error: `the job cannot be read: ${broken.problem}`, runs: 0, result: null,
    };
    this.jobs.set(broken.id, new ManagedJob(record, savedConfigOrDefaults(broken.paths), broken.paths));
  }

  /** Jobs in memory (queued, running, and the finished ones retained). */
  get size(): number {
    return this.jobs.size;
  }

  /**
   * Accepts a partial configuration; the job is durably queued before the promise resolves. The
   * checks run at once; the writes (fsynced) run off the event loop, one submission after
   * another, so jobs queue in submission order and other requests are answered meanwhile.
   */
  async submit(body: unknown): Promise<ManagedJob> {
    if (this.closing) throw new ShuttingDown("the coordinator is shutting down");
    if (this.queue.length + this.storing >= this.maxQueuedJobs) {
      throw new QueueFull(`${this.queue.length + this.storing} jobs are already waiting, the limit (--max-queued-jobs ${this.maxQueuedJobs}); submit again when one has started`);
    }
    const config = parseJobConfig(body, this.store.root, this.policy);
    this.storing++;
    const stored = this.lastStore.then(async () => {
      const id = this.newId(config);
      const record: JobRecord = {
        format: "revenant-job/1", id, seq: this.nextSeq++, status: "queued", submitted_at: new Date(this.now()).toISOString(),
        started_at: null, finished_at: null, cancel_requested: false, error: null, runs: 0, result: null,
      };
      return new ManagedJob(record, config, await this.createDurably(config, record));
    }).finally(() => this.storing--);
    this.lastStore = stored.catch(() => {});
    const job = await stored;
    this.jobs.set(job.id, job);
    this.queue.push(job);
    this.log(`job ${job.id} queued (${dataName(config)}, ${job.totalSteps ?? `${config.trainer.total_epochs} epochs`}${job.totalSteps === null ? "" : " steps"})`);
    this.pump();
    return job;
  }

  /** The job's folder, config and record, on disk before submit returns; a failed write is a StorageError naming the file. */
  private async createDurably(config: Config, record: JobRecord): Promise<JobPaths> {
    let paths: JobPaths | undefined;
    try {
      paths = await createJobAsync(config, record.id);
      await this.store.saveAsync(paths, record);
      return paths;
    } catch (e) {
      // Without its record the folder is not a job: leave nothing half made behind.
      if (paths) rmSync(paths.dir, { recursive: true, force: true });
      const code = (e as NodeJS.ErrnoException).code;
      this.log(`job ${record.id} refused: ${errorMessage(e)}`);
      throw new StorageError(`the job could not be stored: ${errorMessage(e)}`, Boolean(code && NO_SPACE.has(code)));
    }
  }

  private newId(config: Config): string {
    for (;;) {
      const id = newJobId(config, this.now());
      if (!this.jobs.has(id) && !existsSync(join(this.store.root, id))) return id;
    }
  }

  /**
   * The job, or JobNotFound. A finished job no longer in memory is read back from its folder for this
   * request only (not kept): its record, configuration and metrics, without an actor table.
   */
  get(id: string): ManagedJob {
    const job = this.jobs.get(id) ?? (JobIdSchema.safeParse(id).success ? this.fromDisk(this.store.loadOne(id)) : undefined);
    if (!job) throw new JobNotFound(`no job ${JSON.stringify(id.slice(0, 100))}`);
    return job;
  }

  private fromDisk(stored: StoredJob | undefined): ManagedJob | undefined {
    return stored && new ManagedJob(stored.record, stored.config, stored.paths);
  }

  /** The jobs in memory, in submission order (finished ones past the retention limits are not listed). */
  list(): ManagedJob[] {
    this.prune();
    return [...this.jobs.values()].sort((a, b) => a.record.seq - b.record.seq);
  }

  counts(): Record<JobStatus, number> {
    this.prune();
    const out: Record<JobStatus, number> = { queued: 0, running: 0, succeeded: 0, failed: 0, cancelled: 0 };
    for (const j of this.jobs.values()) out[j.record.status]++;
    return out;
  }

  view(job: ManagedJob): JobView {
    const r = job.record;
    return {
      id: r.id, status: r.status, task: dataName(job.config), total_steps: job.totalSteps, step: job.step,
      submitted_at: r.submitted_at, started_at: r.started_at, finished_at: r.finished_at, cancel_requested: r.cancel_requested,
      error: r.error, runs: r.runs, metrics: job.latest ?? null, actors: this.actorRows(job), result: r.result,
    };
  }

  actorRows(job: ManagedJob): ActorRow[] {
    const sup = job.supervisor;
    if (!sup) return job.finalActors;
    return sup.actors().map((a) => ({
      id: a.id, role: a.role, rank: a.rank, incarnation: a.incarnation, pid: a.pid ?? null, state: a.state,
      health: sup.metrics.healthOf(a.role) ?? null, restarts: a.restarts, failures: sup.metrics.totals(a.role).failures,
    }));
  }

  /** Per-step metrics from the job's metrics.jsonl, after step `since`. */
  history(job: ManagedJob, since = 0): Array<Record<string, number>> {
    return readLog<Record<string, number>>(job.paths.metrics).filter((m) => (m.step ?? 0) > since);
  }

  /** Every actor event of the job so far (all its runs), from events.jsonl. */
  actorEvents(job: ManagedJob): RuntimeEvent[] {
    return readLog<RuntimeEvent>(job.paths.events);
  }

  subscribe(job: ManagedJob, listener: (e: JobEvent) => void): () => void {
    job.listeners.add(listener);
    return () => job.listeners.delete(listener);
  }

  /** Cancels a queued job at once, a running one at its next step (after a final checkpoint). */
  cancel(job: ManagedJob): void {
    const status = job.record.status;
    if (TERMINAL_STATUSES.has(status)) throw new JobNotCancellable(`job ${job.id} is already ${status}`);
    if (status === "queued") {
      const at = this.queue.indexOf(job);
      if (at >= 0) this.queue.splice(at, 1);
      job.record.cancel_requested = true;
      this.finish(job, "cancelled", CANCEL);
      return;
    }
    if (job.record.cancel_requested) return;
    job.record.cancel_requested = true;
    this.persist(job);
    job.controller?.abort(CANCEL);
    job.emit({ type: "status", job: this.view(job) });
  }

  /** Chaos from outside: SIGKILL or SIGSTOP one actor of a running job. */
  signalActor(job: ManagedJob, actorId: string, signal: "SIGKILL" | "SIGSTOP"): { pid: number; incarnation: number } {
    const sup = job.supervisor;
    if (job.record.status !== "running" || !sup) throw new JobNotRunning(`job ${job.id} is ${job.record.status}; only a running job's actors can be signalled`);
    const actor = sup.actors().find((a) => a.id === actorId);
    if (!actor) throw new ActorNotFound(`job ${job.id} has no actor ${JSON.stringify(actorId)}; actors: ${sup.actors().map((a) => a.id).join(", ")}`);
    const pid = actor.current?.pid;
    const incarnation = actor.incarnation;
    if (actor.state !== "alive" || pid === undefined) throw new ActorNotAlive(`actor ${actorId} is ${actor.state}`);
    const sent = signal === "SIGKILL" ? killActor(actor) : hangActor(actor);
    if (!sent) throw new ActorNotAlive(`actor ${actorId} has no live process`);
    this.log(`job ${job.id}: ${signal} sent to ${actorId} (pid ${pid}, incarnation ${incarnation}) through the API`);
    return { pid, incarnation };
  }

  /**
   * Stops taking jobs; running ones save a checkpoint and stop, their records left "running" so
   * the next start resumes them. Resolves once every fit has ended, however it ended (a failed
   * write included), then releases the run dir's lock.
   */
  async close(): Promise<void> {
    this.closing = true;
    for (const job of this.running) job.controller?.abort(SHUTDOWN);
    await Promise.allSettled([...this.running].map((j) => j.done));
    this.lock?.release();
    this.lock = undefined;
  }

  /**
   * The last resort when a shutdown's grace period is over: SIGKILL every actor of every
   * running job, now. Their records stay "running", so the next start resumes them from their
   * last checkpoints.
   */
  killActors(): void {
    for (const job of this.running) job.supervisor?.killAllNow();
  }

  /** Jobs still running a fit (a shutdown waits for them). */
  get runningCount(): number {
    return this.running.size;
  }

  private pump(): void {
    while (!this.closing && this.running.size < this.maxConcurrentJobs) {
      const job = this.queue.shift();
      if (!job) return;
      this.running.add(job);
      job.done = this.run(job).finally(() => {
        this.running.delete(job);
        this.pump();
      });
    }
  }

  /** Runs the job's fit; never rejects, whatever fails (a write, the fit, a listener). */
  private async run(job: ManagedJob): Promise<void> {
    const resume = job.record.runs > 0;
    const controller = new AbortController();
    job.controller = controller;
    job.record.status = "running";
    job.record.started_at ??= new Date(this.now()).toISOString();
    job.record.runs++;
    this.persist(job);
    this.log(`job ${job.id} ${resume ? "resuming" : "running"}`);
    job.emit({ type: "status", job: this.view(job) });
    try {
      const result = await fit({
        config: job.config, job: job.paths, resume, signal: controller.signal,
        output: (actor, inc, stream, line) => this.output(`${job.id}/${actor}`, inc, stream, line),
        onNote: (line) => this.log(`job ${job.id}: ${line}`),
        onPlan: (plan) => (job.plannedSteps = plan.config.trainer.total_steps),
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
        job.releaseFit(this.actorRows(job));
        this.log(`job ${job.id} stopped at step ${e.step} for the shutdown; it resumes on the next start`);
        return;
      }
      if (e instanceof TrainingCancelledError) this.finish(job, "cancelled", CANCEL);
      else this.finish(job, "failed", errorMessage(e));
    }
  }

  /** Saves the job's record; a failed write is logged, never thrown (the job goes on in memory). */
  private persist(job: ManagedJob): boolean {
    try {
      this.store.save(job.paths, job.record);
      return true;
    } catch (e) {
      this.log(`job ${job.id}: its record could not be saved (${job.record.status}): ${errorMessage(e)}`);
      return false;
    }
  }

  private finish(job: ManagedJob, status: JobStatus, error: string | null, result?: FitResult): void {
    job.record.status = status;
    job.record.error = status === "succeeded" ? null : error;
    job.record.finished_at = new Date(this.now()).toISOString();
    if (result) {
      const { steps, startStep, initialValScore, finalValScore, failures, restarts, wallS, tokensPerS, weightsSha256 } = result;
      job.record.result = { steps, startStep, initialValScore: initialValScore ?? null, finalValScore, failures, restarts, wallS, tokensPerS, weightsSha256 };
    }
    this.persist(job);
    job.releaseFit(this.actorRows(job));
    this.log(`job ${job.id} ${status}${error && status !== "succeeded" ? `: ${error.split("\n")[0]}` : ""}`);
    const view = this.view(job);
    job.emit({ type: "status", job: view });
    job.emit({ type: "end", job: view });
    job.listeners.clear(); // nothing follows an end
    this.prune();
  }

  /** Drops finished jobs past the retention limits from memory; their folders stay. */
  private prune(): void {
    const cutoff = this.now() - this.keepFinishedS * 1000;
    const finished = [...this.jobs.values()].filter((j) => TERMINAL_STATUSES.has(j.record.status));
    if (finished.length <= this.keepFinishedJobs && finished.every((j) => finishedAt(j.record) >= cutoff)) return;
    finished.sort((a, b) => finishedAt(b.record) - finishedAt(a.record) || b.record.seq - a.record.seq);
    finished.forEach((j, rank) => {
      if (rank >= this.keepFinishedJobs || finishedAt(j.record) < cutoff) this.jobs.delete(j.id);
    });
  }
}

/** The job folder's saved configuration; the defaults when it cannot be read (the job is only listed, never run). */
function savedConfigOrDefaults(paths: JobPaths): Config {
  try {
    return openJob(paths.dir).config;
  } catch {
    return resolveConfig({ file: null, env: {}, values: {} }).config;
  }
}

/** When a finished job ended (ms since the epoch); its submission time if the record lacks it. */
function finishedAt(r: JobRecord): number {
  return Date.parse(r.finished_at ?? r.submitted_at) || 0;
}
