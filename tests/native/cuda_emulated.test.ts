/**
 * Device "cuda" from TypeScript, on the CUDA emulator: the addon `bun run build:native:sim` builds
 * into build-sim-addon/ (the kernels of native/src/cuda run on the emulator of native/src/cuda_sim,
 * sanitizers off) serves it in child processes started with REVENANT_ADDON naming it. There:
 * - tests/native/device.test.ts passes with its GPU side running;
 * - deviceInfo reports the emulated sm_90 part, and a Llama model on "cuda" (tensor-core GEMM and
 *   flash attention, the default) scores, decodes and updates as the same model on "cpu";
 * - a short PPO job (GAE, critic, reference, KL) with the actor on "cuda" gives the CPU job's
 *   metrics, step by step;
 * - REVENANT_CUDA_TENSOR_CORES other than 0 or 1 is refused, naming it.
 * Skipped, saying how to build it, when the emulated addon is absent. The emulator is slow: sizes
 * are tiny.
 */
import { describe, expect, test } from "bun:test";
import { existsSync } from "node:fs";
import { join } from "node:path";
import type { DeviceInfo } from "../../native/types.ts";

const ROOT = join(import.meta.dir, "..", "..");
const SIM_ADDON = join(ROOT, "build-sim-addon", "Release", "revenant.node");
const FIXTURE = join(import.meta.dir, "fixtures", "emulated_cuda.ts");
const built = existsSync(SIM_ADDON);
if (!built) console.log(`[emulated CUDA tests skipped] ${SIM_ADDON} not built; build it with: bun run build:native:sim`);

/** Runs `args` under Bun with the emulated addon; exit status and output. */
async function withSimAddon(args: string[], env: Record<string, string> = {}) {
  const proc = Bun.spawn([process.execPath, ...args], {
    cwd: ROOT, stdout: "pipe", stderr: "pipe", env: { ...process.env, REVENANT_ADDON: SIM_ADDON, ...env },
  });
  const [code, stdout, stderr] = await Promise.all([proc.exited, new Response(proc.stdout).text(), new Response(proc.stderr).text()]);
  return { code, stdout, stderr };
}

async function fixture<T>(args: string[], env: Record<string, string> = {}): Promise<T> {
  const r = await withSimAddon([FIXTURE, ...args], env);
  expect(r.code, r.stderr).toBe(0);
  return JSON.parse(r.stdout.trim().split("\n").at(-1)!) as T;
}

/** max |a - b| / max(1, max |b|): the native tests' scaled error. */
function scaledError(a: ArrayLike<number>, b: ArrayLike<number>): number {
  expect(a.length).toBe(b.length);
  let scale = 1, err = 0;
  for (let i = 0; i < b.length; i++) scale = Math.max(scale, Math.abs(b[i]!));
  for (let i = 0; i < b.length; i++) err = Math.max(err, Math.abs(a[i]! - b[i]!));
  return err / scale;
}

interface Run { backend: string; device: string; logprobs: number[]; tokens: number[]; gradNorm: number; after: number[] }
type Rows = Record<string, number>[];

