/** An in-test MLflow tracking server (no real one installs from Debian): records requests, enforces the API's shapes. */
export interface Recorded {
  method: string;
  path: string;
  query: Record<string, string>;
  headers: Headers;
  body: Record<string, unknown> | undefined;
}
export type Answer = [status: number, body: unknown];
export type Json = Record<string, unknown>;

export const apiError = (status: number, error_code: string, message: string): Answer => [status, { error_code, message }];

/** An in-memory tracking server: enough of MLflow to be told apart from a wrong client. */
export class FakeMlflow {
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

