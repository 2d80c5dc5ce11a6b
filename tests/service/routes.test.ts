/**
 * The coordinator's routes through `app.request()` (no server): every status code the API
 * answers with — 200, 202, 400, 401, 403, 404, 409, 413, 415, 421 — and the error body that
 * names what was wrong. Jobs here are real (short) training runs.
 */
import { afterAll, describe, expect, test } from "bun:test";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { hc } from "hono/client";
import { createApp, type AppType } from "../../runtime/service/server/app.ts";
import { quietManager, readSse, removeTempDirs, shortJob, tempDir, until } from "./helpers.ts";

const runDir = tempDir("routes");
const jobs = quietManager(runDir).start();
// In-process requests (app.request) carry no Host header; the URL's host stands in for it here.
// (A request with no Host header over a socket is refused: connections.test.ts.)
const app = createApp({ jobs, requireHostHeader: false });
const chaosApp = createApp({ jobs, chaos: true, requireHostHeader: false });
// The typed client over the same in-process app: the main job routes (submit, list, get, cancel).
const client = hc<AppType>("http://127.0.0.1", { fetch: (input: Parameters<typeof fetch>[0], init?: RequestInit) => app.request(input instanceof Request ? input : String(input), init) });
afterAll(async () => {
  await jobs.close();
  removeTempDirs();
});

const JSON_HEADERS = { "Content-Type": "application/json" };
const post = (path: string, body: unknown, headers: Record<string, string> = JSON_HEADERS, via = app) =>
  via.request(path, { method: "POST", body: typeof body === "string" ? body : JSON.stringify(body), headers });
const getJson = async (path: string) => (await app.request(path)).json() as Promise<any>;
const waitStatus = (id: string, statuses: string[], timeoutMs = 60_000) =>
  until(async () => statuses.includes((await getJson(`/jobs/${id}`)).status), `job ${id} to be ${statuses.join("|")}`, timeoutMs);

async function expectError(res: { status: number; json(): Promise<unknown> }, status: number, code: string) {
  expect(res.status).toBe(status);
  const body = (await res.json()) as any;
  expect(body.error.status).toBe(status);
  expect(body.error.code).toBe(code);
  return body.error;
}

describe("200: read-only routes", () => {
  test("GET /healthz", async () => {
    const res = await app.request("/healthz");
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ status: "ok", chaos: false, jobs: { queued: 0 } });
  });

  test("GET / is the self-contained dashboard (no external scripts, styles or fonts)", async () => {
    const res = await app.request("/");
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toContain("text/html");
    const html = await res.text();
    expect(html).toContain('<svg id="reward-chart"');
    expect(html).toContain('id="timeline"');
    expect(html).not.toMatch(/<(script|link|img)[^>]+(src|href)=["']?https?:/i);
    expect(res.headers.get("content-security-policy")).toContain("default-src 'none'");
  });

  test("GET / inlines the page's script as it is on disk, and hands it its configuration as JSON", async () => {
    const config = async (via: typeof app) => {
      const html = await (await via.request("/")).text();
      const script = readFileSync(join(import.meta.dir, "../../runtime/service/server/dashboard_client.js"), "utf8");
      expect(html.includes(`<script>${script}</script>`)).toBe(true);
      return JSON.parse(html.match(/<script id="dashboard-config" type="application\/json">(.*?)<\/script>/s)![1]!);
    };
    const off = await config(app);
    expect(off.chaos).toBe(false);
    expect(off.charts.map((c: { id: string }) => c.id)).toEqual(["reward-chart", "val-chart", "entropy-chart", "kl-chart"]);
    expect((await config(chaosApp)).chaos).toBe(true);
  });

  test("GET /openapi.json documents every route, with the configuration schema from zod", async () => {
    const res = await app.request("/openapi.json");
    expect(res.status).toBe(200);
    const doc = (await res.json()) as any;
    expect(doc.openapi).toBe("3.1.0");
    expect(Object.keys(doc.paths).sort()).toEqual(["/", "/healthz", "/jobs", "/jobs/{id}", "/jobs/{id}/actors/{actor}/kill", "/jobs/{id}/events", "/jobs/{id}/metrics", "/metrics", "/openapi.json"]);
    expect(doc.components.schemas.Config.properties.fault_tolerance.properties.max_restarts.default).toBe(3);
    expect(doc.components.schemas.JobView.properties.status.enum).toEqual(["queued", "running", "succeeded", "failed", "cancelled"]);
    expect(doc.components.schemas.KillRequest.properties.signal.enum).toEqual(["SIGKILL", "SIGSTOP"]);
    expect(Object.keys(doc.paths["/jobs"].post.responses).sort()).toEqual(["202", "400", "401", "413", "415", "503", "507"]);
  });

  test("GET /metrics is Prometheus text", async () => {
    const res = await app.request("/metrics");
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toContain("text/plain; version=0.0.4");
    expect(await res.text()).toContain("# TYPE revenant_jobs gauge");
  });
});

