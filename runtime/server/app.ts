/**
 * The coordinator's HTTP API as a Hono app: jobs (submit, list, status, cancel, metrics history,
 * Server-Sent Events, chaos kill), `/metrics` for Prometheus, `/healthz`, `/openapi.json` and
 * the dashboard at `/`. Every bad request is a 4xx with a JSON body naming what was wrong; the
 * one typed error (HttpError) is mapped in the one `onError`.
 *
 * Security: with a token every route but `/healthz` needs `Authorization: Bearer <token>`;
 * without one (loopback only, enforced by the CLI) the Host header must be a loopback name, so
 * a web page cannot reach the API through DNS rebinding. POST bodies must be JSON (no HTML form
 * can send that cross-site without a CORS preflight, which this app never grants) and under the
 * size limit.
 *
 * @example
 * ```ts
 * const jobs = new JobManager({ runDir: "runs/" }).start();
 * const app = createApp({ jobs });
 * const res = await app.request("/healthz");
 * ```
 */
import { createHash, timingSafeEqual } from "node:crypto";
import { Hono, type Context } from "hono";
import { streamSSE, type SSEStreamingApi } from "hono/streaming";
import type { z } from "zod";
import { runtime } from "../adapter/index.ts";
import { dashboardHtml } from "./dashboard.ts";
import { HttpError, type Problem } from "./http_error.ts";
import type { JobEvent, JobManager, ManagedJob } from "./job_manager.ts";
import { openApiDocument } from "./openapi.ts";
import { PROMETHEUS_CONTENT_TYPE, renderPrometheus } from "./prometheus.ts";
import { JobIdSchema, KillRequestSchema, MetricsQuerySchema } from "./schemas.ts";

export const DEFAULT_BODY_LIMIT_BYTES = 64 * 1024;
/** SSE comment interval: keeps idle streams (a queued job) open through proxies and server idle timeouts. */
const SSE_HEARTBEAT_MS = 5_000;
const LOOPBACK_HOSTS = new Set(["localhost", "127.0.0.1", "[::1]", "::1"]);

export interface AppOptions {
  jobs: JobManager;
  /** Bearer token required on every route but /healthz; undefined = none (loopback only). */
  token?: string;
  /** Allows POST /jobs/:id/actors/:actor/kill. */
  chaos?: boolean;
  bodyLimitBytes?: number;
  /** Check that the Host header is a loopback name (default: when there is no token). */
  loopbackHostOnly?: boolean;
}

const digest = (s: string) => createHash("sha256").update(s).digest();

function zodProblems(error: z.ZodError, where: string): Problem[] {
  return error.issues.map((i) => ({ path: i.path.length ? i.path.map(String).join(".") : where, message: i.message }));
}

/** Reads the body as text, refusing more than `limit` bytes whatever Content-Length claims. */
async function readBody(req: Request, limit: number): Promise<string> {
  const declared = Number(req.headers.get("content-length") ?? "0");
  if (declared > limit) throw new HttpError(413, "body_too_large", `request body over the ${limit}-byte limit`);
  if (!req.body) return "";
  const reader = req.body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > limit) {
      void reader.cancel().catch(() => {});
      throw new HttpError(413, "body_too_large", `request body over the ${limit}-byte limit`);
    }
    chunks.push(value);
  }
  const bytes = new Uint8Array(size);
  let off = 0;
  for (const c of chunks) {
    bytes.set(c, off);
    off += c.byteLength;
  }
  try {
    return new TextDecoder("utf-8", { fatal: true }).decode(bytes);
  } catch {
    throw new HttpError(400, "invalid_json", "the body is not valid UTF-8", [{ path: "(body)", message: "invalid UTF-8" }]);
  }
}

