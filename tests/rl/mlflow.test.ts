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
import { type Recorded, type Answer, type Json, apiError, FakeMlflow } from "../helpers/fake_mlflow.ts";
import { MAX_METRICS_PER_BATCH, MlflowError, MlflowLogger, type MlflowOptions } from "../../runtime/rl/loggers/mlflow.ts";

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
