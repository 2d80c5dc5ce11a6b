/**
 * MlflowLogger against a fake tracking server on 127.0.0.1 that speaks the REST API's shapes
 * (experiments/get-by-name, experiments/create, runs/create, runs/log-batch, runs/update), checks
 * each request body the way a real server would (content type, batch limits, field types) and
 * records every request for the assertions.
 *
 * Not run against a real MLflow server: Debian has no package for one (`apt-cache policy mlflow
 * python3-mlflow` finds neither) and PyPI is not reachable here.
 */
import { afterEach, describe, expect, test } from "bun:test";
import { MAX_METRICS_PER_BATCH, MlflowError, MlflowLogger, type MlflowOptions } from "../../runtime/rl/loggers/mlflow.ts";

interface Recorded {
  method: string;
  path: string;
  query: Record<string, string>;
  headers: Headers;
  body: Record<string, unknown> | undefined;
}
type Answer = [status: number, body: unknown];
type Json = Record<string, unknown>;

const apiError = (status: number, error_code: string, message: string): Answer => [status, { error_code, message }];

/** An in-memory tracking server: enough of MLflow to be told apart from a wrong client. */
class FakeMlflow {
  readonly requests: Recorded[] = [];
  readonly experiments = new Map<string, { id: string; stage: string }>();
  readonly runs = new Map<string, { experiment: string; status: string }>();
  /** Answers given before the normal behaviour, per API path, in order. */
  private readonly scripted = new Map<string, Array<Answer | "hang">>();
  private readonly server = Bun.serve({ hostname: "127.0.0.1", port: 0, fetch: (req) => this.handle(req) });

  get uri(): string {
    return `http://127.0.0.1:${this.server.port}`;
  }

  script(path: string, ...answers: Array<Answer | "hang">): void {
    this.scripted.set(path, [...(this.scripted.get(path) ?? []), ...answers]);
  }

  calls(path: string): Recorded[] {
    return this.requests.filter((r) => r.path === path);
  }

  stop(): void {
    void this.server.stop(true);
  }