describe("202: a job submitted, run, and read back", () => {
  let id = "";
  test("POST /jobs → 202 {id}; it runs to succeeded", async () => {
    const res = await client.jobs.$post({ json: shortJob(6) } as never);
    expect(res.status).toBe(202);
    const body = (await res.json()) as { id: string };
    id = body.id;
    expect(id).toMatch(/^digit_reversal-\d{8}-\d{6}-[0-9a-f]{8}$/);
    expect(res.headers.get("location")).toBe(`/jobs/${id}`);
    await waitStatus(id, ["succeeded"]);
    const view = (await (await client.jobs[":id"].$get({ param: { id } })).json()) as any;
    expect(view).toMatchObject({ id, status: "succeeded", step: 6, total_steps: 6, runs: 1, error: null });
    expect(view.result.weightsSha256).toMatch(/^[0-9a-f]{64}$/);
    expect(view.actors.map((a: any) => a.role).sort()).toEqual(["actor_rollout", "critic", "ref_policy"]);
    expect(view.metrics["critic/score/mean"]).toBeNumber();
    // The job's folder is under the server's run dir, whatever the request said.
    expect(existsSync(join(runDir, id, "job.json"))).toBe(true);
  });

  test("GET /jobs lists it; GET /jobs/:id/metrics has every step once; ?since filters", async () => {
    const list = await client.jobs.$get();
    expect(list.status).toBe(200);
    expect(((await list.json()) as { jobs: Array<{ id: string }> }).jobs.map((j) => j.id)).toContain(id);
    const all = await getJson(`/jobs/${id}/metrics`);
    expect(all.steps.map((m: any) => m.step)).toEqual([1, 2, 3, 4, 5, 6]);
    expect((await getJson(`/jobs/${id}/metrics?since=4`)).steps.map((m: any) => m.step)).toEqual([5, 6]);
  });

  test("GET /jobs/:id/events of a finished job replays its history and ends", async () => {
    const res = await app.request(`/jobs/${id}/events`);
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toContain("text/event-stream");
    const events = await readSse(res);
    expect(events[0]!.event).toBe("status");
    expect(events.filter((e) => e.event === "step").map((e) => e.data.step)).toEqual([1, 2, 3, 4, 5, 6]);
    expect(events.at(-1)).toMatchObject({ event: "end", data: { status: "succeeded" } });
  });

  test("409: cancelling a finished job, or killing an actor of a job that is not running", async () => {
    await expectError(await client.jobs[":id"].$delete({ param: { id } }), 409, "job_finished");
    await expectError(await post(`/jobs/${id}/actors/critic/kill`, { signal: "SIGKILL" }, JSON_HEADERS, chaosApp), 409, "job_not_running");
  });
});