/** The JSON body of a POST: 415 unless application/json, 413 over the limit, 400 unless valid JSON. */
async function jsonBody(c: Context, limit: number): Promise<unknown> {
  const type = (c.req.header("content-type") ?? "").split(";")[0]!.trim().toLowerCase();
  if (type !== "application/json") {
    throw new HttpError(415, "unsupported_media_type", `expected Content-Type: application/json, got ${JSON.stringify(type || "(none)")}`);
  }
  const text = await readBody(c.req.raw, limit);
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new HttpError(400, "invalid_json", "the body is not valid JSON", [{ path: "(body)", message: (e as Error).message.slice(0, 200) }]);
  }
}

/** Looks a job up by its id; anything that is not a server-made id is simply not found. */
function findJob(jobs: JobManager, id: string): ManagedJob {
  if (!JobIdSchema.safeParse(id).success) throw new HttpError(404, "job_not_found", `no job ${JSON.stringify(id.slice(0, 100))}`);
  return jobs.get(id);
}

function sseData(e: JobEvent): { event: string; data: string } {
  switch (e.type) {
    case "status":
    case "end":
      return { event: e.type, data: JSON.stringify(e.job) };
    case "step":
      return { event: "step", data: JSON.stringify({ step: e.step, metrics: e.metrics }) };
    case "actor":
      return { event: "actor", data: JSON.stringify({ event: e.event, actors: e.actors, step: e.step }) };
  }
}

/** Replays the job's history, then streams its live events until it ends or the client leaves. */
async function streamJob(stream: SSEStreamingApi, jobs: JobManager, job: ManagedJob): Promise<void> {
  const pending: JobEvent[] = [];
  let wake: (() => void) | undefined;
  let closed = false;
  // Subscribing and reading the history happen in one synchronous block: the trainer appends a
  // step to metrics.jsonl and notifies listeners in one tick, so nothing is missed or repeated.
  const unsubscribe = jobs.subscribe(job, (e) => {
    pending.push(e);
    wake?.();
  });
  const view = jobs.view(job);
  const steps = jobs.history(job);
  const actorEvents = jobs.actorEvents(job);
  stream.onAbort(() => {
    closed = true;
    wake?.();
  });
  try {
    await stream.writeSSE({ event: "status", data: JSON.stringify(view) });
    for (const m of steps) {
      const { step, ...metrics } = m;
      await stream.writeSSE({ event: "step", data: JSON.stringify({ step, metrics }) });
    }
    for (const event of actorEvents) await stream.writeSSE({ event: "actor", data: JSON.stringify({ event, actors: view.actors }) });
    if (["succeeded", "failed", "cancelled"].includes(view.status)) {
      await stream.writeSSE({ event: "end", data: JSON.stringify(view) });
      return;
    }
    while (!closed) {
      const e = pending.shift();
      if (!e) {
        const timer = setTimeout(() => wake?.(), SSE_HEARTBEAT_MS);
        await new Promise<void>((r) => (wake = r));
        wake = undefined;
        clearTimeout(timer);
        if (!pending.length && !closed) await stream.write(": keep-alive\n\n");
        continue;
      }
      await stream.writeSSE(sseData(e));
      if (e.type === "end") return;
    }
  } finally {
    unsubscribe();
  }
}

