/**
 * The three rooms, checked: imports run one way, service → RL → runtime core → adapter. The
 * runtime core never imports the RL application, the service, the roles or the native addon;
 * the RL application never imports the service; nothing outside roles/ loads the addon's compute
 * (type imports, the device report, the null backend's types and the Hugging Face file formats
 * of native/hf aside).
 */
import { expect, test } from "bun:test";
import { readdirSync, readFileSync, statSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";

const root = resolve(import.meta.dir, "..", "..");

function files(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    return statSync(path).isDirectory() ? files(path) : path.endsWith(".ts") ? [path] : [];
  });
}

/** Value imports (not `import type`) of a file, as paths relative to the repository root. */
function imports(file: string): string[] {
  const text = readFileSync(file, "utf8");
  const specs = [...text.matchAll(/^(?:import|export)(?!\s+type\b)[^"']*?from\s+["'](\.{1,2}\/[^"']+)["']/gm)].map((m) => m[1]!);
  return specs.map((s) => relative(root, resolve(dirname(file), s)));
}

function violations(from: string, forbidden: readonly string[]): string[] {
  return files(join(root, from)).flatMap((f) =>
    imports(f).filter((target) => forbidden.some((p) => target.startsWith(p))).map((target) => `${relative(root, f)} → ${target}`));
}

test("the runtime core imports nothing from the RL application, the service, the roles or the addon", () => {
  expect(violations("runtime/core", ["runtime/rl/", "runtime/service/", "roles/", "native/"])).toEqual([]);
});

test("the RL application imports nothing from the service", () => {
  expect(violations("runtime/rl", ["runtime/service/"])).toEqual([]);
});

/** Files under native/ that hold file formats and limits, not compute: anyone may read them. */
const NATIVE_FORMATS = ["native/hf/", "native/model_limits.ts"];

test("the native addon's compute is loaded by the roles (and the CLI's device report) only", () => {
  const users = [...violations("runtime/rl", ["native/"]), ...violations("runtime/service/server", ["native/"])]
    .filter((v) => !NATIVE_FORMATS.some((p) => v.split(" → ")[1]!.startsWith(p)));
  expect(users).toEqual([]);
});

test("the Hugging Face format readers load no compute", () => {
  const compute = ["native/policy_model.ts", "native/loader.ts", "native/null_backend.ts"];
  expect(violations("native/hf", compute)).toEqual([]);
});
