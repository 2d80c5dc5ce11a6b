/**
 * The coordinator's HTTP API as a Hono app: jobs (submit, list, status, cancel, metrics history,
 * Server-Sent Events, chaos kill), `/metrics` for Prometheus, `/healthz`, `/openapi.json` and
 * the dashboard at `/`, defined with @hono/zod-openapi (openapi.ts). Every bad request is a 4xx
 * with a JSON body naming what was wrong: HttpError (this layer), the job queue's domain errors
 * (job_errors.ts) and hono's own HTTPExceptions (bodyLimit, bearerAuth, validators) are all
 * mapped in the one `onError`. `AppType` types a `hono/client` (`hc<AppType>`).
 *
 * Security: with a token every route but `/healthz` needs `Authorization: Bearer <token>`;
 * without one (loopback only, enforced by the CLI) the Host header must be a loopback name, so
 * a web page cannot reach the API through DNS rebinding. POST bodies must be JSON (no HTML form
 * can send that cross-site without a CORS preflight, which this app never grants) and under the
 * size limit. A request without a Host header is refused (400) before anything else.
 *
 * Bounded: at most `maxEventStreams` event streams at once (503 beyond), and `/metrics` at most
 * `maxMetricSeries` labelled series (prometheus.ts). Every SSE event has an `id:`; a client
 * that reconnects with `Last-Event-ID` gets what came after that event, not the whole history.
 *
 * @example
 * ```ts
 * const jobs = new JobManager({ runDir: "runs/" }).start();
 * const app = createApp({ jobs });
 * const res = await app.request("/healthz", { headers: { Host: "127.0.0.1" } });
 * ```
 */
import { OpenAPIHono, type z } from "@hono/zod-openapi";
import type { Context, MiddlewareHandler } from "hono";
import { bearerAuth } from "hono/bearer-auth";
import { bodyLimit } from "hono/body-limit";
import { HTTPException } from "hono/http-exception";
import { secureHeaders } from "hono/secure-headers";
import { streamSSE, type SSEStreamingApi } from "hono/streaming";
import { configJsonSchema } from "../../../config/index.ts";
import { runtime } from "../../core/adapter/index.ts";
import { dashboardHtml } from "./dashboard.ts";
import { externalRunsApp } from "./external_runs.ts";
import { HttpError, type HttpStatus, type Problem } from "./http_error.ts";
import {
  ActorNotAlive, ActorNotFound, InvalidConfig, JobNotCancellable, JobNotFound, JobNotRunning, JobQueueError, QueueFull, ShuttingDown, StorageError,
} from "./job_errors.ts";
import type { JobEvent, JobManager, ManagedJob } from "./job_manager.ts";
import { openApiInfo, openApiRoute, routes } from "./openapi.ts";
import { PROMETHEUS_CONTENT_TYPE, renderPrometheus } from "./prometheus.ts";
import { JobIdSchema, LOOPBACK_HOSTS, TERMINAL_STATUSES } from "./schemas.ts";

export const DEFAULT_BODY_LIMIT_BYTES = 64 * 1024;
export const DEFAULT_MAX_EVENT_STREAMS = 32;
/** SSE comment interval: keeps idle streams (a queued job) open through proxies and server idle timeouts. */
export const DEFAULT_SSE_HEARTBEAT_MS = 5_000;

export interface AppOptions {
  jobs: JobManager;
  /** Bearer token required on every route but /healthz; undefined = none (loopback only). */
  token?: string;
  /** Allows POST /jobs/:id/actors/:actor/kill. */
  chaos?: boolean;
  bodyLimitBytes?: number;
  /** Check that the Host header is a loopback name (default: when there is no token). */
  loopbackHostOnly?: boolean;
  /**
   * Refuse requests without a Host header with 400 (default true). In-process callers
   * (`app.request(path)`, whose Request has no headers) may turn it off: the URL's host is used.
   */
  requireHostHeader?: boolean;
  /** Event streams (GET /jobs/:id/events) open at once; one more is refused with 503 (default 32). */
  maxEventStreams?: number;
  /** Cap on the labelled series of /metrics (default 10000; see prometheus.ts). */
  maxMetricSeries?: number;
  /** Interval of the SSE keep-alive comment; keep it under the server's idle timeout (default 5000). */
  sseHeartbeatMs?: number;
}

