/**
 * Fault-tolerance metrics with the reference's names and semantics, per training step:
 *
 *   actor_failures/<role>             failures of that role during this step
 *   actor_failures/total              failures of all roles during this step
 *   actor_failures/<role>_cumulative  failures of that role since the job started
 *   actor_restarts/...                the same three shapes for restarts
 *   actor_health/<role>               1 if every rank of the role passed its last probe, else 0
 *   actor_ranks/<role>                ranks left in an elastic group (set for elastic groups only)
 *
 * plus retries (`actor_retries/...`, same shapes) and restart latencies for the Prometheus
 * histogram. `step()` returns the step's values and starts the next step.
 */

export const COUNTERS = ["actor_failures", "actor_restarts", "actor_retries"] as const;
export type Counter = (typeof COUNTERS)[number];

export interface RoleTotals {
  failures: number;
  restarts: number;
  retries: number;
}

/** What survives a resume: the cumulative counters, health and restart latencies (msgpack/JSON-safe). */
export interface RegistryState {
  roles: string[];
  cumulative: Record<string, number>;
  health: Record<string, number>;
  restartLatenciesMs: number[];
}

export class MetricsRegistry {
  private readonly roles = new Set<string>();
  private readonly stepCounts = new Map<string, number>();
  private readonly cumulative = new Map<string, number>();
  private readonly health = new Map<string, number>();
  private readonly ranks = new Map<string, number>();
  /** Restart latencies (ms) since the start, for histograms. */
  readonly restartLatenciesMs: number[] = [];

  /** Declares a role so its series exist (as zeros) before anything happens to it. */
  addRole(role: string): void {
    this.roles.add(role);
  }

  private bump(counter: Counter, role: string): void {
    this.roles.add(role);
    const key = `${counter}/${role}`;
    this.stepCounts.set(key, (this.stepCounts.get(key) ?? 0) + 1);
    this.cumulative.set(key, (this.cumulative.get(key) ?? 0) + 1);
  }

  recordFailure(role: string): void {
    this.bump("actor_failures", role);
  }

  recordRestart(role: string, latencyMs?: number): void {
    this.bump("actor_restarts", role);
    if (latencyMs !== undefined) this.restartLatenciesMs.push(latencyMs);
  }

  recordRetry(role: string): void {
    this.bump("actor_retries", role);
  }

  setHealth(role: string, healthy: boolean): void {
    this.roles.add(role);
    this.health.set(role, healthy ? 1 : 0);
  }

  /** Ranks left in an elastic group of `role`. */
  setRanks(role: string, live: number): void {
    this.roles.add(role);
    this.ranks.set(role, live);
  }

  ranksOf(role: string): number | undefined {
    return this.ranks.get(role);
  }

  /** Totals since the start, per role. */
  totals(role: string): RoleTotals {
    return {
      failures: this.cumulative.get(`actor_failures/${role}`) ?? 0,
      restarts: this.cumulative.get(`actor_restarts/${role}`) ?? 0,
      retries: this.cumulative.get(`actor_retries/${role}`) ?? 0,
    };
  }

  knownRoles(): string[] {
    return [...this.roles].sort();
  }

  healthOf(role: string): number | undefined {
    return this.health.get(role);
  }

  /**
   * The counters to keep across a coordinator restart; saved with every checkpoint so
   * `*_cumulative` metrics and Prometheus counters never go back to zero on `--resume`.
   */
  save(): RegistryState {
    return {
      roles: [...this.roles],
      cumulative: Object.fromEntries(this.cumulative),
      health: Object.fromEntries(this.health),
      restartLatenciesMs: [...this.restartLatenciesMs],
    };
  }

  /** Continues from a saved state (counts since then, made by this process, are added on top). */
  restore(state: RegistryState): void {
    for (const role of state.roles) this.roles.add(role);
    for (const [key, n] of Object.entries(state.cumulative)) this.cumulative.set(key, (this.cumulative.get(key) ?? 0) + n);
    for (const [role, h] of Object.entries(state.health)) if (!this.health.has(role)) this.health.set(role, h);
    this.restartLatenciesMs.unshift(...state.restartLatenciesMs);
  }

  /** This step's metrics (reference names), then resets the per-step counts. */
  step(): Record<string, number> {
    const out: Record<string, number> = {};
    for (const counter of COUNTERS) {
      let total = 0;
      for (const role of this.knownRoles()) {
        const key = `${counter}/${role}`;
        const n = this.stepCounts.get(key) ?? 0;
        out[key] = n;
        out[`${key}_cumulative`] = this.cumulative.get(key) ?? 0;
        total += n;
      }
      out[`${counter}/total`] = total;
    }
    for (const role of this.knownRoles()) {
      const h = this.health.get(role);
      if (h !== undefined) out[`actor_health/${role}`] = h;
      const r = this.ranks.get(role);
      if (r !== undefined) out[`actor_ranks/${role}`] = r;
    }
    this.stepCounts.clear();
    return out;
  }
}
