/** `bun run train`: prints the resolved config and the device report; bad config exits 2 with the reason. */
import { expect, test } from "bun:test";
import { join } from "node:path";

const root = join(import.meta.dir, "..", "..");
function train(args: string[], env: Record<string, string> = {}) {
  const proc = Bun.spawnSync([process.execPath, "runtime/cli/train.ts", ...args], { cwd: root, env: { ...process.env, ...env } });
  return { code: proc.exitCode, out: proc.stdout.toString(), err: proc.stderr.toString() };
}

test("--print-config prints the resolved YAML, overrides applied", () => {
  const r = train(["--print-config", "fault_tolerance.max_restarts=5"], { VERL_MAX_TASK_RETRIES: "-1" });
  expect(r.code).toBe(0);
  expect(r.out).toContain("max_restarts: 5");
  expect(r.out).toContain("max_task_retries: -1");
});

test("--print-schema prints JSON Schema", () => {
  const r = train(["--print-schema"]);
  expect(r.code).toBe(0);
  expect(JSON.parse(r.out).properties.fault_tolerance.properties.max_restarts.default).toBe(3);
});

test("a bad value exits 2 and names it", () => {
  const r = train(["--print-config"], { VERL_MAX_RESTARTS: "abc" });
  expect(r.code).toBe(2);
  expect(r.err).toContain(`fault_tolerance.max_restarts = "abc" (env VERL_MAX_RESTARTS): expected an integer ≥ -1`);
});

test("an unknown flag exits 2 with the usage", () => {
  const r = train(["--bogus"]);
  expect(r.code).toBe(2);
  expect(r.err).toContain("usage: bun run train");
});

test("with no flags it prints the resolved config and the device report, exit 0", () => {
  const r = train(["trainer.total_steps=1"]);
  expect(r.code).toBe(0);
  expect(r.out).toContain("total_steps: 1");
  expect(r.out).toMatch(/backends: cpu/);
});