function zodProblems(error: z.ZodError, where: string): Problem[] {
  return error.issues.map((i) => ({ path: i.path.length ? i.path.map(String).join(".") : where, message: i.message }));
}

/** Each job-queue refusal's HTTP status, code and headers. */
const DOMAIN_ERRORS: Array<[new (...a: never[]) => JobQueueError, HttpStatus, string, Record<string, string>?]> = [
  [InvalidConfig, 400, "invalid_config"],
  [JobNotFound, 404, "job_not_found"],
  [ActorNotFound, 404, "actor_not_found"],
  [JobNotCancellable, 409, "job_finished"],
  [JobNotRunning, 409, "job_not_running"],
  [ActorNotAlive, 409, "actor_not_alive"],
  [QueueFull, 503, "queue_full", { "Retry-After": "30" }],
  [ShuttingDown, 503, "shutting_down", { "Retry-After": "30" }],
];

/** Any error a route or middleware throws, as the HttpError the client gets; undefined for a bug (500). */
function toHttpError(err: unknown, limit: number): HttpError | undefined {
  if (err instanceof HttpError) return err;
  if (err instanceof StorageError) return new HttpError(err.noSpace ? 507 : 500, "storage_error", err.message);
  if (err instanceof JobQueueError) {
    const hit = DOMAIN_ERRORS.find(([type]) => err instanceof type);
    return hit && new HttpError(hit[1], hit[2], err.message, err.problems, hit[3]);
  }
  if (!(err instanceof HTTPException)) return undefined;
  // bearerAuth answers 401, or 400 for a malformed header; both carry WWW-Authenticate.
  const challenge = err.res?.headers.get("www-authenticate");
  if (challenge) {
    return new HttpError(401, "unauthorized", "missing or wrong bearer token (Authorization: Bearer $REVENANT_TOKEN)", undefined, { "WWW-Authenticate": 'Bearer realm="revenant"' });
  }
  if (err.status === 413) return new HttpError(413, "body_too_large", `request body over the ${limit}-byte limit`);
  if (err.status === 415) return unsupportedMediaType("(none)");
  if (err.status === 400) return new HttpError(400, "invalid_json", "the body is not valid JSON", [{ path: "(body)", message: err.message.slice(0, 200) }]);
  return undefined;
}

const unsupportedMediaType = (type: string) =>
  new HttpError(415, "unsupported_media_type", `expected Content-Type: application/json, got ${JSON.stringify(type || "(none)")}`);

/** POST bodies: 415 unless application/json (checked before the size and the parse). */
const requireJson: MiddlewareHandler = async (c, next) => {
  const type = (c.req.header("content-type") ?? "").split(";")[0]!.trim().toLowerCase();
  if (type !== "application/json") throw unsupportedMediaType(type);
  await next();
};

/** The JSON body (bodyLimit has already bounded it): 400 unless valid UTF-8 and valid JSON. */
async function jsonBody(c: Context): Promise<unknown> {
  const bytes = new Uint8Array(await c.req.arrayBuffer());
  let text: string;
  try {
    text = new TextDecoder("utf-8", { fatal: true }).decode(bytes);
  } catch {
    throw new HttpError(400, "invalid_json", "the body is not valid UTF-8", [{ path: "(body)", message: "invalid UTF-8" }]);
  }
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new HttpError(400, "invalid_json", "the body is not valid JSON", [{ path: "(body)", message: (e as Error).message.slice(0, 200) }]);
  }
}

/** Looks a job up by its id; anything that is not a server-made id is simply not found. */
function findJob(jobs: JobManager, id: string): ManagedJob {
  if (!JobIdSchema.safeParse(id).success) throw new JobNotFound(`no job ${JSON.stringify(id.slice(0, 100))}`);
  return jobs.get(id);
}

