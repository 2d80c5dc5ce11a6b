/**
 * `GET /metrics`: the Prometheus text exposition format (version 0.0.4) of the fault-tolerance
 * counters and gauges per job and role, a restart-latency histogram per job, and training gauges
 * (step, reward, throughput). Every family has HELP and TYPE lines and is written as one block,
 * so `promtool check metrics` accepts it.
 *
 * @example
 * ```ts
 * const text = renderPrometheus({ runtime: "bun", version: "1.3.0", jobs: [], counts: { queued: 0 } });
 * ```
 */
import type { MetricsRegistry } from "../metrics/registry.ts";

export const PROMETHEUS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8";

/** Restart latency buckets (seconds): restarts take milliseconds to a few seconds. */
export const RESTART_LATENCY_BUCKETS_S = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

export interface JobMetricsSource {
  id: string;
  step: number;
  totalSteps: number;
  /** The latest step's metrics (reference names), if any step ran. */
  latest: Record<string, number> | undefined;
  /** The latest held-out evaluation reward. */
  valScore: number | undefined;
  /** The fault-tolerance registry of the job's current (or last) run in this process. */
  registry: MetricsRegistry | undefined;
}

export interface PrometheusSource {
  runtime: string;
  version: string;
  counts: Record<string, number>;
  jobs: readonly JobMetricsSource[];
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

  histogram(valuesS: readonly number[], buckets: readonly number[], labels: Labels): this {
    for (const le of buckets) this.sample(valuesS.filter((v) => v <= le).length, { ...labels, le: String(le) }, "_bucket");
    this.sample(valuesS.length, { ...labels, le: "+Inf" }, "_bucket");
    this.sample(valuesS.reduce((a, b) => a + b, 0), labels, "_sum");
    this.sample(valuesS.length, labels, "_count");
    return this;
  }

  render(): string {
    return [`# HELP ${this.name} ${this.help}`, `# TYPE ${this.name} ${this.type}`, ...this.lines].join("\n");
  }
}

/** The whole exposition, ending with a newline. */
export function renderPrometheus(src: PrometheusSource): string {
  const info = new Family("revenant_build_info", "gauge", "Always 1; labels name the runtime the coordinator runs on.")
    .sample(1, { runtime: src.runtime, version: src.version });
  const jobs = new Family("revenant_jobs", "gauge", "Jobs known to the coordinator, by status.");
  for (const [status, n] of Object.entries(src.counts)) jobs.sample(n, { status });

  const failures = new Family("revenant_actor_failures_total", "counter", "Actor deaths (crash, kill, hang, protocol error) per job and role.");
  const restarts = new Family("revenant_actor_restarts_total", "counter", "Actor restarts completed (state restored) per job and role.");
  const retries = new Family("revenant_actor_retries_total", "counter", "Calls lost to an actor death and sent again, per job and role.");
  const health = new Family("revenant_actor_health", "gauge", "1 if every rank of the role passed its last health probe, 0 if not.");
  const latency = new Family("revenant_actor_restart_latency_seconds", "histogram", "Time from an actor's death to its restored restart.");
  const step = new Family("revenant_job_step", "gauge", "Last completed training step.");
  const total = new Family("revenant_job_total_steps", "gauge", "Training steps the job runs in all.");
  const reward = new Family("revenant_job_reward", "gauge", "Mean training reward of the last step (critic/score/mean).");
  const valScore = new Family("revenant_job_val_score", "gauge", "Latest held-out evaluation reward (val/score).");
  const throughput = new Family("revenant_job_throughput_tokens_per_second", "gauge", "Tokens per second of the last step (perf/throughput).");

  for (const job of src.jobs) {
    const registry = job.registry;
    if (registry) {
      for (const role of registry.knownRoles()) {
        const labels = { job: job.id, role };
        const t = registry.totals(role);
        failures.sample(t.failures, labels);
        restarts.sample(t.restarts, labels);
        retries.sample(t.retries, labels);
        const h = registry.healthOf(role);
        if (h !== undefined) health.sample(h, labels);
      }
      latency.histogram(registry.restartLatenciesMs.map((ms) => ms / 1000), RESTART_LATENCY_BUCKETS_S, { job: job.id });
    }
    const labels = { job: job.id };
    step.sample(job.step, labels);
    total.sample(job.totalSteps, labels);
    const m = job.latest;
    if (m?.["critic/score/mean"] !== undefined) reward.sample(m["critic/score/mean"], labels);
    if (m?.["perf/throughput"] !== undefined) throughput.sample(m["perf/throughput"], labels);
    if (job.valScore !== undefined) valScore.sample(job.valScore, labels);
  }
  const families = [info, jobs, failures, restarts, retries, health, latency, step, total, reward, valScore, throughput];
  return families.map((f) => f.render()).join("\n") + "\n";
}