describe.skipIf(!built)("device cuda on the emulated addon", () => {
  test("tests/native/device.test.ts passes with its GPU side running", async () => {
    const r = await withSimAddon(["test", "tests/native/device.test.ts"]);
    const out = r.stdout + r.stderr;
    expect(r.code, out).toBe(0);
    expect(out).toContain("(pass) cuda and cuda:N > cuda and cuda:0 run on device 0");
    expect(out).toContain("(pass) a lost device (sticky CUDA error) ends the process > CUDA: a kernel that really faults");
    expect(out).toContain("(skip) cuda and cuda:N > fail loudly without a usable device");
  }, 120_000);

  // Tolerances (native/test/cuda_tests.cc states them): the tensor-core GEMM rounds operands to
  // bf16 (2^-8), ~1e-2 on the log-probs of a 2-layer model, 3e-2 allowed; the gradient norm alike.
  // Greedy tokens: identical unless two logits are within that error (none are at this seed).
  test("deviceInfo reports the emulated sm_90 part; a Llama model on cuda computes what it computes on cpu", async () => {
    const { info, cpu, cuda } = await fixture<{ info: DeviceInfo; cpu: Run; cuda: Run }>(["probe"]);
    expect(info.backends).toEqual(["cpu", "cuda"]);
    expect(info.cuda).toMatchObject({ compiled: true, usable: true, reason: null, deviceCount: 1 });
    expect(info.cuda.device!.computeCapability).toBe("9.0");
    expect(info.cuda.device!.name).toContain("emulat");
    expect([cuda.backend, cuda.device, cpu.backend]).toEqual(["cuda", "cuda:0", "cpu"]);
    expect(scaledError(cuda.logprobs, cpu.logprobs)).toBeLessThan(3e-2);
    expect(cuda.tokens).toEqual(cpu.tokens);
    expect(Math.abs(cuda.gradNorm - cpu.gradNorm) / cpu.gradNorm).toBeLessThan(3e-2);
    expect(scaledError(cuda.after, cpu.after)).toBeLessThan(3e-2);
    expect(scaledError(cuda.after, cuda.logprobs)).toBeGreaterThan(1e-3); // the step moved the model
  }, 120_000);

  test("REVENANT_CUDA_TENSOR_CORES takes 0 or 1 (default); anything else is refused naming it", async () => {
    for (const value of ["0", "1"]) expect((await fixture<{ error: string | null }>(["create"], { REVENANT_CUDA_TENSOR_CORES: value })).error).toBeNull();
    const { error } = await fixture<{ error: string | null }>(["create"], { REVENANT_CUDA_TENSOR_CORES: "yes" });
    expect(error).toContain('REVENANT_CUDA_TENSOR_CORES must be 1 (tensor-core GEMM and flash attention, the default) or 0 (the fp32 kernels), got "yes"');
  }, 60_000);

  // Both jobs draw their tokens with the same seeds, and a draw changes only when its uniform falls
  // within the log-probs' error of a bucket edge; at this seed none does on either path, so the
  // rollouts, rewards and the critic's metrics (on the CPU in both jobs) must be the same numbers,
  // and the actor's must agree within what its log-probs carry:
  // - fp32 kernels (REVENANT_CUDA_TENSOR_CORES=0): ops agree with the CPU's to ~1e-6 relative, so
  //   1e-4 relative, plus 1e-6 absolute for ppo_kl and the KL loss, means of differences of nearly
  //   equal log-probs (~3 absolute) whose relative error is not bounded;
  // - tensor-core GEMM and flash attention (the default): bf16 operands put ~1e-5 absolute on these
  //   log-probs (measured 4e-5 scaled in the probe above), so 1e-2 relative plus 1e-4 absolute.
  const ROLLOUT = ["critic/score/mean", "response_length/mean", "critic/advantages/mean", "critic/returns/mean",
    "critic/values/mean", "critic/vf_loss", "critic/grad_norm"];
  const ACTOR = ["actor/pg_loss", "actor/entropy", "actor/kl_loss", "actor/ppo_kl", "actor/pg_clipfrac", "actor/grad_norm"];
  const JOBS: { path: string; env: Record<string, string>; rel: number; abs: number }[] = [
    { path: "fp32 kernels", env: { REVENANT_CUDA_TENSOR_CORES: "0" }, rel: 1e-4, abs: 1e-6 },
    { path: "tensor-core GEMM and flash attention", env: {}, rel: 1e-2, abs: 1e-4 },
  ];
  let cpuRows: Promise<Rows> | undefined;
  for (const job of JOBS) {
    test(`a short PPO job with the actor on cuda (${job.path}) gives the CPU job's metrics, step by step`, async () => {
      cpuRows ??= fixture<{ rows: Rows }>(["job", "cpu"]).then((r) => r.rows);
      const cpu = await cpuRows;
      const cuda = (await fixture<{ rows: Rows }>(["job", "cuda"], job.env)).rows;
      expect(cpu.length).toBe(3);
      expect(cuda.length).toBe(cpu.length);
      for (const [i, row] of cpu.entries()) {
        for (const key of [...ROLLOUT, ...ACTOR]) {
          const a = cuda[i]![key], b = row[key];
          expect(typeof b, `step ${i + 1}: ${key} missing`).toBe("number");
          const tol = ROLLOUT.includes(key) ? 0 : job.rel * Math.abs(b!) + job.abs;
          expect(Math.abs(a! - b!), `step ${i + 1}: ${key} cuda ${a} vs cpu ${b}`).toBeLessThanOrEqual(tol);
        }
      }
    }, 300_000);
  }
});