/**
 * Where a client is in a job's event stream: the last step it got and how many actor events.
 * Both only grow, whatever order the history is replayed in, so the pair (sent as each event's
 * `id:`, `<step>.<actor events>`) tells a reconnecting client's `Last-Event-ID` what to skip.
 */
interface Cursor {
  step: number;
  actorEvents: number;
}

const cursorId = (c: Cursor) => `${c.step}.${c.actorEvents}`;

/** The Last-Event-ID header as a cursor; none for a first connection; 400 if it is not one of ours. */
function parseLastEventId(header: string | undefined): Cursor | undefined {
  if (header === undefined || header.trim() === "") return undefined;
  const m = /^(\d{1,15})\.(\d{1,15})$/.exec(header.trim());
  if (!m) {
    throw new HttpError(400, "invalid_last_event_id", "Last-Event-ID must be an event id this server sent (`<step>.<actor events>`, e.g. `12.3`)", [
      { path: "(header) Last-Event-ID", value: header.slice(0, 100), message: "expected <step>.<actor events>, two non-negative integers" },
    ]);
  }
  return { step: Number(m[1]), actorEvents: Number(m[2]) };
}

/** Counts open event streams: one past the limit is refused with 503 before it starts. */
class StreamSlots {
  private open = 0;
  constructor(private readonly max: number) {
    if (!Number.isInteger(max) || max < 0) throw new RangeError(`maxEventStreams must be an integer ≥ 0, got ${max}`);
  }

  /** Takes a slot; the returned function gives it back (once). */
  take(): () => void {
    if (this.open >= this.max) {
      throw new HttpError(503, "too_many_streams", `${this.open} event streams are open, the limit (--max-event-streams ${this.max}); close one or retry later`,
        undefined, { "Retry-After": "5" });
    }
    this.open++;
    let given = false;
    return () => {
      if (!given) this.open--;
      given = true;
    };
  }
}

/**
 * The request's host name (lower case, port dropped) from its Host header; without one, 400 —
 * or, for in-process requests when `required` is off, the URL's host.
 */
function requestHost(req: Request, required: boolean): string {
  const header = req.headers.get("host")?.trim();
  if (!header) {
    if (!required && URL.canParse(req.url)) return new URL(req.url).hostname.toLowerCase();
    throw new HttpError(400, "missing_host", "the request has no Host header; send one (e.g. Host: 127.0.0.1:8321)", [
      { path: "(header) Host", message: "required" },
    ]);
  }
  const host = header.toLowerCase();
  if (host.startsWith("[")) return host.slice(0, host.indexOf("]") + 1);
  return host.split(":")[0]!;
}

/** Running and queued jobs first, then finished ones newest first: what /metrics keeps under its cap. */
function byMetricsPriority(list: ManagedJob[]): ManagedJob[] {
  const active = list.filter((j) => j.record.status === "running" || j.record.status === "queued");
  const finished = list.filter((j) => !active.includes(j)).reverse();
  return [...active, ...finished];
}

function sseEvent(e: JobEvent, cursor: Cursor): { event: string; data: string; id: string } {
  switch (e.type) {
    case "status":
    case "end":
      return { event: e.type, data: JSON.stringify(e.job), id: cursorId(cursor) };
    case "step":
      cursor.step = e.step;
      return { event: "step", data: JSON.stringify({ step: e.step, metrics: e.metrics }), id: cursorId(cursor) };
    case "actor":
      cursor.actorEvents++;
      return { event: "actor", data: JSON.stringify({ event: e.event, actors: e.actors, step: e.step }), id: cursorId(cursor) };
  }
}


/**
 * Replays the job's history after `from` (all of it for a first connection), then streams its
 * live events until it ends or the client leaves.
 */
