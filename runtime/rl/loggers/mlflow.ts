/**
 * Metrics and params to an MLflow tracking server through its REST API (`/api/2.0/mlflow/...`),
 * with no MLflow package: `experiments/get-by-name` (or `experiments/create`), `runs/create`,
 * `runs/log-batch` for params and per-step metrics, `runs/update` to end the run.
 *
 * Each step's metrics go in one `log-batch` request (split at the API's limit of 1000 metrics;
 * params at 100). Transient failures (no answer, a timeout, HTTP 408/429/500/502/503/504) are
 * retried with exponential backoff; a retry sends the same body, timestamps included, so at worst
 * it repeats identical points. Anything else, or retries running out, is an `MlflowError` naming
 * the method, URL (credentials removed) and HTTP status.
 *
 * @example
 * ```ts
 * const mlflow = await MlflowLogger.open({ trackingUri: "http://127.0.0.1:5000", experimentName: "revenant", runName: "job-1", params: { "algorithm.adv_estimator": "grpo" } });
 * await mlflow.scalars(1, { "actor/kl": 0.01 });
 * await mlflow.close("FINISHED");
 * ```
 */

export type RunEndStatus = "FINISHED" | "FAILED" | "KILLED";

export interface MlflowOptions {
  /** http(s)://host:port[/prefix] of the tracking server; user:password@ in it becomes Basic auth. */
  trackingUri: string;
  experimentName: string;
  runName: string;
  /** Logged once when the run is created (MLflow params cannot change afterwards). */
  params?: Record<string, string>;
  /** Run tags, e.g. the job id. */
  tags?: Record<string, string>;
  /** Reattach to this run (a resumed job) instead of creating one: it is set RUNNING again. */
  runId?: string;
  /** Sent as `Authorization: Bearer <token>` (MLflow servers behind a token-checking proxy). */
  token?: string;
  /** Retries of a transient failure before giving up (default 3). */
  retries?: number;
  /** First backoff delay; it doubles on each retry (default 500 ms). */
  backoffMs?: number;
  /** Per-request limit (default 30 s): a hung tracking server must not hang training. */
  timeoutMs?: number;
  /** Milliseconds since the epoch, for timestamps (default Date.now). */
  now?: () => number;
  /** How backoff waits (default a timer); tests pass one that only records the delay. */
  sleep?: (ms: number) => Promise<void>;
}

/** A request to the tracking server failed; `status` is undefined when no answer came. */
export class MlflowError extends Error {
  override name = "MlflowError";
  constructor(readonly url: string, readonly status: number | undefined, message: string, readonly errorCode?: string) {
    super(message);
  }
}

/** The REST API's limits per `log-batch` request. */
export const MAX_METRICS_PER_BATCH = 1000;
export const MAX_PARAMS_PER_BATCH = 100;

/** Statuses MLflow's own client treats as transient. */
const TRANSIENT = new Set([408, 429, 500, 502, 503, 504]);

interface Endpoint {
  base: URL;
  auth: string | undefined;
}

/** Checks the URI and moves any user:password out of it (fetch refuses credentials in URLs). */
function parseTrackingUri(uri: string, token: string | undefined): Endpoint {
  let base: URL;
  try {
    base = new URL(uri);
  } catch {
    throw new MlflowError(uri, undefined, `MLflow tracking URI ${JSON.stringify(uri)} is not a URL; expected http(s)://host:port`);
  }
  if (base.protocol !== "http:" && base.protocol !== "https:") {
    throw new MlflowError(uri, undefined, `MLflow tracking URI ${JSON.stringify(uri)}: expected http:// or https://, got ${base.protocol}`);
  }
  let auth = token ? `Bearer ${token}` : undefined;
  if (base.username || base.password) {
    auth ??= `Basic ${btoa(`${decodeURIComponent(base.username)}:${decodeURIComponent(base.password)}`)}`;
    base.username = "";
    base.password = "";
  }
  if (!base.pathname.endsWith("/")) base.pathname += "/";
  return { base, auth };
}

