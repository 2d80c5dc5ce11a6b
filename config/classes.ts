/**
 * The programmatic API, shaped like the reference's:
 *
 * @example
 * ```ts
 * const config = new PPOConfig();
 * config.fault_tolerance = new FaultToleranceConfig({ max_restarts: 5 });
 * config.fault_tolerance.max_task_retries; // 2, the default
 * const plain = config.validate();         // throws ConfigError if anything was set wrong
 * ```
 */
import { z } from "zod";
import { ConfigSchema, FaultToleranceSchema, type Config, type ConfigInput, type FaultTolerance } from "./schema.ts";
import { ConfigError } from "./errors.ts";
import { explainIssues } from "./load.ts";
import type { Raw } from "./sources.ts";

function parseSection<S extends z.ZodType>(schema: S, init: unknown, prefix: string[]): z.output<S> {
  const result = schema.safeParse(init);
  if (result.success) return result.data;
  const issues = result.error.issues.map((i) => ({ ...i, path: [...prefix, ...i.path] }));
  const raw: Raw = {};
  let cursor = raw;
  prefix.forEach((key, i) => (cursor = (cursor[key] = i === prefix.length - 1 ? init : {}) as Raw));
  const sources = new Map([[prefix.join(".") || "(root)", "code"]]);
  throw new ConfigError(explainIssues(issues as z.core.$ZodIssue[], prefix.length ? raw : (init as Raw), sources));
}

export interface FaultToleranceConfig extends FaultTolerance {}
/** The `fault_tolerance` section; omitted keys take the reference defaults. */
export class FaultToleranceConfig {
  constructor(init: z.input<typeof FaultToleranceSchema> = {}) {
    Object.assign(this, parseSection(FaultToleranceSchema, init, ["fault_tolerance"]));
  }
}

type PPOConfigShape = Omit<Config, "fault_tolerance"> & { fault_tolerance: FaultToleranceConfig };
export interface PPOConfig extends PPOConfigShape {}
/** A whole training configuration; omitted keys take their defaults. */
export class PPOConfig {
  constructor(init: ConfigInput = {}) {
    const parsed = parseSection(ConfigSchema, init, []);
    Object.assign(this, parsed);
    this.fault_tolerance = new FaultToleranceConfig(parsed.fault_tolerance);
  }

  /** Re-validates after fields were assigned and returns the plain, resolved config. */
  validate(): Config {
    return parseSection(ConfigSchema, JSON.parse(JSON.stringify(this)), []);
  }
}
