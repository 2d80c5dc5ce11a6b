/**
 * Configuration sources. Each turns its input into a `Layer`: a nested object of raw values plus,
 * for every key path it set, a description of where the value came from. Strings from the
 * environment and the command line are converted to the type the schema expects at that path;
 * a string that does not convert is kept as is, so validation reports it with its source.
 */
import { isMap, isScalar, LineCounter, parseDocument, type Node as YamlNode } from "yaml";
import { parse as parseYaml } from "yaml";
import { ConfigError, type ConfigProblem } from "./errors.ts";
import { nodeAt, type SchemaNode } from "./describe.ts";

export type Raw = Record<string, unknown>;

/** Raw values from one source, with the origin of every path it set. */
export interface Layer {
  values: Raw;
  sources: Map<string, string>;
}

export const emptyLayer = (): Layer => ({ values: {}, sources: new Map() });

const isPlainObject = (v: unknown): v is Raw => typeof v === "object" && v !== null && !Array.isArray(v);

/** The raw value at a key path, or undefined. */
export function getPath(values: unknown, path: readonly (string | number)[]): unknown {
  let cur = values;
  for (const key of path) {
    if (typeof cur !== "object" || cur === null || !Object.hasOwn(cur, key)) return undefined;
    cur = (cur as Record<string | number, unknown>)[key];
  }
  return cur;
}

/** Sets `values[path] = value`, creating mappings on the way; refuses to overwrite a scalar with a mapping. */
export function setLayerPath(layer: Layer, path: string[], value: unknown, source: string): ConfigProblem | undefined {
  let obj = layer.values;
  for (let i = 0; i < path.length - 1; i++) {
    const key = path[i]!;
    const next = ownValue(obj, key);
    if (next === undefined) setOwn(obj, key, {});
    else if (!isPlainObject(next)) {
      return {
        path: path.slice(0, i + 1).join("."),
        source,
        message: `conflicts with ${layer.sources.get(path.slice(0, i + 1).join("."))}: a key cannot be both a value and a section`,
      };
    }
    obj = ownValue(obj, key) as Raw;
  }
  setOwn(obj, path[path.length - 1]!, value);
  layer.sources.set(path.join("."), source);
  return undefined;
}

/**
 * Own-property access only. Keys come from files, the environment, arguments and HTTP bodies:
 * a key such as `__proto__` must become an ordinary (unknown, hence rejected) key, never a way
 * to reach or change Object.prototype.
 */
function ownValue(obj: Raw, key: string): unknown {
  return Object.hasOwn(obj, key) ? obj[key] : undefined;
}

function setOwn(obj: Raw, key: string, value: unknown): void {
  Object.defineProperty(obj, key, { value, enumerable: true, writable: true, configurable: true });
}

/** A deep copy of plain data made with own-property writes only. */
export function cloneRaw(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(cloneRaw);
  if (!isPlainObject(value)) return value;
  const out: Raw = {};
  for (const [k, v] of Object.entries(value)) setOwn(out, k, cloneRaw(v));
  return out;
}

// ---- YAML ----------------------------------------------------------------------------------

/** Parses a YAML config file; syntax errors carry file:line:col. */
export function yamlLayer(text: string, file: string): Layer {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, uniqueKeys: true, prettyErrors: false });
  const where = (offset: number) => {
    const { line, col } = lineCounter.linePos(offset);
    return `${file}:${line}:${col}`;
  };
  if (doc.errors.length > 0) {
    throw new ConfigError(doc.errors.map((e) => ({
      path: "(file)",
      source: where(e.pos[0]),
      message: `malformed YAML: ${e.message.split("\n")[0]}`,
    })));
  }
  const layer = emptyLayer();
  if (doc.contents === null) return layer; // an empty file sets nothing
  if (!isMap(doc.contents)) {
    throw new ConfigError([{ path: "(file)", source: where(doc.contents.range?.[0] ?? 0), message: "the top level must be a mapping of sections (fault_tolerance:, trainer:, ...)" }]);
  }
  const problems: ConfigProblem[] = [];
  const walk = (node: YamlNode, path: string[], out: Raw) => {
    if (!isMap(node)) return;
    for (const pair of node.items) {
      const keyNode = pair.key as YamlNode | null;
      const offset = keyNode?.range?.[0] ?? 0;
      if (!isScalar(keyNode) || (typeof keyNode.value !== "string" && typeof keyNode.value !== "number")) {
        problems.push({ path: path.join(".") || "(file)", source: where(offset), message: "keys must be plain names" });
        continue;
      }
      const key = String(keyNode.value);
      const childPath = [...path, key];
      layer.sources.set(childPath.join("."), where(offset));
      const value = pair.value as YamlNode | null;
      if (isMap(value)) {
        const child: Raw = {};
        setOwn(out, key, child);
        walk(value, childPath, child);
      } else {
        setOwn(out, key, value === null ? null : value.toJSON());
      }
    }
  };
  walk(doc.contents, [], layer.values);
  if (problems.length) throw new ConfigError(problems);
  return layer;
}

// ---- string coercion (environment and command line) ----------------------------------------------

const TRUE = new Set(["true", "1", "yes", "on"]);
const FALSE = new Set(["false", "0", "no", "off"]);

