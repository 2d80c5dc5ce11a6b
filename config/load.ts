/**
 * Resolves the configuration from its sources, in order of precedence:
 * defaults < YAML file < environment < command-line `key.sub=value` arguments.
 * Every problem in every source is reported at once, each with its key path and origin.
 *
 * @example
 * ```ts
 * const { config } = resolveConfig({ args: ["fault_tolerance.max_restarts=5"] });
 * ```
 */
import { readFileSync } from "node:fs";
import { dirname, join, relative } from "node:path";
import { fileURLToPath } from "node:url";
import { z } from "zod";
import { ConfigSchema, type Config, type ConfigInput } from "./schema.ts";
import { ConfigError, type ConfigProblem } from "./errors.ts";
import { describeAllowed, nodeAt, type SchemaNode } from "./describe.ts";
import { moveVerlKeys } from "./verl.ts";
import { argsLayer, cloneRaw, coerce, emptyLayer, envLayer, getPath, mergeLayers, yamlLayer, type Layer, type Raw } from "./sources.ts";

/** The YAML file used when none is named: the shipped `config/ppo.yaml`. */
export const DEFAULT_CONFIG_FILE = join(dirname(fileURLToPath(import.meta.url)), "ppo.yaml");

let cachedSchema: SchemaNode | undefined;
/** The configuration's JSON Schema (draft 2020-12), as accepted on input. */
export function configJsonSchema(): SchemaNode & Record<string, unknown> {
  cachedSchema ??= z.toJSONSchema(ConfigSchema, { io: "input" }) as SchemaNode;
  return structuredClone(cachedSchema) as SchemaNode & Record<string, unknown>;
}

export interface ResolveOptions {
  /** YAML file; `null` for none; default `config/ppo.yaml`. */
  file?: string | null;
  /** Environment to read VERL_* and REVENANT_*__* variables from; default `process.env`. */
  env?: Record<string, string | undefined>;
  /** `key.sub=value` command-line overrides. */
  args?: readonly string[];
  /** Values set in code, applied over the file and under the environment. */
  values?: ConfigInput;
}

export interface Resolved {
  config: Config;
  /** Where each key that did not come from the defaults was set. */
  sources: Map<string, string>;
  /** Lines to show the user once: each verl key name used (`verl key X → Y`). */
  notes: string[];
}

/** Reads a YAML config file into a layer; a missing or unreadable file is a ConfigError. */
export function readConfigFile(file: string): Layer {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (e) {
    const why = (e as NodeJS.ErrnoException).code === "ENOENT" ? "file not found" : String((e as Error).message);
    throw new ConfigError([{ path: "(file)", source: file, message: `cannot read config file: ${why}` }]);
  }
  return yamlLayer(text, displayPath(file));
}

function displayPath(file: string): string {
  const rel = relative(process.cwd(), file);
  return rel && !rel.startsWith("..") ? rel : file;
}

function codeLayer(values: ConfigInput | undefined): Layer {
  const layer = emptyLayer();
  if (!values) return layer;
  layer.values = cloneRaw(values) as Raw;
  const visit = (v: unknown, path: string[]) => {
    if (path.length) layer.sources.set(path.join("."), "code");
    if (typeof v === "object" && v !== null && !Array.isArray(v)) {
      for (const [k, child] of Object.entries(v)) visit(child, [...path, k]);
    }
  };
  visit(values, []);
  return layer;
}

/** `trainer.logger[1]` */
export function formatPath(path: readonly (string | number)[]): string {
  return path.reduce<string>((acc, k) => (typeof k === "number" ? `${acc}[${k}]` : acc ? `${acc}.${k}` : k), "") || "(root)";
}

/**
 * The origin of a path: its own, or its nearest ancestor's, or else the first of its descendants'
 * (a section set only through its keys, `a.b.c=1` making section `a`), or "default".
 */
function sourceOf(sources: Map<string, string>, path: readonly (string | number)[]): string {
  for (let n = path.length; n > 0; n--) {
    const found = sources.get(path.slice(0, n).join("."));
    if (found) return found;
  }
  const prefix = `${path.join(".")}.`;
  for (const [key, source] of sources) if (key.startsWith(prefix)) return source;
  return "default";
}

