/**
 * `GET /metrics`: the Prometheus text exposition format (version 0.0.4) of the fault-tolerance
 * counters and gauges per job and role, a restart-latency histogram per job, and training gauges
 * (step, reward, throughput). Every family has HELP and TYPE lines and is written as one block,
 * so `promtool check metrics` accepts it.
 *
 * Jobs are labelled `job_id`, never `job`: Prometheus sets `job` itself (the scrape job's name)
 * and would overwrite it. The number of labelled series is capped (`maxSeries`): jobs are taken
 * in the order given (the app puts running and queued jobs first, then the most recently
 * finished) and a job whose series would pass the cap is left out whole, with every job after
 * it; `revenant_metrics_omitted_jobs` says how many were left out.
 *
 * @example
 * ```ts
 * const text = renderPrometheus({ runtime: "bun", version: "1.3.0", jobs: [], counts: { queued: 0 } });
 * ```
 */
import type { MetricsRegistry } from "../../core/metrics/registry.ts";

export const PROMETHEUS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8";

/** Restart latency buckets (seconds): restarts take milliseconds to a few seconds. */
export const RESTART_LATENCY_BUCKETS_S = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

/** Default cap on the labelled series of one exposition. */
export const DEFAULT_MAX_SERIES = 10_000;

/** A job's fault-tolerance figures as plain data: live from its registry, or frozen when it ends. */
export interface FaultSnapshot {
  roles: Array<{ role: string; failures: number; restarts: number; retries: number; health: number | undefined; ranks?: number }>;
  /** Cumulative counts per RESTART_LATENCY_BUCKETS_S bucket, then the sum and count (seconds). */
  restartLatency: { buckets: number[]; sum: number; count: number };
}

/** The registry's figures now: a few numbers per role, however many restarts happened. */
export function faultSnapshot(registry: MetricsRegistry): FaultSnapshot {
  const latenciesS = registry.restartLatenciesMs.map((ms) => ms / 1000);
  return {
    roles: registry.knownRoles().map((role) => {
      const ranks = registry.ranksOf(role);
      return { role, ...registry.totals(role), health: registry.healthOf(role), ...(ranks === undefined ? {} : { ranks }) };
    }),
    restartLatency: {
      buckets: RESTART_LATENCY_BUCKETS_S.map((le) => latenciesS.filter((v) => v <= le).length),
      sum: latenciesS.reduce((a, b) => a + b, 0),
      count: latenciesS.length,
    },
  };
}

export interface JobMetricsSource {
  id: string;
  step: number;
  /** null while a job set by trainer.total_epochs has not planned its data: no sample then. */
  totalSteps: number | null;
  /** The latest step's metrics (reference names), if any step ran. */
  latest: Record<string, number> | undefined;
  /** The latest held-out evaluation reward. */
  valScore: number | undefined;
  /** Fault-tolerance figures of the job's current (or last) run in this process. */
  faults: FaultSnapshot | undefined;
}

export interface PrometheusSource {
  runtime: string;
  version: string;
  counts: Record<string, number>;
  /** In order of priority: jobs past the series cap are left out from the end. */
  jobs: readonly JobMetricsSource[];
  /** Cap on the series of all jobs together (default DEFAULT_MAX_SERIES). */
  maxSeries?: number;
}

type Labels = Record<string, string>;