  private async handle(req: Request): Promise<Response> {
    const url = new URL(req.url);
    const path = url.pathname.replace(/^\/api\/2\.0\/mlflow\//, "");
    const text = await req.text();
    const body = text ? JSON.parse(text) as Json : undefined;
    this.requests.push({ method: req.method, path, query: Object.fromEntries(url.searchParams), headers: req.headers, body });
    const next = this.scripted.get(path)?.shift();
    if (next === "hang") return new Promise<Response>(() => {});
    const [status, answer] = next ?? this.answer(req, path, body);
    return Response.json(answer, { status });
  }

  private answer(req: Request, path: string, body: Json | undefined): Answer {
    if (req.method === "POST" && req.headers.get("content-type") !== "application/json") return apiError(400, "BAD_REQUEST", "content type must be application/json");
    const route = `${req.method} ${path}`;
    if (route === "GET experiments/get-by-name") return this.getByName(new URL(req.url).searchParams.get("experiment_name") ?? "");
    if (route === "POST experiments/create") return this.createExperiment(String(body!.name));
    if (route === "POST runs/create") return this.createRun(body!);
    if (route === "POST runs/log-batch") return this.logBatch(body!);
    if (route === "POST runs/update") return this.updateRun(body!);
    return apiError(404, "ENDPOINT_NOT_FOUND", `no ${route}`);
  }

  private getByName(name: string): Answer {
    const e = this.experiments.get(name);
    if (!e) return apiError(404, "RESOURCE_DOES_NOT_EXIST", `Could not find experiment with name '${name}'`);
    return [200, { experiment: { experiment_id: e.id, name, lifecycle_stage: e.stage } }];
  }

  private createExperiment(name: string): Answer {
    if (this.experiments.has(name)) return apiError(400, "RESOURCE_ALREADY_EXISTS", `Experiment '${name}' already exists.`);
    const id = String(this.experiments.size + 1);
    this.experiments.set(name, { id, stage: "active" });
    return [200, { experiment_id: id }];
  }

  private createRun(body: Json): Answer {
    const known = [...this.experiments.values()].some((e) => e.id === body.experiment_id);
    if (!known) return apiError(404, "RESOURCE_DOES_NOT_EXIST", `no experiment ${body.experiment_id}`);
    const runId = `run${this.runs.size + 1}`;
    this.runs.set(runId, { experiment: String(body.experiment_id), status: "RUNNING" });
    return [200, { run: { info: { run_id: runId, experiment_id: body.experiment_id, run_name: body.run_name, status: "RUNNING" }, data: {} } }];
  }

  private logBatch(body: Json): Answer {
    if (!this.runs.has(String(body.run_id))) return apiError(404, "RESOURCE_DOES_NOT_EXIST", `no run ${body.run_id}`);
    const metrics = (body.metrics ?? []) as Json[];
    const params = (body.params ?? []) as Json[];
    if (metrics.length > 1000 || params.length > 100) return apiError(400, "INVALID_PARAMETER_VALUE", "batch too large");
    const numberOrSpecial = (v: unknown) => typeof v === "number" || ["NaN", "Infinity", "-Infinity"].includes(v as string);
    const goodMetric = (m: Json) => typeof m.key === "string" && numberOrSpecial(m.value) && Number.isInteger(m.timestamp) && Number.isInteger(m.step);
    const goodParam = (p: Json) => typeof p.key === "string" && typeof p.value === "string";
    if (!metrics.every(goodMetric) || !params.every(goodParam)) return apiError(400, "INVALID_PARAMETER_VALUE", "malformed metric or param");
    return [200, {}];
  }

  private updateRun(body: Json): Answer {
    const run = this.runs.get(String(body.run_id));
    if (!run) return apiError(404, "RESOURCE_DOES_NOT_EXIST", `no run ${body.run_id}`);
    run.status = String(body.status);
    return [200, { run_info: { run_id: body.run_id, status: run.status } }];
  }
}

// ---- helpers ---------------------------------------------------------------------------------

let server: FakeMlflow | undefined;
afterEach(() => server?.stop());

const NOW = 1_700_000_000_000;
let delays: number[] = [];

/** Options for a logger on `fake`: a fixed clock, and backoff that records its delay instead of waiting. */
function options(fake: FakeMlflow, more: Partial<MlflowOptions> = {}): MlflowOptions {
  delays = [];
  return {
    trackingUri: fake.uri, experimentName: "revenant", runName: "gsm8k-1", now: () => NOW,
    backoffMs: 100, sleep: (ms) => Promise.resolve(void delays.push(ms)), ...more,
  };
}

async function rejection(p: Promise<unknown>): Promise<MlflowError> {
  const e = await p.then(() => undefined, (err: unknown) => err);
  expect(e).toBeInstanceOf(MlflowError);
  return e as MlflowError;
}

// ---- the tests -------------------------------------------------------------------------------

describe("MlflowLogger", () => {
  test("creates the experiment and run, logs params, per-step metrics and the end status", async () => {
    const fake = (server = new FakeMlflow());
    const params = Object.fromEntries(Array.from({ length: 150 }, (_, i) => [`p${i}`, String(i)]));
    const mlflow = await MlflowLogger.open(options(fake, { params, tags: { "revenant.job_id": "gsm8k-1" } }));
    await mlflow.scalars(1, { "actor/kl": 0.01, "critic/score/mean": 0.5 });
    await mlflow.scalars(2, { "actor/kl": 0.02 });
    await mlflow.close("FINISHED");

    expect(fake.requests.map((r) => `${r.method} ${r.path}`)).toEqual([
      "GET experiments/get-by-name", "POST experiments/create", "POST runs/create",
      "POST runs/log-batch", "POST runs/log-batch", // 150 params: 100 + 50
      "POST runs/log-batch", "POST runs/log-batch", "POST runs/update",
    ]);
    expect(fake.calls("experiments/get-by-name")[0]!.query).toEqual({ experiment_name: "revenant" });
    expect(fake.calls("experiments/create")[0]!.body).toEqual({ name: "revenant" });
    expect(fake.calls("runs/create")[0]!.body).toEqual({
      experiment_id: "1", run_name: "gsm8k-1", start_time: NOW,
      tags: [{ key: "revenant.job_id", value: "gsm8k-1" }, { key: "mlflow.runName", value: "gsm8k-1" }],
    });
    const [p1, p2, m1, m2] = fake.calls("runs/log-batch").map((r) => r.body!);
    expect((p1!.params as Json[]).length).toBe(100);
    expect([...(p1!.params as Json[]), ...(p2!.params as Json[])]).toEqual(Object.entries(params).map(([key, value]) => ({ key, value })));
    expect(m1).toEqual({ run_id: "run1", metrics: [
      { key: "actor/kl", value: 0.01, timestamp: NOW, step: 1 },
      { key: "critic/score/mean", value: 0.5, timestamp: NOW, step: 1 },
    ] });
    expect(m2).toEqual({ run_id: "run1", metrics: [{ key: "actor/kl", value: 0.02, timestamp: NOW, step: 2 }] });
    expect(fake.calls("runs/update")[0]!.body).toEqual({ run_id: "run1", status: "FINISHED", end_time: NOW });
    expect(fake.runs.get("run1")!.status).toBe("FINISHED");
    expect(mlflow.runId).toBe("run1");
  });

  test("reuses an existing experiment; a large step is split at the API's limit; non-finite values travel as strings", async () => {
    const fake = (server = new FakeMlflow());
    fake.experiments.set("revenant", { id: "42", stage: "active" });
    const mlflow = await MlflowLogger.open(options(fake));
    const metrics = Object.fromEntries(Array.from({ length: 2500 }, (_, i) => [`m${i}`, i]));
    Object.assign(metrics, { nan: NaN, up: Infinity, down: -Infinity });
    await mlflow.scalars(3, metrics);
    await mlflow.close("KILLED");

    expect(fake.calls("experiments/create")).toHaveLength(0);
    expect(fake.calls("runs/create")[0]!.body!.experiment_id).toBe("42");
    const batches = fake.calls("runs/log-batch").map((r) => r.body!.metrics as Json[]);
    expect(batches.map((b) => b.length)).toEqual([MAX_METRICS_PER_BATCH, MAX_METRICS_PER_BATCH, 503]);
    expect(batches.at(-1)!.slice(-3).map((m) => m.value)).toEqual(["NaN", "Infinity", "-Infinity"]);
    expect(fake.runs.get("run1")!.status).toBe("KILLED");
  });

  test("transient answers (503, 429) are retried with doubling backoff", async () => {
    const fake = (server = new FakeMlflow());
    const mlflow = await MlflowLogger.open(options(fake));
    fake.script("runs/log-batch", apiError(503, "TEMPORARILY_UNAVAILABLE", "busy"), apiError(429, "REQUEST_LIMIT_EXCEEDED", "slow down"));
    await mlflow.scalars(1, { x: 1 });
    expect(delays).toEqual([100, 200]);
    const bodies = fake.calls("runs/log-batch").map((r) => JSON.stringify(r.body));
    expect(bodies).toHaveLength(3);
    expect(new Set(bodies).size).toBe(1); // the same body, timestamps included
  });

  test("retries run out: the error names the URL and the last status", async () => {
    const fake = (server = new FakeMlflow());
    const mlflow = await MlflowLogger.open(options(fake, { retries: 2 }));
    fake.script("runs/log-batch", ...Array.from({ length: 3 }, () => apiError(502, "BAD_GATEWAY", "proxy")));
    const e = await rejection(mlflow.scalars(1, { x: 1 }));
    expect(e.status).toBe(502);
    expect(e.url).toBe(`${fake.uri}/api/2.0/mlflow/runs/log-batch`);
    expect(e.message).toContain(`POST ${fake.uri}/api/2.0/mlflow/runs/log-batch: HTTP 502`);
    expect(e.message).toContain("gave up after 3 attempts");
    expect(delays).toEqual([100, 200]);
  });

  test("a client error is not retried and says MLflow's error code", async () => {
    const fake = (server = new FakeMlflow());
    const mlflow = await MlflowLogger.open(options(fake));
    fake.script("runs/log-batch", apiError(400, "INVALID_PARAMETER_VALUE", "Invalid metric name: 'a:b'"));
    const e = await rejection(mlflow.scalars(1, { "a:b": 1 }));
    expect(e.status).toBe(400);
    expect(e.errorCode).toBe("INVALID_PARAMETER_VALUE");
    expect(e.message).toContain("HTTP 400 INVALID_PARAMETER_VALUE: Invalid metric name");
    expect(fake.calls("runs/log-batch")).toHaveLength(1);
    expect(delays).toEqual([]);
  });

  test("a tracking URI that is not http(s) is refused before any request", async () => {
    for (const uri of ["localhost:5000", "not a url", "file:///tmp/mlruns"]) {
      const e = await rejection(MlflowLogger.open({ trackingUri: uri, experimentName: "x", runName: "y" }));
      expect(e.message).toContain(JSON.stringify(uri));
    }
  });

  test("a server that is not there: retried, then an error naming the URL with no status", async () => {
    const gone = new FakeMlflow();
    const uri = gone.uri;
    gone.stop();
    const e = await rejection(MlflowLogger.open({ ...options(gone), trackingUri: uri }));
    expect(e.status).toBeUndefined();
    expect(e.message).toContain(`GET ${uri}/api/2.0/mlflow/experiments/get-by-name?experiment_name=revenant: no answer`);
    expect(delays).toEqual([100, 200, 400]);
  });

  test("a hung request times out and counts as transient", async () => {
    const fake = (server = new FakeMlflow());
    const mlflow = await MlflowLogger.open(options(fake, { timeoutMs: 200, retries: 1 }));
    fake.script("runs/log-batch", "hang");
    await mlflow.scalars(1, { x: 1 });
    expect(fake.calls("runs/log-batch")).toHaveLength(2);
    expect(delays).toEqual([100]);
  });

  test("another process creating the experiment first is not an error", async () => {
    const fake = (server = new FakeMlflow());
    fake.script("experiments/get-by-name", apiError(404, "RESOURCE_DOES_NOT_EXIST", "none"));
    fake.experiments.set("revenant", { id: "7", stage: "active" }); // created "meanwhile"
    await MlflowLogger.open(options(fake));
    expect(fake.requests.map((r) => r.path)).toEqual(["experiments/get-by-name", "experiments/create", "experiments/get-by-name", "runs/create"]);
    expect(fake.calls("runs/create")[0]!.body!.experiment_id).toBe("7");
  });

  test("a deleted experiment is refused with a hint", async () => {
    const fake = (server = new FakeMlflow());
    fake.experiments.set("revenant", { id: "3", stage: "deleted" });
    const e = await rejection(MlflowLogger.open(options(fake)));
    expect(e.message).toContain("is deleted");
    expect(fake.calls("runs/create")).toHaveLength(0);
  });

  test("a resumed job reopens its run instead of creating one", async () => {
    const fake = (server = new FakeMlflow());
    fake.runs.set("run9", { experiment: "1", status: "FAILED" });
    const mlflow = await MlflowLogger.open(options(fake, { runId: "run9" }));
    expect(fake.requests.map((r) => `${r.path} ${JSON.stringify(r.body)}`)).toEqual([`runs/update {"run_id":"run9","status":"RUNNING"}`]);
    expect(fake.runs.get("run9")!.status).toBe("RUNNING");
    await mlflow.close("FINISHED");
  });

  test("params that fail to log leave the run FAILED, not RUNNING", async () => {
    const fake = (server = new FakeMlflow());
    fake.script("runs/log-batch", apiError(400, "INVALID_PARAMETER_VALUE", "param too long"));
    await rejection(MlflowLogger.open(options(fake, { params: { a: "x" } })));
    expect(fake.runs.get("run1")!.status).toBe("FAILED");
  });

  test("credentials in the URI become Basic auth and stay out of URLs and errors; a token is a Bearer header", async () => {
    const fake = (server = new FakeMlflow());
    const withUser = fake.uri.replace("http://", "http://ann:s%3Ecret@");
    fake.script("runs/log-batch", apiError(400, "INVALID_PARAMETER_VALUE", "no"));
    const mlflow = await MlflowLogger.open(options(fake, { trackingUri: withUser }));
    const e = await rejection(mlflow.scalars(1, { x: 1 }));
    expect(fake.requests[0]!.headers.get("authorization")).toBe(`Basic ${btoa("ann:s>cret")}`);
    expect(e.message).not.toContain("cret");
    expect(e.url).toBe(`${fake.uri}/api/2.0/mlflow/runs/log-batch`);

    await MlflowLogger.open(options(fake, { token: "t0k" }));
    expect(fake.requests.at(-1)!.headers.get("authorization")).toBe("Bearer t0k");
  });

  test("a server that answers 200 in another shape is named, not a TypeError", async () => {
    const fake = (server = new FakeMlflow());
    fake.script("experiments/get-by-name", [200, { hello: "world" }]);
    const e = await rejection(MlflowLogger.open(options(fake)));
    expect(e.message).toContain("answered without experiment.experiment_id");
  });

  test("a tracking URI with a path prefix keeps it", async () => {
    const fake = (server = new FakeMlflow());
    const e = await rejection(MlflowLogger.open(options(fake, { trackingUri: `${fake.uri}/mlflow`, retries: 0 })));
    expect(e.url).toBe(`${fake.uri}/mlflow/api/2.0/mlflow/experiments/get-by-name?experiment_name=revenant`);
    expect(e.status).toBe(404);
  });

  test("after close, scalars throw and a second close sends nothing", async () => {
    const fake = (server = new FakeMlflow());
    const mlflow = await MlflowLogger.open(options(fake));
    await mlflow.close("FAILED");
    await mlflow.close("FINISHED");
    expect(fake.calls("runs/update")).toHaveLength(1);
    await expect(mlflow.scalars(1, { x: 1 })).rejects.toThrow(/closed/);
  });
});