/** The coordinator app. `app.fetch` serves it on Bun, Deno or any fetch-style host. */
export function createApp(o: AppOptions): Hono {
  const { jobs } = o;
  const limit = o.bodyLimitBytes ?? DEFAULT_BODY_LIMIT_BYTES;
  const tokenDigest = o.token ? digest(o.token) : undefined;
  const loopbackOnly = o.loopbackHostOnly ?? !o.token;
  const started = Date.now();
  const app = new Hono();

  app.onError((err, c) => {
    if (err instanceof HttpError) return c.json(err.toBody(), err.status, err.headers);
    console.error(`revenant server: internal error on ${c.req.method} ${new URL(c.req.url).pathname}:`, err);
    return c.json(new HttpError(500, "internal", "internal error; see the coordinator's log").toBody(), 500);
  });
  app.notFound((c) => c.json(new HttpError(404, "not_found", `no route ${c.req.method} ${new URL(c.req.url).pathname}`).toBody(), 404));

  app.use("*", async (c, next) => {
    if (loopbackOnly) {
      const host = new URL(c.req.url).hostname.toLowerCase();
      if (!LOOPBACK_HOSTS.has(host)) throw new HttpError(421, "host_not_allowed", `Host ${JSON.stringify(host)} is not a loopback name; set REVENANT_TOKEN to serve other hosts`);
    }
    const path = new URL(c.req.url).pathname;
    if (tokenDigest && path !== "/healthz") {
      const header = c.req.header("authorization") ?? "";
      const m = /^Bearer\s+(.+)$/i.exec(header);
      if (!m || !timingSafeEqual(digest(m[1]!.trim()), tokenDigest)) {
        throw new HttpError(401, "unauthorized", "missing or wrong bearer token (Authorization: Bearer $REVENANT_TOKEN)", undefined, { "WWW-Authenticate": 'Bearer realm="revenant"' });
      }
    }
    await next();
    c.header("X-Content-Type-Options", "nosniff");
  });

  app.get("/healthz", (c) => c.json({ status: "ok" as const, runtime: runtime.name, uptime_s: (Date.now() - started) / 1000, chaos: Boolean(o.chaos), jobs: jobs.counts() }));

  app.get("/", (c) => {
    c.header("Content-Security-Policy", "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'; img-src data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'");
    return c.html(dashboardHtml({ chaos: Boolean(o.chaos) }));
  });

  app.get("/openapi.json", (c) => c.json(openApiDocument(limit)));

  app.get("/metrics", (c) => {
    const text = renderPrometheus({
      runtime: runtime.name, version: runtime.version, counts: jobs.counts(),
      jobs: jobs.list().filter((j) => j.registry || j.latest).map((j) => ({
        id: j.id, step: j.step, totalSteps: j.config.trainer.total_steps, latest: j.latest, valScore: j.valScore, registry: j.registry,
      })),
    });
    return c.body(text, 200, { "Content-Type": PROMETHEUS_CONTENT_TYPE });
  });

  app.get("/jobs", (c) => c.json({ jobs: jobs.list().map((j) => jobs.view(j)) }));

  app.post("/jobs", async (c) => {
    const body = await jsonBody(c, limit);
    const job = jobs.submit(body);
    c.header("Location", `/jobs/${job.id}`);
    return c.json({ id: job.id, status: job.record.status }, 202);
  });

  app.get("/jobs/:id", (c) => c.json(jobs.view(findJob(jobs, c.req.param("id")))));

  app.delete("/jobs/:id", (c) => {
    const job = findJob(jobs, c.req.param("id"));
    jobs.cancel(job);
    return c.json(jobs.view(job), 202);
  });

  app.get("/jobs/:id/metrics", (c) => {
    const job = findJob(jobs, c.req.param("id"));
    const query = MetricsQuerySchema.safeParse(c.req.query());
    if (!query.success) throw new HttpError(400, "invalid_query", "invalid query", zodProblems(query.error, "(query)"));
    return c.json({ id: job.id, steps: jobs.history(job, query.data.since ?? 0) });
  });

  app.get("/jobs/:id/events", (c) => {
    const job = findJob(jobs, c.req.param("id"));
    c.header("X-Accel-Buffering", "no");
    return streamSSE(c, (stream) => streamJob(stream, jobs, job), async (err) => {
      console.error(`revenant server: event stream of ${job.id} failed:`, err);
    });
  });

  app.post("/jobs/:id/actors/:actor/kill", async (c) => {
    if (!o.chaos) throw new HttpError(403, "chaos_disabled", "killing actors needs a server started with --chaos");
    const job = findJob(jobs, c.req.param("id"));
    const body = await jsonBody(c, limit);
    const parsed = KillRequestSchema.safeParse(body ?? {});
    if (!parsed.success) throw new HttpError(400, "invalid_request", "invalid kill request", zodProblems(parsed.error, "(body)"));
    const actor = c.req.param("actor");
    const { pid, incarnation } = jobs.signalActor(job, actor, parsed.data.signal);
    return c.json({ job: job.id, actor, signal: parsed.data.signal, pid, incarnation }, 202);
  });

  return app;
}
