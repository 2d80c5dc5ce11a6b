/**
 * Turns a JSON Schema node (from zod's `toJSONSchema`) into plain words for error messages and
 * the README table, so both always say exactly what the schema enforces.
 */

/** The subset of JSON Schema that zod emits for our config. */
export interface SchemaNode {
  type?: string;
  enum?: unknown[];
  minimum?: number;
  maximum?: number;
  exclusiveMinimum?: number;
  exclusiveMaximum?: number;
  minLength?: number;
  maxLength?: number;
  items?: SchemaNode;
  /** One of several shapes (a value or a list of them). */
  anyOf?: SchemaNode[];
  properties?: Record<string, SchemaNode>;
  default?: unknown;
  description?: string;
}

const SAFE_INT = Number.MAX_SAFE_INTEGER;

function bounds(node: SchemaNode): string {
  const parts: string[] = [];
  if (node.minimum !== undefined && node.minimum > -SAFE_INT) parts.push(`≥ ${node.minimum}`);
  if (node.exclusiveMinimum !== undefined) parts.push(`> ${node.exclusiveMinimum}`);
  if (node.maximum !== undefined) parts.push(`≤ ${node.maximum}`);
  if (node.exclusiveMaximum !== undefined) parts.push(`< ${node.exclusiveMaximum}`);
  return parts.length ? " " + parts.join(" and ") : "";
}

function lengthBound(node: SchemaNode): string {
  return node.maxLength === undefined ? "" : ` of at most ${node.maxLength} characters`;
}

/** Durations are described "... (seconds)" (schema.ts `seconds()`); errors then say the unit. */
function secondsUnit(node: SchemaNode): string {
  return node.description?.endsWith("(seconds)") ? " of seconds" : "";
}

/** "an integer ≥ -1", "a boolean (true or false)", "one of: gae, grpo", ... */
export function describeAllowed(node: SchemaNode | undefined): string {
  if (!node) return "a known key";
  if (node.enum) return `one of: ${node.enum.join(", ")}`;
  switch (node.type) {
    case "boolean": return "a boolean (true or false)";
    case "integer": return `an integer${bounds(node)}`;
    case "number": return `a number${secondsUnit(node)}${bounds(node)}`;
    case "string": return `${node.minLength ? "a non-empty string" : "a string"}${lengthBound(node)}`;
    case "array": return `a list of ${describeAllowed(node.items).replace(/^(a|an) /, "")}`;
    case "object": return `a mapping with keys: ${Object.keys(node.properties ?? {}).join(", ")}`;
    default: return "a valid value";
  }
}

/** Short type name for the README table: boolean, integer, number, string, enum, list. */
export function typeName(node: SchemaNode): string {
  if (node.enum) return node.enum.map((v) => `\`${String(v)}\``).join(" \\| ");
  if (node.type === "array") return `list of ${typeName(node.items ?? {})}`;
  if (node.type === "string") return `string${lengthBound(node)}`;
  return `${node.type ?? "any"}${bounds(node)}`;
}

/** The JSON Schema node at a dotted path (through `properties` and `items`), if any. */
export function nodeAt(root: SchemaNode, path: readonly (string | number)[]): SchemaNode | undefined {
  let node: SchemaNode | undefined = root;
  for (const key of path) {
    if (!node) return undefined;
    node = typeof key === "number" ? node.items : node.properties?.[key];
  }
  return node;
}