describe("400: every problem named by its key path", () => {
  const cases: Array<[string, unknown, string]> = [
    ["malformed JSON", "{not json", "(body)"],
    ["an array", [1, 2], "(body)"],
    ["null", null, "(body)"],
    ["a number", 5, "(body)"],
    ["an unknown section", { bogus: {} }, "bogus"],
    ["an unknown key", { trainer: { total_step: 5 } }, "trainer.total_step"],
    ["a wrong type", { trainer: { total_steps: "ten" } }, "trainer.total_steps"],
    ["out of range", { fault_tolerance: { max_restarts: -2 } }, "fault_tolerance.max_restarts"],
    ["a task that is not shipped", { data: { task: "../../etc/passwd" } }, "data.task"],
    ["a run_dir (the server's)", { trainer: { run_dir: "/tmp/elsewhere" } }, "trainer.run_dir"],
    ["a prototype key", JSON.parse('{"__proto__": {"polluted": 1}}'), "__proto__"],
    ["nesting too deep", { a: { b: { c: { d: { e: { f: { g: { h: { i: 1 } } } } } } } } }, "a.b.c.d.e.f.g.h"],
    ["a section that is not a mapping", { trainer: 3 }, "trainer"],
  ];
  for (const [what, body, path] of cases) {
    test(`POST /jobs with ${what}`, async () => {
      const error = await expectError(await post("/jobs", body), 400, body === "{not json" ? "invalid_json" : "invalid_config");
      expect(error.problems.map((p: any) => p.path)).toContain(path);
      expect(({} as any).polluted).toBeUndefined();
    });
  }

  test("every problem at once, with the value and what is allowed", async () => {
    const error = await expectError(await post("/jobs", { trainer: { total_steps: 0 }, algorithm: { adv_estimator: "dpo" } }), 400, "invalid_config");
    expect(error.problems).toContainEqual({ path: "trainer.total_steps", source: "request", value: 0, message: "expected an integer ≥ 1 and ≤ 1000000" });
    expect(error.problems.find((p: any) => p.path === "algorithm.adv_estimator").message).toContain("gae");
  });

  test("a bad query or kill body", async () => {
    const { id } = (await (await post("/jobs", shortJob(2))).json()) as any;
    await expectError(await app.request(`/jobs/${id}/metrics?since=-1`), 400, "invalid_query");
    await expectError(await app.request(`/jobs/${id}/metrics?bogus=1`), 400, "invalid_query");
    await expectError(await post(`/jobs/${id}/actors/critic/kill`, { signal: "SIGTERM" }, JSON_HEADERS, chaosApp), 400, "invalid_request");
    await expectError(await post(`/jobs/${id}/actors/critic/kill`, "[", JSON_HEADERS, chaosApp), 400, "invalid_json");
    await waitStatus(id, ["succeeded"]);
  });
});

describe("404, 413, 415, 401, 403, 421", () => {
  test("404: unknown job, unknown actor, unknown route", async () => {
    await expectError(await app.request("/jobs/digit_reversal-20200101-000000-deadbeef"), 404, "job_not_found");
    await expectError(await app.request("/jobs/..%2F..%2Fetc"), 404, "job_not_found");
    await expectError(await app.request("/jobs/nope/metrics"), 404, "job_not_found");
    await expectError(await app.request("/jobs/nope/events"), 404, "job_not_found");
    await expectError(await app.request("/jobs/nope", { method: "DELETE" }), 404, "job_not_found");
    await expectError(await app.request("/nowhere"), 404, "not_found");
    await expectError(await post("/jobs/nope/actors/critic/kill", {}, JSON_HEADERS, chaosApp), 404, "job_not_found");
  });

  test("413: a body over the limit, whether Content-Length says so or not", async () => {
    const big = JSON.stringify({ trainer: { total_steps: 5 }, pad: "x".repeat(70 * 1024) });
    await expectError(await post("/jobs", big), 413, "body_too_large");
    const stream = new Blob([big]).stream();
    const res = await app.request("/jobs", { method: "POST", body: stream, headers: JSON_HEADERS, duplex: "half" } as RequestInit);
    await expectError(res, 413, "body_too_large");
  });

  test("415: anything but application/json", async () => {
    await expectError(await post("/jobs", "{}", { "Content-Type": "text/plain" }), 415, "unsupported_media_type");
    await expectError(await post("/jobs", "a=1", { "Content-Type": "application/x-www-form-urlencoded" }), 415, "unsupported_media_type");
    await expectError(await post("/jobs", "{}", {}), 415, "unsupported_media_type");
  });

  test("401: with a token, every route but /healthz needs it", async () => {
    const secured = createApp({ jobs, token: "s3cret-token", requireHostHeader: false });
    expect((await secured.request("/healthz")).status).toBe(200);
    for (const path of ["/", "/jobs", "/metrics", "/openapi.json", "/jobs/nope"]) {
      const res = await secured.request(path);
      await expectError(res, 401, "unauthorized");
      expect(res.headers.get("www-authenticate")).toContain("Bearer");
    }
    await expectError(await secured.request("/jobs", { headers: { Authorization: "Bearer wrong" } }), 401, "unauthorized");
    expect((await secured.request("/jobs", { headers: { Authorization: "Bearer s3cret-token" } })).status).toBe(200);
    // A token also lifts the loopback Host check (the server may be bound elsewhere).
    expect((await secured.request("http://10.1.2.3/jobs", { headers: { Authorization: "Bearer s3cret-token" } })).status).toBe(200);
  });

  test("403: the kill route without --chaos", async () => {
    await expectError(await post("/jobs/whatever/actors/critic/kill", { signal: "SIGKILL" }), 403, "chaos_disabled");
  });

  test("421: without a token, a Host that is not loopback (DNS rebinding) is refused", async () => {
    await expectError(await app.request("http://evil.example/jobs"), 421, "host_not_allowed");
    expect((await app.request("http://127.0.0.1:8321/healthz")).status).toBe(200);
  });
});

