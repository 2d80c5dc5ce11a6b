/**
 * A POST /jobs body made a job configuration: its hygiene (an object, no prototype keys, bounded
 * depth), the keys only the operator sets (run dir, MLflow server), the paths it may name
 * (request_paths.ts), the defaults merged under it, and the fit check (job_check.ts). Every
 * problem is an InvalidConfig naming the key, which the API answers with 400.
 *
 * @example
 * ```ts
 * const config = parseJobConfig(await c.req.json(), "runs/", { roots: requestRoots({ dataRoots: ["/srv/data"] }) });
 * ```
 */
import { ConfigError, resolveConfig } from "../../../config/index.ts";
import type { Config, ConfigInput } from "../../../config/schema.ts";
import { JobConfigError } from "../../rl/trainer/plan.ts";
import { InvalidConfig, type Problem } from "./job_errors.ts";
import { checkJobFits } from "./job_check.ts";
import { confineRequestPaths, RequestPathError, type RequestRoots } from "./request_paths.ts";

/** Keys that must never reach an object merge (prototype pollution). */
const FORBIDDEN_KEYS = new Set(["__proto__", "constructor", "prototype"]);
const MAX_DEPTH = 8;

/** What the operator decides for every request's job: the folders paths may point into, the MLflow server. */
export interface RequestPolicy {
  roots: RequestRoots;
  /** `serve --mlflow-tracking-uri`: the one MLflow server jobs may log to; empty = none. */
  mlflowTrackingUri?: string;
}

/** Keys of the trainer section that only the operator sets, with the serve flag that does. */
const OPERATOR_KEYS: ReadonlyArray<[string, string]> = [["run_dir", "--run-dir"], ["mlflow_tracking_uri", "--mlflow-tracking-uri"]];

/**
 * Validates a request body as a partial job configuration, with the paths it names confined to the
 * operator's folders (request_paths.ts); InvalidConfig with every problem otherwise.
 */
export function parseJobConfig(body: unknown, runDir: string, where: RequestPolicy = { roots: { data: [], model: [] } }): Config {
  if (typeof body !== "object" || body === null || Array.isArray(body)) {
    throw new InvalidConfig("the body must be a JSON object: a (partial) training configuration", [{ path: "(body)", message: "expected an object" }]);
  }
  const unsafe: Problem[] = [];
  const visit = (v: unknown, path: string[]) => {
    if (typeof v !== "object" || v === null) return;
    if (path.length >= MAX_DEPTH) {
      unsafe.push({ path: path.join("."), message: `nested deeper than ${MAX_DEPTH} levels` });
      return;
    }
    for (const key of Object.keys(v)) {
      if (FORBIDDEN_KEYS.has(key)) unsafe.push({ path: [...path, key].join("."), message: "key not allowed" });
      else visit((v as Record<string, unknown>)[key], [...path, key]);
    }
  };
  visit(body, []);
  if (unsafe.length) throw new InvalidConfig("invalid configuration", unsafe);
  const raw = body as Record<string, unknown>;
  const trainer = raw.trainer;
  const isObject = typeof trainer === "object" && trainer !== null && !Array.isArray(trainer);
  for (const [key, flag] of OPERATOR_KEYS) {
    if (isObject && key in trainer) {
      throw new InvalidConfig("invalid configuration", [{ path: `trainer.${key}`, source: "request", message: `set by the coordinator's operator (serve ${flag}); a request cannot choose it` }]);
    }
  }
  const operator = { run_dir: runDir, ...(where.mlflowTrackingUri ? { mlflow_tracking_uri: where.mlflowTrackingUri } : {}) };
  const values = trainer === undefined || isObject ? { ...raw, trainer: { ...(trainer as object | undefined), ...operator } } : raw;
  try {
    const config = confineRequestPaths(resolveConfig({ file: null, env: {}, values: values as ConfigInput }).config, where.roots);
    checkJobFits(config); // arithmetic only: the data set is generated when the job starts, not here
    return config;
  } catch (e) {
    if (e instanceof JobConfigError || e instanceof RequestPathError) {
      const path = e instanceof JobConfigError ? e.path : e.key;
      throw new InvalidConfig("invalid configuration", [{ path, source: "request", message: e.message }]);
    }
    if (!(e instanceof ConfigError)) throw e;
    throw new InvalidConfig("invalid configuration", e.problems.map((p) => ({
      path: p.path, message: p.message, source: p.source === "code" ? "request" : p.source, ...(p.value !== undefined ? { value: p.value } : {}),
    })));
  }
}