async function streamJob(stream: SSEStreamingApi, jobs: JobManager, job: ManagedJob, from: Cursor | undefined, heartbeatMs: number): Promise<void> {
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
  const cursor: Cursor = { step: from?.step ?? 0, actorEvents: from?.actorEvents ?? 0 };
  const steps = jobs.history(job, cursor.step);
  const actorEvents = jobs.actorEvents(job).slice(cursor.actorEvents);
  stream.onAbort(() => {
    closed = true;
    wake?.();
  });
  try {
    await stream.writeSSE({ event: "status", data: JSON.stringify(view), id: cursorId(cursor) });
    for (const { step, ...metrics } of steps) await stream.writeSSE(sseEvent({ type: "step", step: step!, metrics }, cursor));
    for (const event of actorEvents) await stream.writeSSE(sseEvent({ type: "actor", event, actors: view.actors }, cursor));
    if (TERMINAL_STATUSES.has(view.status)) {
      await stream.writeSSE(sseEvent({ type: "end", job: view }, cursor));
      return;
    }
    while (!closed) {
      const e = pending.shift();
      if (!e) {
        const timer = setTimeout(() => wake?.(), heartbeatMs);
        await new Promise<void>((r) => (wake = r));
        wake = undefined;
        clearTimeout(timer);
        if (!pending.length && !closed) await stream.write(": keep-alive\n\n");
        continue;
      }
      // A job resumed after a coordinator restart does its last steps again: the client has them.
      if (e.type === "step" && e.step <= cursor.step) continue;
      await stream.writeSSE(sseEvent(e, cursor));
      if (e.type === "end") return;
    }
  } finally {
    unsubscribe();
  }
}

const DASHBOARD_CSP = {
  defaultSrc: ["'none'"], scriptSrc: ["'unsafe-inline'"], styleSrc: ["'unsafe-inline'"], connectSrc: ["'self'"], imgSrc: ["data:"],
  baseUri: ["'none'"], formAction: ["'none'"], frameAncestors: ["'none'"],
};