/** Converts zod issues into problems that name path, source, value and what is allowed. */
export function explainIssues(issues: readonly z.core.$ZodIssue[], raw: Raw, sources: Map<string, string>): ConfigProblem[] {
  const schema = configJsonSchema();
  const problems: ConfigProblem[] = [];
  for (const issue of issues) {
    const path = issue.path.filter((k): k is string | number => typeof k !== "symbol");
    if (issue.code === "unrecognized_keys") {
      const allowed = Object.keys(nodeAt(schema, path)?.properties ?? {});
      for (const key of issue.keys) {
        problems.push({
          path: formatPath([...path, key]),
          source: sourceOf(sources, [...path, key]),
          value: getPath(raw, [...path, key]),
          message: `unknown key; allowed keys here: ${allowed.join(", ")}`,
        });
      }
      continue;
    }
    if (issue.code === "custom" && isComparison(issue.params)) {
      problems.push(explainComparison(path, issue.params, raw, sources));
      continue;
    }
    const node = nodeAt(schema, path);
    const custom = issue.code === "custom";
    problems.push({
      path: formatPath(path),
      source: sourceOf(sources, path),
      value: getPath(raw, path),
      message: custom ? issue.message : `expected ${describeAllowed(node)}`,
    });
  }
  return problems;
}

/** What a cross-field rule (`greaterThan` in schema.ts) puts in its issue's params. */
interface Comparison {
  than: string;
  thanValue: number;
  value: number;
  why: string;
}

function isComparison(params: unknown): params is Comparison {
  return typeof params === "object" && params !== null && typeof (params as Comparison).than === "string";
}

/**
 * A rule between two keys: both may come from different sources (one from a file, the other
 * from the environment or a default), so the problem names the value and origin of each.
 */
function explainComparison(path: (string | number)[], c: Comparison, raw: Raw, sources: Map<string, string>): ConfigProblem {
  const other = [...path.slice(0, -1), c.than];
  return {
    path: formatPath(path),
    source: sourceOf(sources, path),
    value: getPath(raw, path) ?? c.value,
    message: `must be greater than ${formatPath(other)} = ${c.thanValue} (${sourceOf(sources, other)}): ${c.why}`,
  };
}

/** Validates raw values against the schema, throwing a ConfigError that explains every problem. */
export function validateConfig(raw: Raw, sources: Map<string, string> = new Map()): Config {
  const result = ConfigSchema.safeParse(raw);
  if (!result.success) throw new ConfigError(explainIssues(result.error.issues, raw, sources));
  return result.data;
}

/** Resolves defaults < YAML < code values < environment < arguments into a validated config. */
export function resolveConfig(options: ResolveOptions = {}): Resolved {
  const schema = configJsonSchema();
  const file = options.file === undefined ? DEFAULT_CONFIG_FILE : options.file;
  const problems: ConfigProblem[] = [];
  const collect = (make: () => Layer): Layer => {
    try {
      return make();
    } catch (e) {
      if (!(e instanceof ConfigError)) throw e;
      problems.push(...e.problems);
      return emptyLayer();
    }
  };
  const layers = [
    file === null ? emptyLayer() : collect(() => readConfigFile(file)),
    codeLayer(options.values),
    envLayer(options.env ?? process.env, schema, problems),
    argsLayer(options.args ?? [], schema, problems),
  ];
  const notes = new Set<string>();
  // Strings typed as text (environment, arguments) convert to the type of the key they land on.
  layers.forEach((layer, i) => moveVerlKeys(layer, schema, notes, problems, i >= 2 ? coerce : undefined));
  const merged = mergeLayers(layers);
  // Validate what did parse too, so one run reports every problem in every source.
  const result = ConfigSchema.safeParse(merged.values);
  if (!result.success) problems.push(...explainIssues(result.error.issues, merged.values, merged.sources));
  if (problems.length) throw new ConfigError(problems);
  return { config: (result as { data: Config }).data, sources: merged.sources, notes: [...notes] };
}