/** Converts a string to the type the schema wants at this node; returns the string unchanged if it cannot. */
export function coerce(text: string, node: SchemaNode | undefined): unknown {
  if (!node) return text;
  if (node.enum) return text;
  // A key that takes one value or a list (data.train_files): "[a, b]" is the list, anything else the value.
  const list = node.anyOf?.find((n) => n.type === "array");
  if (list) return text.trim().startsWith("[") ? coerce(text, list) : coerce(text, node.anyOf!.find((n) => n !== list));
  switch (node.type) {
    case "boolean": {
      const t = text.trim().toLowerCase();
      return TRUE.has(t) ? true : FALSE.has(t) ? false : text;
    }
    case "integer":
    case "number": {
      const n = text.trim() === "" ? NaN : Number(text);
      return Number.isFinite(n) ? n : text;
    }
    case "array": {
      const trimmed = text.trim();
      let items: unknown;
      if (trimmed.startsWith("[")) {
        try {
          items = parseYaml(trimmed);
        } catch {
          return text;
        }
      } else {
        items = trimmed === "" ? [] : trimmed.split(",").map((s) => s.trim());
      }
      if (!Array.isArray(items)) return text;
      return items.map((item) => (typeof item === "string" ? coerce(item, node.items) : item));
    }
    default:
      return text;
  }
}

// ---- environment ---------------------------------------------------------------------------------

/** The reference's environment variables and the keys they set. */
export const VERL_ENV: Readonly<Record<string, string>> = {
  VERL_FAULT_TOLERANCE_ENABLED: "fault_tolerance.enable_fault_tolerance",
  VERL_MAX_RESTARTS: "fault_tolerance.max_restarts",
  VERL_MAX_TASK_RETRIES: "fault_tolerance.max_task_retries",
  VERL_HEALTH_MONITORING_ENABLED: "fault_tolerance.enable_health_monitoring",
  VERL_HEALTH_CHECK_INTERVAL: "fault_tolerance.health_check_interval",
};

/**
 * `REVENANT_<SECTION>__<KEY>[__<SUBKEY>]` names any key (case-insensitive, `__` between levels),
 * e.g. `REVENANT_TRAINER__TOTAL_STEPS=50`. Variables without `__` (REVENANT_TOKEN,
 * REVENANT_NUM_THREADS, ...) are not configuration keys and are left alone.
 */
export function envKeyPath(name: string): string | undefined {
  if (name in VERL_ENV) return VERL_ENV[name];
  if (name.slice(0, 9).toUpperCase() !== "REVENANT_" || !name.includes("__")) return undefined;
  return name.slice("REVENANT_".length).toLowerCase().split("__").join(".");
}

/** Reads configuration variables; problems are appended to `problems` and the rest still applies. */
export function envLayer(env: Record<string, string | undefined>, schema: SchemaNode, problems: ConfigProblem[]): Layer {
  const layer = emptyLayer();
  const seen = new Map<string, { name: string; text: string }>();
  for (const name of Object.keys(env).sort()) {
    const text = env[name];
    const path = envKeyPath(name);
    if (path === undefined || text === undefined) continue;
    const earlier = seen.get(path);
    if (earlier && earlier.text !== text) {
      problems.push({ path, source: `env ${name}`, value: text, message: `conflicts with ${earlier.name}=${JSON.stringify(earlier.text)}; set one of them` });
      continue;
    }
    seen.set(path, { name, text });
    const keys = path.split(".");
    const problem = setLayerPath(layer, keys, coerce(text, nodeAt(schema, keys)), `env ${name}`);
    if (problem) problems.push(problem);
  }
  return layer;
}

// ---- command line ----------------------------------------------------------------------------------

/** `key.sub=value` overrides, in order; a later one for the same key wins. Problems go to `problems`. */
export function argsLayer(args: readonly string[], schema: SchemaNode, problems: ConfigProblem[]): Layer {
  const layer = emptyLayer();
  for (const arg of args) {
    const eq = arg.indexOf("=");
    const key = eq > 0 ? arg.slice(0, eq).trim() : "";
    if (!/^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$/.test(key)) {
      problems.push({ path: "(arguments)", source: `argument ${JSON.stringify(arg)}`, message: "expected key.sub=value, e.g. fault_tolerance.max_restarts=5" });
      continue;
    }
    const keys = key.split(".");
    const problem = setLayerPath(layer, keys, coerce(arg.slice(eq + 1), nodeAt(schema, keys)), `argument ${arg}`);
    if (problem) problems.push(problem);
  }
  return layer;
}

// ---- merging ----------------------------------------------------------------------------------------

/** Deep-merges layers, later over earlier; mappings merge, everything else is replaced. */
export function mergeLayers(layers: readonly Layer[]): Layer {
  const out = emptyLayer();
  const merge = (into: Raw, from: Raw) => {
    for (const [key, value] of Object.entries(from)) {
      const current = ownValue(into, key);
      if (isPlainObject(value) && isPlainObject(current)) merge(current, value);
      else setOwn(into, key, cloneRaw(value));
    }
  };
  for (const layer of layers) {
    merge(out.values, layer.values);
    for (const [path, source] of layer.sources) {
      // A section replaced by a plain value forgets the origins of its old children.
      if (!isPlainObject(getPath(layer.values, path.split(".")))) {
        for (const known of [...out.sources.keys()]) if (known.startsWith(path + ".")) out.sources.delete(known);
      }
      out.sources.set(path, source);
    }
  }
  return out;
}