/** JSON has no NaN or infinities; MLflow (protobuf's JSON mapping) takes them as these strings. */
function metricValue(v: number): number | string {
  if (Number.isNaN(v)) return "NaN";
  if (v === Infinity) return "Infinity";
  if (v === -Infinity) return "-Infinity";
  return v;
}

function chunks<T>(items: readonly T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}

const keyValues = (record: Record<string, string> = {}) => Object.entries(record).map(([key, value]) => ({ key, value }));

interface ErrorBody {
  error_code?: string;
  message?: string;
}

/** One tracking server, with retries; knows nothing of runs. */
class MlflowClient {
  private readonly endpoint: Endpoint;
  private readonly retries: number;
  private readonly backoffMs: number;
  private readonly timeoutMs: number;
  private readonly sleep: (ms: number) => Promise<void>;

  constructor(o: MlflowOptions) {
    this.endpoint = parseTrackingUri(o.trackingUri, o.token);
    this.retries = o.retries ?? 3;
    this.backoffMs = o.backoffMs ?? 500;
    this.timeoutMs = o.timeoutMs ?? 30_000;
    this.sleep = o.sleep ?? ((ms) => new Promise((resolve) => setTimeout(resolve, ms)));
  }

  get(path: string, query: Record<string, string>): Promise<unknown> {
    const url = this.url(path);
    for (const [k, v] of Object.entries(query)) url.searchParams.set(k, v);
    return this.send("GET", url, undefined);
  }

  post(path: string, body: object): Promise<unknown> {
    return this.send("POST", this.url(path), JSON.stringify(body));
  }

  /** The full URL of an API path, without credentials: what errors name. */
  url(path: string): URL {
    return new URL(`api/2.0/mlflow/${path}`, this.endpoint.base);
  }

  private async send(method: string, url: URL, body: string | undefined): Promise<unknown> {
    for (let attempt = 0; ; attempt++) {
      const outcome = await this.attempt(method, url, body);
      if (!(outcome instanceof MlflowError)) return outcome;
      const transient = outcome.status === undefined || TRANSIENT.has(outcome.status);
      if (!transient || attempt >= this.retries) {
        if (transient) outcome.message += ` (gave up after ${attempt + 1} attempts)`;
        throw outcome;
      }
      await this.sleep(this.backoffMs * 2 ** attempt);
    }
  }

  /** One request: the parsed answer, or the MlflowError describing why there is none. */
  private async attempt(method: string, url: URL, body: string | undefined): Promise<unknown> {
    const where = `MLflow ${method} ${url.href}`;
    const headers: Record<string, string> = { accept: "application/json" };
    if (body !== undefined) headers["content-type"] = "application/json";
    if (this.endpoint.auth) headers.authorization = this.endpoint.auth;
    let res: Response;
    let text: string;
    try {
      res = await fetch(url, { method, headers, body, signal: AbortSignal.timeout(this.timeoutMs) });
      text = await res.text();
    } catch (e) {
      return new MlflowError(url.href, undefined, `${where}: no answer (${(e as Error).message})`);
    }
    const parsed = parseJson(text);
    if (!res.ok) {
      const err = (parsed ?? {}) as ErrorBody;
      const detail = err.error_code ? `${err.error_code}: ${err.message ?? ""}` : text.slice(0, 200);
      return new MlflowError(url.href, res.status, `${where}: HTTP ${res.status} ${detail}`.trimEnd(), err.error_code);
    }
    if (parsed === undefined) return new MlflowError(url.href, res.status, `${where}: HTTP ${res.status} with a body that is not JSON`);
    return parsed;
  }
}