describe("DELETE /jobs/:id", () => {
  test("a queued job is cancelled at once; a running one after a final checkpoint, actors stopped", async () => {
    const running = ((await (await post("/jobs", shortJob(400, { checkpoint: { interval: 50 } }))).json()) as any).id as string;
    const queued = ((await (await post("/jobs", shortJob(6))).json()) as any).id as string;
    await until(async () => (await getJson(`/jobs/${running}`)).step >= 3, "the running job to pass step 3");
    expect((await getJson(`/jobs/${queued}`)).status).toBe("queued");
    await expectError(await post(`/jobs/${queued}/actors/critic/kill`, {}, JSON_HEADERS, chaosApp), 409, "job_not_running");

    const q = await client.jobs[":id"].$delete({ param: { id: queued } });
    expect(q.status).toBe(202);
    expect(await q.json()).toMatchObject({ status: "cancelled", cancel_requested: true });

    const r = await app.request(`/jobs/${running}`, { method: "DELETE" });
    expect(r.status).toBe(202);
    expect(await r.json()).toMatchObject({ cancel_requested: true });
    await waitStatus(running, ["cancelled"]);
    const view = await getJson(`/jobs/${running}`);
    expect(view.step).toBeGreaterThanOrEqual(3);
    expect(view.step).toBeLessThan(400);
    // The last completed step is checkpointed; no actor is left running.
    expect(readdirSync(join(runDir, running, "checkpoints"))).toContain(`step-${view.step}`);
    expect(view.actors.every((a: any) => a.state === "stopped" && a.pid === null)).toBe(true);
    await expectError(await app.request(`/jobs/${running}`, { method: "DELETE" }), 409, "job_finished");
  }, 60_000);
});

describe("jobs beyond the happy path", () => {
  test("a configuration whose keys are valid but cannot fit the task is refused with 400, naming the key", async () => {
    const res = await post("/jobs", shortJob(4, { worker: { actor: { max_new_tokens: 3, ppo_mini_batch_size: 8 }, critic: { ppo_mini_batch_size: 8 } } }));
    expect(res.status).toBe(400);
    const body = (await res.json()) as any;
    expect(JSON.stringify(body)).toContain("worker.actor.max_new_tokens=3 is too short");
    expect(JSON.stringify(body)).toContain('"path":"worker.actor.max_new_tokens"');
  });

  test("max_concurrent_jobs: 2 runs two jobs at once; the third waits its turn", async () => {
    const two = quietManager(tempDir("routes-two"), 2).start();
    try {
      const ids = [await two.submit(shortJob(6)), await two.submit(shortJob(6)), await two.submit(shortJob(6))].map((j) => j.id);
      expect(ids.map((id) => two.get(id).record.status)).toEqual(["running", "running", "queued"]);
      await until(() => ids.every((id) => two.get(id).record.status === "succeeded"), "all three to succeed", 60_000);
    } finally {
      await two.close();
    }
  });

  test("the edge-style default export serves the same app (`export default { fetch }`)", async () => {
    process.env.REVENANT_RUN_DIR = tempDir("edge");
    const edge = (await import("../../runtime/service/server/index.ts")).default;
    expect(edge.hostname).toBe("127.0.0.1");
    const host = { Host: "localhost" };
    const res = await edge.fetch(new Request("http://localhost/healthz", { headers: host }));
    expect(res.status).toBe(200);
    expect(((await res.json()) as any).status).toBe("ok");
    expect((await edge.fetch(new Request("http://localhost/jobs", { headers: host }))).status).toBe(200);
  });
});
