/**
 * The configuration reference as Markdown tables, generated from the schema. docs/configuration.md embeds
 * the output between `<!-- config-reference:start -->` and `<!-- config-reference:end -->`;
 * a test keeps the two in agreement. Regenerate with `bun config/reference.ts --write`.
 */
import { readFileSync, writeFileSync } from "node:fs";
import { configJsonSchema } from "./load.ts";
import { typeName, type SchemaNode } from "./describe.ts";

export const START = "<!-- config-reference:start -->";
export const END = "<!-- config-reference:end -->";

/** Every leaf key under `node` (sections are walked into), as [dotted path, schema node]. */
export function leafKeys(node: SchemaNode, prefix = ""): Array<[string, SchemaNode]> {
  const out: Array<[string, SchemaNode]> = [];
  for (const [key, child] of Object.entries(node.properties ?? {})) {
    if (child.type === "object" && child.properties) out.push(...leafKeys(child, `${prefix}${key}.`));
    else out.push([`${prefix}${key}`, child]);
  }
  return out;
}

function rows(node: SchemaNode, prefix: string): string[] {
  return leafKeys(node, prefix).map(([path, child]) => {
    const dflt = child.default === undefined ? "—" : `\`${JSON.stringify(child.default)}\``;
    return `| \`${path}\` | ${typeName(child)} | ${dflt} | ${child.description ?? ""} |`;
  });
}

/** One table per top-level section, fault_tolerance first. */
export function referenceMarkdown(): string {
  const schema = configJsonSchema();
  const sections = Object.keys(schema.properties ?? {}).sort((a, b) =>
    a === "fault_tolerance" ? -1 : b === "fault_tolerance" ? 1 : 0);
  const parts: string[] = [];
  for (const section of sections) {
    parts.push(`#### \`${section}\``, "", "| key | type | default | meaning |", "| --- | --- | --- | --- |");
    parts.push(...rows(schema.properties![section]!, `${section}.`), "");
  }
  return parts.join("\n").trimEnd();
}

/** The page's text between the markers, or undefined when the markers are missing. */
export function embeddedReference(page: string): string | undefined {
  const a = page.indexOf(START);
  const b = page.indexOf(END);
  if (a < 0 || b < a) return undefined;
  return page.slice(a + START.length, b).trim();
}

if (import.meta.main) {
  const path = new URL("../docs/configuration.md", import.meta.url);
  if (process.argv.includes("--write")) {
    const page = readFileSync(path, "utf8");
    const a = page.indexOf(START);
    const b = page.indexOf(END);
    if (a < 0 || b < a) throw new Error(`docs/configuration.md lacks ${START} ... ${END}`);
    writeFileSync(path, `${page.slice(0, a + START.length)}\n${referenceMarkdown()}\n${page.slice(b)}`);
  } else {
    console.log(referenceMarkdown());
  }
}