/** The coordinator app. `app.fetch` serves it on Bun, Deno or any fetch-style host. */
export function createApp(o: AppOptions) {
  const { jobs } = o;
  const limit = o.bodyLimitBytes ?? DEFAULT_BODY_LIMIT_BYTES;
  const loopbackOnly = o.loopbackHostOnly ?? !o.token;
  const requireHost = o.requireHostHeader ?? true;
  const streams = new StreamSlots(o.maxEventStreams ?? DEFAULT_MAX_EVENT_STREAMS);
  const heartbeatMs = o.sseHeartbeatMs ?? DEFAULT_SSE_HEARTBEAT_MS;
  const started = Date.now();
  const app = new OpenAPIHono({
    // A param, query or body that fails its zod schema: 400 naming each problem.
    defaultHook: (result) => {
      if (result.success) return;
      const query = result.target === "query";
      throw new HttpError(400, query ? "invalid_query" : "invalid_request", query ? "invalid query" : "invalid request", zodProblems(result.error, `(${result.target})`));
    },
  });
  const postBody = [requireJson, bodyLimit({ maxSize: limit, onError: () => { throw new HttpError(413, "body_too_large", `request body over the ${limit}-byte limit`); } })];

  app.onError((err, c) => {
    const http = toHttpError(err, limit);
    if (http) return c.json(http.toBody(), http.status, http.headers);
    console.error(`revenant server: internal error on ${c.req.method} ${c.req.path}:`, err);
    return c.json(new HttpError(500, "internal", "internal error; see the coordinator's log").toBody(), 500);
  });
  app.notFound((c) => c.json(new HttpError(404, "not_found", `no route ${c.req.method} ${c.req.path}`).toBody(), 404));

  app.use("*", secureHeaders());
  app.use("*", async (c, next) => {
    const host = requestHost(c.req.raw, requireHost);
    if (loopbackOnly && !LOOPBACK_HOSTS.has(host)) {
      throw new HttpError(421, "host_not_allowed", `Host ${JSON.stringify(host)} is not a loopback name; set REVENANT_TOKEN to serve other hosts`);
    }
    await next();
  });
  if (o.token) {
    const auth = bearerAuth({ token: o.token, realm: "revenant" });
    app.use("*", (c, next) => (c.req.path === "/healthz" ? next() : auth(c, next)));
  }
  app.use("/", secureHeaders({ contentSecurityPolicy: DASHBOARD_CSP }));

  app.openAPIRegistry.registerComponent("schemas", "Config", configJsonSchema() as never);
  app.openAPIRegistry.registerComponent("securitySchemes", "bearer", { type: "http", scheme: "bearer" });
  app.openAPIRegistry.registerPath(openApiRoute);
  app.doc31("/openapi.json", openApiInfo(limit));

  const typed = app
    .openapi(routes.health, (c) => c.json({ status: "ok" as const, runtime: runtime.name, uptime_s: (Date.now() - started) / 1000, chaos: Boolean(o.chaos), jobs: jobs.counts() }, 200))
    .openapi(routes.dashboard, (c) => c.html(dashboardHtml({ chaos: Boolean(o.chaos) }), 200))
    .openapi(routes.metrics, (c) => {
      const text = renderPrometheus({
        runtime: runtime.name, version: runtime.version, counts: jobs.counts(), maxSeries: o.maxMetricSeries,
        jobs: byMetricsPriority(jobs.list()).map((j) => ({
          id: j.id, step: j.step, totalSteps: j.totalSteps, latest: j.latest, valScore: j.valScore, faults: j.faults,
        })).filter((j) => j.faults || j.latest),
      });
      return c.body(text, 200, { "Content-Type": PROMETHEUS_CONTENT_TYPE });
    })
    .openapi(routes.listJobs, (c) => c.json({ jobs: jobs.list().map((j) => jobs.view(j)) }, 200))
    .openapi({ ...routes.submitJob, middleware: postBody }, async (c) => {
      const job = await jobs.submit(await jsonBody(c));
      c.header("Location", `/jobs/${job.id}`);
      return c.json({ id: job.id, status: job.record.status }, 202);
    })
    .openapi(routes.getJob, (c) => c.json(jobs.view(findJob(jobs, c.req.valid("param").id)), 200))
    .openapi(routes.cancelJob, (c) => {
      const job = findJob(jobs, c.req.valid("param").id);
      jobs.cancel(job);
      return c.json(jobs.view(job), 202);
    })
    .openapi(routes.jobMetrics, (c) => {
      const job = findJob(jobs, c.req.valid("param").id);
      return c.json({ id: job.id, steps: jobs.history(job, c.req.valid("query").since ?? 0) }, 200);
    })
    .openapi(routes.jobEvents, (c) => {
      const job = findJob(jobs, c.req.valid("param").id);
      const from = parseLastEventId(c.req.header("last-event-id"));
      const release = streams.take();
      c.header("X-Accel-Buffering", "no");
      return streamSSE(c, async (stream) => {
        try {
          await streamJob(stream, jobs, job, from, heartbeatMs);
        } finally {
          release();
        }
      }, async (err) => {
        console.error(`revenant server: event stream of ${job.id} failed:`, err);
      }) as never;
    })
    .openapi({ ...routes.killActor, middleware: [chaosOnly(Boolean(o.chaos)), ...postBody] }, (c) => {
      const { id, actor } = c.req.valid("param");
      const job = findJob(jobs, id);
      const { signal } = c.req.valid("json");
      const { pid, incarnation } = jobs.signalActor(job, actor, signal);
      return c.json({ job: job.id, actor, signal, pid, incarnation }, 202);
    });
  // Read-only: runs a `bun run train` wrote into the same run dir (no job.json); see external_runs.ts.
  app.route("/external-runs", externalRunsApp(jobs.store.root));
  return typed;
}

/** 403 unless the server was started with --chaos (before the body is read). */
function chaosOnly(enabled: boolean): MiddlewareHandler {
  return async (_c, next) => {
    if (!enabled) throw new HttpError(403, "chaos_disabled", "killing actors needs a server started with --chaos");
    await next();
  };
}

/** The app's type, for a typed client: `hc<AppType>(base)`. */
export type AppType = ReturnType<typeof createApp>;