const escapeLabel = (v: string) => v.replace(/\\/g, "\\\\").replace(/\n/g, "\\n").replace(/"/g, '\\"');
const formatLabels = (labels: Labels) => {
  const parts = Object.entries(labels).map(([k, v]) => `${k}="${escapeLabel(v)}"`);
  return parts.length ? `{${parts.join(",")}}` : "";
};
function formatValue(v: number): string {
  if (Number.isNaN(v)) return "NaN";
  if (v === Infinity) return "+Inf";
  if (v === -Infinity) return "-Inf";
  return String(v);
}

/** One metric family: HELP, TYPE and its samples together. */
class Family {
  private readonly lines: string[] = [];
  constructor(readonly name: string, readonly type: "counter" | "gauge" | "histogram", readonly help: string) {}

  sample(value: number, labels: Labels = {}, suffix = ""): this {
    this.lines.push(`${this.name}${suffix}${formatLabels(labels)} ${formatValue(value)}`);
    return this;
  }

  get size(): number {
    return this.lines.length;
  }

  /** Drops the samples after the first `size` (a job that did not fit under the cap). */
  truncate(size: number): void {
    this.lines.length = size;
  }

  render(): string {
    return [`# HELP ${this.name} ${this.help}`, `# TYPE ${this.name} ${this.type}`, ...this.lines].join("\n");
  }
}

/** The per-job families, filled job by job. */
class JobFamilies {
  readonly failures = new Family("revenant_actor_failures_total", "counter", "Actor deaths (crash, kill, hang, protocol error) per job and role.");
  readonly restarts = new Family("revenant_actor_restarts_total", "counter", "Actor restarts completed (state restored) per job and role.");
  readonly retries = new Family("revenant_actor_retries_total", "counter", "Calls lost to an actor death and sent again, per job and role.");
  readonly health = new Family("revenant_actor_health", "gauge", "1 if every rank of the role passed its last health probe, 0 if not.");
  readonly ranks = new Family("revenant_actor_ranks", "gauge", "Ranks left in an elastic group (rollout workers), per job and role.");
  readonly latency = new Family("revenant_actor_restart_latency_seconds", "histogram", "Time from an actor's death to its restored restart.");
  readonly step = new Family("revenant_job_step", "gauge", "Last completed training step.");
  readonly total = new Family("revenant_job_total_steps", "gauge", "Training steps the job runs in all.");
  readonly reward = new Family("revenant_job_reward", "gauge", "Mean training reward of the last step (critic/score/mean).");
  readonly valScore = new Family("revenant_job_val_score", "gauge", "Latest held-out evaluation reward (val/score).");
  readonly throughput = new Family("revenant_job_throughput_tokens_per_second", "gauge", "Tokens per second of the last step (perf/throughput).");
  readonly all = [this.failures, this.restarts, this.retries, this.health, this.ranks, this.latency, this.step, this.total, this.reward, this.valScore, this.throughput];

  get series(): number {
    return this.all.reduce((n, f) => n + f.size, 0);
  }

  add(job: JobMetricsSource): void {
    const labels = { job_id: job.id };
    if (job.faults) {
      for (const r of job.faults.roles) {
        const roleLabels = { ...labels, role: r.role };
        this.failures.sample(r.failures, roleLabels);
        this.restarts.sample(r.restarts, roleLabels);
        this.retries.sample(r.retries, roleLabels);
        if (r.health !== undefined) this.health.sample(r.health, roleLabels);
        if (r.ranks !== undefined) this.ranks.sample(r.ranks, roleLabels);
      }
      const h = job.faults.restartLatency;
      RESTART_LATENCY_BUCKETS_S.forEach((le, i) => this.latency.sample(h.buckets[i] ?? 0, { ...labels, le: String(le) }, "_bucket"));
      this.latency.sample(h.count, { ...labels, le: "+Inf" }, "_bucket").sample(h.sum, labels, "_sum").sample(h.count, labels, "_count");
    }
    this.step.sample(job.step, labels);
    if (job.totalSteps !== null) this.total.sample(job.totalSteps, labels);
    const m = job.latest;
    if (m?.["critic/score/mean"] !== undefined) this.reward.sample(m["critic/score/mean"], labels);
    if (m?.["perf/throughput"] !== undefined) this.throughput.sample(m["perf/throughput"], labels);
    if (job.valScore !== undefined) this.valScore.sample(job.valScore, labels);
  }

  /** Adds the job if its series fit under `max`; otherwise leaves every family as it was. */
  addWithin(job: JobMetricsSource, max: number): boolean {
    const sizes = this.all.map((f) => f.size);
    this.add(job);
    if (this.series <= max) return true;
    this.all.forEach((f, i) => f.truncate(sizes[i]!));
    return false;
  }
}

/** The whole exposition, ending with a newline. */
export function renderPrometheus(src: PrometheusSource): string {
  const info = new Family("revenant_build_info", "gauge", "Always 1; labels name the runtime the coordinator runs on.")
    .sample(1, { runtime: src.runtime, version: src.version });
  const jobs = new Family("revenant_jobs", "gauge", "Jobs the coordinator holds in memory, by status.");
  for (const [status, n] of Object.entries(src.counts)) jobs.sample(n, { status });

  const perJob = new JobFamilies();
  const max = src.maxSeries ?? DEFAULT_MAX_SERIES;
  let included = 0;
  while (included < src.jobs.length && perJob.addWithin(src.jobs[included]!, max)) included++;
  const omitted = new Family("revenant_metrics_omitted_jobs", "gauge", "Jobs left out of this exposition because their series would pass the cap (--max-metric-series).")
    .sample(src.jobs.length - included);

  const families = [info, jobs, omitted, ...perJob.all];
  return families.map((f) => f.render()).join("\n") + "\n";
}