/** The string at `path` in a 2xx answer; a server that answers another shape is not MLflow's API. */
function stringAt(answer: unknown, path: readonly string[], url: URL): string {
  let v: unknown = answer;
  for (const key of path) v = (v as Record<string, unknown> | undefined)?.[key];
  if (typeof v !== "string") throw new MlflowError(url.href, 200, `MLflow ${url.href} answered without ${path.join(".")}: is this an MLflow tracking server?`);
  return v;
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

/** The experiment's id, creating it if missing (and surviving a race with another creator). */
async function experimentId(client: MlflowClient, name: string): Promise<string> {
  const found = await findExperiment(client, name);
  if (found !== undefined) return found;
  try {
    return stringAt(await client.post("experiments/create", { name }), ["experiment_id"], client.url("experiments/create"));
  } catch (e) {
    const raced = e instanceof MlflowError && (e.errorCode === "RESOURCE_ALREADY_EXISTS" || e.errorCode === "ALREADY_EXISTS");
    const again = raced ? await findExperiment(client, name) : undefined;
    if (again === undefined) throw e;
    return again;
  }
}

async function findExperiment(client: MlflowClient, name: string): Promise<string | undefined> {
  const url = client.url("experiments/get-by-name");
  let answer: unknown;
  try {
    answer = await client.get("experiments/get-by-name", { experiment_name: name });
  } catch (e) {
    if (e instanceof MlflowError && e.errorCode === "RESOURCE_DOES_NOT_EXIST") return undefined;
    throw e;
  }
  const id = stringAt(answer, ["experiment", "experiment_id"], url);
  if ((answer as { experiment: { lifecycle_stage?: string } }).experiment.lifecycle_stage === "deleted") {
    throw new MlflowError(url.href, 200, `MLflow experiment ${JSON.stringify(name)} is deleted: restore it or log to another experiment`);
  }
  return id;
}

export class MlflowLogger {
  private closed = false;

  private constructor(private readonly client: MlflowClient, readonly runId: string, private readonly now: () => number) {}

  /** Finds or creates the experiment, creates (or reopens) the run and logs its params. */
  static async open(o: MlflowOptions): Promise<MlflowLogger> {
    const client = new MlflowClient(o);
    const now = o.now ?? Date.now;
    const runId = o.runId ?? await createRun(client, await experimentId(client, o.experimentName), o, now());
    if (o.runId) await client.post("runs/update", { run_id: runId, status: "RUNNING" });
    const logger = new MlflowLogger(client, runId, now);
    try {
      for (const params of chunks(keyValues(o.params), MAX_PARAMS_PER_BATCH)) await logger.logBatch({ params });
    } catch (e) {
      // Best effort: a run nobody will log to again should not stay RUNNING in the MLflow UI.
      await logger.close("FAILED").catch(() => {});
      throw e;
    }
    return logger;
  }

  /** The step's metrics, in as few `log-batch` requests as the API allows. */
  async scalars(step: number, metrics: Record<string, number>): Promise<void> {
    this.checkOpen();
    if (!Number.isSafeInteger(step)) throw new RangeError(`MLflow step must be an integer, got ${step}`);
    const timestamp = this.now();
    const entries = Object.entries(metrics).map(([key, v]) => ({ key, value: metricValue(v), timestamp, step }));
    for (const batch of chunks(entries, MAX_METRICS_PER_BATCH)) await this.logBatch({ metrics: batch });
  }

  /** Ends the run with `status`; later calls to scalars throw, a second close does nothing. */
  async close(status: RunEndStatus): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.client.post("runs/update", { run_id: this.runId, status, end_time: this.now() });
  }

  private logBatch(batch: { metrics?: object[]; params?: object[] }): Promise<unknown> {
    return this.client.post("runs/log-batch", { run_id: this.runId, ...batch });
  }

  private checkOpen(): void {
    if (this.closed) throw new Error(`MLflow run ${this.runId} is closed`);
  }
}

async function createRun(client: MlflowClient, experiment: string, o: MlflowOptions, startTime: number): Promise<string> {
  // run_name for current servers, the mlflow.runName tag for servers older than the field.
  const tags = [...keyValues(o.tags), { key: "mlflow.runName", value: o.runName }];
  const answer = await client.post("runs/create", { experiment_id: experiment, run_name: o.runName, start_time: startTime, tags });
  return stringAt(answer, ["run", "info", "run_id"], client.url("runs/create"));
}
