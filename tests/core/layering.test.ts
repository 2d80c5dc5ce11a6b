/**
 * The architecture as a test: every import of every `.ts`/`.js` file of every top-level folder,
 * type imports included, points down the layers
 *
 *   runtime/service → runtime/rl → config → roles → runtime/core → native
 *
 * (a folder may import its own files and any folder below it; bench/, examples/ and tests/ sit on
 * top, and bench/ imports no tests). Within that, the addon's compute is loaded by the roles only
 * (and by the CLI's device report), and the Hugging Face readers load no compute. A planted
 * upward import proves the check can fail.
 */
import { expect, test } from "bun:test";
import { readdirSync, readFileSync, statSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";

const root = resolve(import.meta.dir, "..", "..");

/** The layers, lowest first: a folder imports only from its own layer or those before it. */
const LAYERS = ["native", "runtime/core", "roles", "config", "runtime/rl", "runtime/service"] as const;
/** Folders above every layer: they may import any layer (bench no tests). */
const ON_TOP = ["bench", "examples", "tests"] as const;
const FOLDERS = [...LAYERS, ...ON_TOP];

function files(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (name === "node_modules") return [];
    return statSync(path).isDirectory() ? files(path) : /\.(ts|js)$/.test(path) ? [path] : [];
  });
}

/** The relative specifiers a module's text imports or re-exports, type-only ones included. */
function specifiers(text: string): string[] {
  return [...text.matchAll(/^(?:import|export)\b[^"'`;]*?\bfrom\s+["'](\.{1,2}\/[^"']+)["']/gm)].map((m) => m[1]!);
}

/** Every relative import or re-export of a file, as repository paths. */
function imports(file: string): string[] {
  return specifiers(readFileSync(file, "utf8")).map((s) => relative(root, resolve(dirname(file), s)));
}

/** The folder of FOLDERS a repository path belongs to (the longest match), if any. */
function folderOf(path: string): string | undefined {
  return FOLDERS.filter((f) => path === f || path.startsWith(`${f}/`)).sort((a, b) => b.length - a.length)[0];
}

/** An import that points up, or sideways out of the layers: `from → to`, or undefined when it is allowed. */
function upward(from: string, to: string): string | undefined {
  const a = folderOf(from), b = folderOf(to);
  if (a === undefined || b === undefined || a === b) return undefined;
  if (a === "bench" && b === "tests") return `${from} → ${to} (bench imports no tests)`;
  if ((ON_TOP as readonly string[]).includes(a)) return undefined;
  const la = LAYERS.indexOf(a as (typeof LAYERS)[number]), lb = LAYERS.indexOf(b as (typeof LAYERS)[number]);
  return lb < 0 || lb > la ? `${from} → ${to} (${a} sits below ${b})` : undefined;
}

function allEdges(): Array<[string, string]> {
  return FOLDERS.flatMap((folder) => files(join(root, folder)).flatMap((f) => imports(f).map((to): [string, string] => [relative(root, f), to])));
}

/** Value imports only (no `import type`): what loads code at run time. */
function valueImports(file: string): string[] {
  const text = readFileSync(file, "utf8");
  return [...text.matchAll(/^(?:import|export)(?!\s+type\b)[^"'`;]*?\bfrom\s+["'](\.{1,2}\/[^"']+)["']/gm)].map((m) => relative(root, resolve(dirname(file), m[1]!)));
}

/** Value imports of `from`'s files that load one of `forbidden`. */
function violations(from: string, forbidden: readonly string[]): string[] {
  return files(join(root, from)).flatMap((f) =>
    valueImports(f).filter((target) => forbidden.some((p) => target.startsWith(p))).map((target) => `${relative(root, f)} → ${target}`));
}

test("every import of every folder points down the layers", () => {
  const edges = allEdges();
  expect(edges.length).toBeGreaterThan(500); // the scan sees the code base, not an empty list
  expect(edges.flatMap(([from, to]) => upward(from, to) ?? [])).toEqual([]);
});

test("the check fails on a planted upward import, type-only or not", () => {
  expect(upward("native/hf/safetensors.ts", "runtime/core/files.ts")).toContain("native sits below runtime/core");
  expect(upward("runtime/core/supervisor/health.ts", "config/schema.ts")).toContain("runtime/core sits below config");
  expect(upward("roles/minibatch.ts", "runtime/rl/trainer/batch.ts")).toContain("roles sits below runtime/rl");
  expect(upward("bench/ipc.ts", "tests/helpers/supervision.ts")).toContain("bench imports no tests");
  expect(upward("runtime/service/server/app.ts", "native/loader.ts")).toBeUndefined();
  // Type-only imports, multi-line import lists and re-exports are all seen.
  const text = 'import type { Config } from "../../../config/schema.ts";\nimport {\n  a,\n  b,\n} from "./a.ts";\nexport { x } from "../ipc/frame.ts";';
  expect(specifiers(text)).toEqual(["../../../config/schema.ts", "./a.ts", "../ipc/frame.ts"]);
});

test("the native addon's compute is loaded by the roles (and the CLI's device report) only", () => {
  // Files under native/ that hold file formats, limits and durable writes, not compute: anyone may read them.
  const notCompute = ["native/hf/", "native/model_limits.ts", "native/files.ts", "native/device.ts"];
  const users = [...violations("runtime/rl", ["native/"]), ...violations("runtime/service/server", ["native/"]), ...violations("config", ["native/"])]
    .filter((v) => !notCompute.some((p) => v.split(" → ")[1]!.startsWith(p)));
  expect(users).toEqual([]);
});

test("the Hugging Face format readers load no compute", () => {
  const compute = ["native/policy_model.ts", "native/loader.ts", "native/null_backend.ts"];
  expect(violations("native/hf", compute)).toEqual([]);
});
