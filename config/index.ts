/**
 * Revenant configuration: schema, sources, errors and the programmatic classes.
 *
 * @example
 * ```ts
 * import { resolveConfig } from "./config/index.ts";
 * const { config } = resolveConfig({ args: process.argv.slice(2) });
 * ```
 */
export * from "./schema.ts";
export * from "./errors.ts";
export { configJsonSchema, resolveConfig, validateConfig, DEFAULT_CONFIG_FILE, type Resolved, type ResolveOptions } from "./load.ts";
export { FaultToleranceConfig, PPOConfig } from "./classes.ts";
export { VERL_ENV, envKeyPath } from "./sources.ts";
export { describeAllowed, typeName, type SchemaNode } from "./describe.ts";
