/**
 * docs/configuration.md's reference matches the schema; the README opens with the two commands
 * CI runs, and its first 60 lines hold the tour and the links to every page of docs/.
 */
import { expect, test } from "bun:test";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { embeddedReference, leafKeys, referenceMarkdown } from "../../config/reference.ts";
import { configJsonSchema } from "../../config/index.ts";

const root = join(import.meta.dir, "..", "..");
const readme = readFileSync(join(root, "README.md"), "utf8");
const reference = readFileSync(join(root, "docs", "configuration.md"), "utf8");

test("the configuration reference is the one generated from the schema", () => {
  const embedded = embeddedReference(reference);
  expect(embedded).toBeDefined();
  // On mismatch: run `bun config/reference.ts --write`.
  expect(embedded).toBe(referenceMarkdown());
});

test("the reference lists every fault_tolerance key with its type and default", () => {
  const ft = (configJsonSchema().properties!.fault_tolerance!.properties)!;
  for (const [key, node] of Object.entries(ft)) {
    const row = reference.split("\n").find((l) => l.startsWith(`| \`fault_tolerance.${key}\` |`));
    expect(row).toBeDefined();
    expect(row).toContain(`\`${JSON.stringify(node.default)}\``);
  }
});

test("the reference shows every number's bounds and every string's length limit, as the schema enforces them", () => {
  const rowOf = (path: string) => reference.split("\n").find((l) => l.startsWith(`| \`${path}\` |`));
  for (const [path, node] of leafKeys(configJsonSchema())) {
    const row = rowOf(path);
    expect(row, path).toBeDefined();
    const type = row!.split(" | ")[1]!;
    const wanted = [
      node.minimum === undefined ? undefined : `≥ ${node.minimum}`,
      node.exclusiveMinimum === undefined ? undefined : `> ${node.exclusiveMinimum}`,
      node.maximum === undefined ? undefined : `≤ ${node.maximum}`,
      node.maxLength === undefined ? undefined : `at most ${node.maxLength} characters`,
    ].filter((w) => w !== undefined);
    for (const w of wanted) expect(type, path).toContain(w);
  }
  expect(rowOf("fault_tolerance.call_deadline_s")).toContain("number ≥ 0.001 and ≤ 604800");
});

test("the README opens with the two commands, and CI runs the test command", () => {
  const blocks = [...readme.matchAll(/```sh\n([^\n]+)\n```/g)].map((m) => m[1]!);
  expect(blocks[0]).toContain("bun run train");
  expect(blocks[1]).toContain("bun test");
  const ci = readFileSync(join(root, ".ci", "run"), "utf8");
  const testPart = blocks[1]!.split("bun install && ")[1]!.split(" && ");
  for (const cmd of testPart) expect(ci).toContain(cmd);
});

test("the README's first 60 lines: the two commands, the tour of every runtime folder, a link to every docs page", () => {
  const top = readme.split("\n").slice(0, 60).join("\n");
  expect(top).toContain("bun run train");
  for (const room of ["service", "rl", "core"]) {
    for (const dir of readdirSync(join(root, "runtime", room), { withFileTypes: true }).filter((d) => d.isDirectory())) {
      expect(top, `runtime/${room}/${dir.name}`).toContain(`\`runtime/${room}/${dir.name}/\``);
    }
  }
  for (const page of readdirSync(join(root, "docs")).filter((f) => f.endsWith(".md"))) expect(top, page).toContain(`(docs/${page})`);
});
