/**
 * `GET /openapi.json`: an OpenAPI 3.1 document generated from the same zod schemas the routes
 * validate with (schemas.ts and the configuration's ConfigSchema). The route table here is the
 * API's list of operations; a test checks that every documented path answers.
 *
 * @example
 * ```ts
 * const doc = openApiDocument();
 * doc.paths["/jobs"].post.requestBody.content["application/json"].schema; // the config schema
 * ```
 */
import { z } from "zod";
import { configJsonSchema } from "../../../config/index.ts";
import {
  ErrorSchema, HealthSchema, JobAcceptedSchema, JobListSchema, JobViewSchema, KillRequestSchema, KillResultSchema,
  MetricsHistorySchema, MetricsQuerySchema,
} from "./schemas.ts";

type Json = Record<string, unknown>;

const COMPONENTS = {
  JobView: JobViewSchema,
  JobList: JobListSchema,
  JobAccepted: JobAcceptedSchema,
  MetricsHistory: MetricsHistorySchema,
  KillRequest: KillRequestSchema,
  KillResult: KillResultSchema,
  Health: HealthSchema,
  Error: ErrorSchema,
} as const;

function jsonSchema(schema: z.ZodType, io: "input" | "output"): Json {
  const { $schema: _drop, ...rest } = z.toJSONSchema(schema, { io, unrepresentable: "any" }) as Json;
  return rest;
}

const ref = (name: keyof typeof COMPONENTS | "Config") => ({ $ref: `#/components/schemas/${name}` });
const json = (schema: Json, description: string) => ({ description, content: { "application/json": { schema } } });
const errors = (...codes: number[]) => Object.fromEntries(codes.map((c) => [String(c), json(ref("Error"), ERROR_TEXT[c] ?? "error")]));
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
const idParam = { name: "id", in: "path", required: true, schema: jsonSchema(JobViewSchema.shape.id, "input") };

/** The OpenAPI document; `bodyLimitBytes` is stated on POST /jobs. */
export function openApiDocument(bodyLimitBytes = 64 * 1024): Json {
  const schemas: Json = { Config: configJsonSchema() };
  for (const [name, schema] of Object.entries(COMPONENTS)) schemas[name] = jsonSchema(schema, name.endsWith("Request") ? "input" : "output");
  delete (schemas.Config as Json).$schema;
  const sinceParam = { name: "since", in: "query", required: false, schema: jsonSchema(MetricsQuerySchema.shape.since, "input") };
  return {
    openapi: "3.1.0",
    info: {
      title: "Revenant coordinator",
      version: "1",
      description: "Submit and watch fault-tolerant RL training jobs. Every route but /healthz needs `Authorization: Bearer $REVENANT_TOKEN` when the server has a token.",
    },
    components: { schemas, securitySchemes: { bearer: { type: "http", scheme: "bearer" } } },
    security: [{ bearer: [] }, {}],
    paths: {
      "/jobs": {
        get: {
          summary: "list jobs",
          description: "The jobs in memory, in submission order: queued, running, and finished ones within --keep-finished-jobs/--keep-finished-s. Older finished jobs are not listed; GET /jobs/{id} still reads them from disk.",
          responses: { 200: json(ref("JobList"), "the jobs in memory"), ...errors(401) },
        },
        post: {
          summary: "submit a training job",
          description: `The body is a partial configuration (the YAML's schema), merged over the defaults. \`trainer.run_dir\` is the server's. At most ${bodyLimitBytes} bytes.`,
          requestBody: { required: true, content: { "application/json": { schema: ref("Config") } } },
          responses: { 202: json(ref("JobAccepted"), "queued"), ...errors(400, 401, 413, 415, 503, 507) },
        },
      },
      "/jobs/{id}": {
        parameters: [idParam],
        get: {
          summary: "a job's status, step, latest metrics and actor table",
          description: "A finished job no longer in memory is read from its folder (its actor table is then empty).",
          responses: { 200: json(ref("JobView"), "the job"), ...errors(401, 404) },
        },
        delete: {
          summary: "cancel a job: queued ones at once, running ones at the next step after a final checkpoint",
          responses: { 202: json(ref("JobView"), "cancel accepted"), ...errors(401, 404, 409) },
        },
      },
      "/jobs/{id}/metrics": {
        parameters: [idParam],
        get: { summary: "per-step metrics history", parameters: [sinceParam], responses: { 200: json(ref("MetricsHistory"), "the steps"), ...errors(400, 401, 404) } },
      },
      "/jobs/{id}/events": {
        parameters: [idParam],
        get: {
          summary: "Server-Sent Events: the job's history, then steps, actor events and status changes as they happen",
          description: "Events: `status` (data: JobView), `step` ({step, metrics}), `actor` ({event, actors}), `end` (JobView, then the stream closes). " +
            "Every event has an `id` (`<step>.<actor events>`); a reconnect with `Last-Event-ID` gets only what came after it.",
          parameters: [{ name: "Last-Event-ID", in: "header", required: false, schema: { type: "string", pattern: "^\\d+\\.\\d+$" } }],
          responses: { 200: { description: "an event stream", content: { "text/event-stream": { schema: { type: "string" } } } }, ...errors(400, 401, 404, 503) },
        },
      },
      "/jobs/{id}/actors/{actor}/kill": {
        parameters: [idParam, { name: "actor", in: "path", required: true, schema: { type: "string" } }],
        post: {
          summary: "chaos: SIGKILL or SIGSTOP one actor of a running job (server started with --chaos)",
          requestBody: { required: true, content: { "application/json": { schema: ref("KillRequest") } } },
          responses: { 202: json(ref("KillResult"), "signal sent"), ...errors(400, 401, 403, 404, 409, 413, 415) },
        },
      },
      "/metrics": { get: { summary: "Prometheus text exposition", responses: { 200: { description: "metrics", content: { "text/plain": { schema: { type: "string" } } } }, ...errors(401) } } },
      "/healthz": { get: { summary: "the coordinator is up (no token needed)", security: [], responses: { 200: json(ref("Health"), "up") } } },
      "/openapi.json": { get: { summary: "this document", responses: { 200: { description: "OpenAPI 3.1" }, ...errors(401) } } },
      "/": { get: { summary: "the dashboard (HTML)", responses: { 200: { description: "HTML page", content: { "text/html": { schema: { type: "string" } } } }, ...errors(401) } } },
    },
  };
}
