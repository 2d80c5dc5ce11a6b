/**
 * The API's routes as `@hono/zod-openapi` definitions: app.ts serves them (validating params,
 * query and bodies with these zod schemas) and `GET /openapi.json` is generated from the same
 * definitions, so the document cannot drift from the checks. POST /jobs documents its body as the
 * configuration's JSON schema (`Config`); the body itself is checked by the configuration's own
 * resolver (job_manager.ts), which names every problem like the CLI.
 *
 * @example
 * ```ts
 * app.openapi(routes.getJob, (c) => c.json(view(c.req.valid("param").id), 200));
 * ```
 */
import { createRoute, z } from "@hono/zod-openapi";
import {
  ErrorSchema, HealthSchema, JobAcceptedSchema, JobListSchema, JobViewSchema, KillRequestSchema, KillResultSchema, MetricsHistorySchema, MetricsQuerySchema,
} from "./schemas.ts";

/** Path parameter: any string (an id that is not a server-made one is simply not found: 404, not 400). */
const IdParams = z.object({ id: z.string().openapi({ param: { name: "id", in: "path" }, description: "job id, as returned by POST /jobs" }) });
const ActorParams = IdParams.extend({ actor: z.string().openapi({ param: { name: "actor", in: "path" }, description: "actor id" }) });

const ERROR_TEXT: Record<number, string> = {
  400: "invalid request: `problems` names each failing key path and what is allowed",
  401: "missing or wrong bearer token (REVENANT_TOKEN)",
  403: "not allowed here (chaos disabled)",
  404: "no such job or actor",
  409: "the job or actor is not in a state that allows this",
  413: "request body over the size limit",
  415: "the body must be application/json",
  503: "over a limit (queue full: --max-queued-jobs; too many event streams: --max-event-streams) or shutting down; see Retry-After",
  507: "the job could not be stored: the disk is full",
};
const json = <S extends z.ZodType>(schema: S, description: string) => ({ description, content: { "application/json": { schema } } });
const text = (type: string, description: string) => ({ description, content: { [type]: { schema: z.string() } } });
const errors = <C extends number>(...codes: C[]) =>
  Object.fromEntries(codes.map((c) => [c, json(ErrorSchema, ERROR_TEXT[c] ?? "error")])) as Record<C, ReturnType<typeof json<typeof ErrorSchema>>>;

export const routes = {
  listJobs: createRoute({
    method: "get", path: "/jobs", summary: "list jobs",
    description: "The jobs in memory, in submission order: queued, running, and finished ones within --keep-finished-jobs/--keep-finished-s. Older finished jobs are not listed; GET /jobs/{id} still reads them from disk.",
    responses: { 200: json(JobListSchema, "the jobs in memory"), ...errors(401) },
  }),
  submitJob: createRoute({
    method: "post", path: "/jobs", summary: "submit a training job",
    description: "The body is a partial configuration (the YAML's schema), merged over the defaults. `trainer.run_dir` is the server's.",
    request: { body: { required: true, content: { "application/json": { schema: { $ref: "#/components/schemas/Config" } } } } },
    responses: { 202: json(JobAcceptedSchema, "queued"), ...errors(400, 401, 413, 415, 503, 507) },
  }),
  getJob: createRoute({
    method: "get", path: "/jobs/{id}", summary: "a job's status, step, latest metrics and actor table",
    description: "A finished job no longer in memory is read from its folder (its actor table is then empty).",
    request: { params: IdParams },
    responses: { 200: json(JobViewSchema, "the job"), ...errors(401, 404) },
  }),
  cancelJob: createRoute({
    method: "delete", path: "/jobs/{id}", summary: "cancel a job: queued ones at once, running ones at the next step after a final checkpoint",
    request: { params: IdParams },
    responses: { 202: json(JobViewSchema, "cancel accepted"), ...errors(401, 404, 409) },
  }),
  jobMetrics: createRoute({
    method: "get", path: "/jobs/{id}/metrics", summary: "per-step metrics history",
    request: { params: IdParams, query: MetricsQuerySchema },
    responses: { 200: json(MetricsHistorySchema, "the steps"), ...errors(400, 401, 404) },
  }),
  jobEvents: createRoute({
    method: "get", path: "/jobs/{id}/events",
    summary: "Server-Sent Events: the job's history, then steps, actor events and status changes as they happen",
    description: "Events: `status` (data: JobView), `step` ({step, metrics}), `actor` ({event, actors}), `end` (JobView, then the stream closes). " +
      "Every event has an `id` (`<step>.<actor events>`); a reconnect with `Last-Event-ID` gets only what came after it.",
    request: { params: IdParams },
    responses: { 200: text("text/event-stream", "an event stream"), ...errors(400, 401, 404, 503) },
  }),
  killActor: createRoute({
    method: "post", path: "/jobs/{id}/actors/{actor}/kill", summary: "chaos: SIGKILL or SIGSTOP one actor of a running job (server started with --chaos)",
    request: { params: ActorParams, body: { required: true, content: { "application/json": { schema: KillRequestSchema } } } },
    responses: { 202: json(KillResultSchema, "signal sent"), ...errors(400, 401, 403, 404, 409, 413, 415) },
  }),
  metrics: createRoute({ method: "get", path: "/metrics", summary: "Prometheus text exposition", responses: { 200: text("text/plain", "metrics"), ...errors(401) } }),
  health: createRoute({ method: "get", path: "/healthz", summary: "the coordinator is up (no token needed)", security: [], responses: { 200: json(HealthSchema, "up") } }),
  dashboard: createRoute({ method: "get", path: "/", summary: "the dashboard (HTML)", responses: { 200: text("text/html", "HTML page"), ...errors(401) } }),
} as const;

/** `/openapi.json` itself (served by `doc31`, listed here so the document names every path). */
export const openApiRoute = { method: "get", path: "/openapi.json", summary: "this document", responses: { 200: { description: "OpenAPI 3.1" }, ...errors(401) } } as const;

/** The document's top-level fields; `bodyLimitBytes` is stated on POST /jobs. */
export function openApiInfo(bodyLimitBytes: number) {
  return {
    openapi: "3.1.0",
    info: {
      title: "Revenant coordinator",
      version: "1",
      description: "Submit and watch fault-tolerant RL training jobs. Every route but /healthz needs `Authorization: Bearer $REVENANT_TOKEN` when the server has a token. " +
        `Request bodies are at most ${bodyLimitBytes} bytes.`,
    },
    security: [{ bearer: [] }, {}] as Array<Record<string, string[]>>,
  };
}

export { MetricsQuerySchema };
