/**
 * The dashboard's types, shared by the server that writes its page (dashboard.ts) and the browser
 * script that runs in it (dashboard_client.js): the configuration the page carries, and the
 * client's picture of the API's JSON (dashboard.ts holds that picture to the server's own types).
 * Types only, so the browser script's project reads them without any server code.
 *
 * @example
 * ```ts
 * const config: DashboardConfig = { chaos: false, charts: [] };
 * ```
 */

/** One chart: one metric, its own y scale. */
export interface DashboardChart {
  /** The id of its `<svg>`; `<id>-latest` and `<id>-tip` are its latest value and its tooltip. */
  id: string;
  /** The metric drawn, a key of the per-step metrics. */
  key: string;
  title: string;
  color: string;
  /** Whether the y range always includes 0. */
  zero: boolean;
  /** A dot on every point (for sparse series such as the validation score). */
  dots?: boolean;
}

/** What the page tells its script, as JSON in `<script id="dashboard-config" type="application/json">`. */
export interface DashboardConfig {
  /** Whether the kill route is enabled: the actor rows get kill buttons. */
  chaos: boolean;
  charts: readonly DashboardChart[];
}

/** A row of a job's actor table (GET /jobs, SSE `status` and `actor` events). */
export interface DashboardActor {
  id: string;
  role: string;
  rank: number;
  incarnation: number;
  pid: number | null;
  state: string;
  health: number | null;
  restarts: number;
  failures: number;
}

/** A coordinator job (GET /jobs, SSE `status` and `end` events). */
export interface DashboardJob {
  /** Absent: tells a job from a CLI run in the merged list. */
  external?: undefined;
  id: string;
  status: string;
  total_steps: number | null;
  step: number;
  started_at: string | null;
  finished_at: string | null;
  cancel_requested: boolean;
  error: string | null;
  runs: number;
  metrics: Record<string, number> | null;
  actors: DashboardActor[];
  result: { finalValScore: number | null } | null;
}

/** A run written by `bun run train` into the run dir (GET /external-runs): read-only. */
export interface DashboardRun {
  external: true;
  id: string;
  status: string;
  total_steps: number | null;
  step: number;
  val_score: number | null;
  metrics: Record<string, number> | null;
}

/** An actor event (SSE `actor`): the fields the timeline shows, present by type. */
export interface DashboardEvent {
  /** Milliseconds since the epoch. */
  ts: number;
  type: string;
  actor: string;
  /** The step the job was at, when known. */
  step?: number;
  cause?: string;
  signal?: string;
  detail?: string;
  incarnation?: number;
  latency_ms?: number;
  method?: string;
  attempt?: number;
  healthy?: boolean;
  reason?: string;
}
