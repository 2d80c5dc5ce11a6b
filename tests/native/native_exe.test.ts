/**
 * Drives the native test executable (built with the addon): every op's backward against float64
 * finite differences, float32 against float64, the whole-model gradient check, KV-cache decoding,
 * and CUDA against CPU where a device exists.
 */
import { expect, test } from "bun:test";
import { existsSync } from "node:fs";
import { join } from "node:path";

const exe = join(import.meta.dir, "..", "..", "build", "revenant_native_test");

test("native op and model checks pass (gradient checks vs float64 finite differences)", () => {
  expect(existsSync(exe)).toBe(true);
  const run = Bun.spawnSync([exe, "ops", "model", "cuda"], { env: { ...process.env } });
  const out = run.stdout.toString();
  const failures = out.split("\n").filter((l) => l.startsWith("FAIL"));
  if (failures.length > 0 || run.exitCode !== 0) console.log(out, run.stderr.toString());
  const skip = out.split("\n").find((l) => l.startsWith("skipped:"));
  if (skip) console.log(`cuda vs cpu ${skip}`);
  expect(failures).toEqual([]);
  const summary = /^(\d+) passed, (\d+) failed$/m.exec(out);
  expect(summary).not.toBeNull();
  expect(Number(summary![2])).toBe(0);
  expect(Number(summary![1])).toBeGreaterThan(60);
  for (const op of ["embedding", "layernorm", "matmul", "attention", "gelu", "residual", "logprob"]) {
    expect(out).toMatch(new RegExp(`^ok   ${op}_backward .* vs float64 finite differences`, "m"));
  }
  expect(out).toMatch(/^ok   whole-model gradient: PPO loss/m);
  expect(out).toMatch(/^ok   whole-model gradient: value loss/m);
  expect(out).toMatch(/^ok   whole-model gradient: clipped value loss/m);
  expect(run.exitCode).toBe(0);
});
