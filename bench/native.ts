/**
 * Native compute benchmark: `bun bench/native.ts`.
 *
 * Prints, side by side in one run:
 *  - matrix-product GFLOP/s at the default model's shapes: our blocked kernel, OpenBLAS sgemm,
 *    a pure-JavaScript loop, and the machine's estimated peak; with all threads and with one
 *    (the one-thread table comes from a child process, since the thread count is fixed per process);
 *  - rollout tokens/s and policy-step samples/s for the default model on the CPU.
 * The machine may be shared, so each kernel runs in several short alternating rounds and its best
 * round is reported.
 */
import { readFileSync } from "node:fs";
import { loadNative } from "../native/loader.ts";
import { DEFAULT_MODEL_CONFIG, PolicyModel } from "../native/policy_model.ts";
import { peakEstimate } from "./cpu_peak.ts";

const addon = loadNative();
const info = addon.deviceInfo();
const matmulOnly = process.argv.includes("--matmul-only");

/** The default model's matrix products: [name, M, N, K, transA, transB]. B=64 rows of T=32 tokens. */
const C = DEFAULT_MODEL_CONFIG.width;
const BT = 64 * DEFAULT_MODEL_CONFIG.context;
const SHAPES: Array<[string, number, number, number, boolean, boolean]> = [
  ["qkv forward", BT, 3 * C, C, false, true],
  ["mlp fc forward", BT, 4 * C, C, false, true],
  ["mlp proj forward", BT, C, 4 * C, false, true],
  ["mlp fc dInput", BT, C, 4 * C, false, false],
  ["mlp fc dWeight", 4 * C, C, BT, true, false],
  ["lm head forward", BT, DEFAULT_MODEL_CONFIG.vocab, C, false, true],
  ["decode qkv (64 rows)", 64, 3 * C, C, false, true],
];

/** Naive i-k-j loop over Float32Arrays: what the compute would cost without native code. */
function jsMatmul(m: number, n: number, k: number, seconds: number): number {
  const a = new Float32Array(m * k).map((_, i) => ((i * 7919) % 997) / 997 - 0.5);
  const b = new Float32Array(k * n).map((_, i) => ((i * 104729) % 991) / 991 - 0.5);
  const c = new Float32Array(m * n);
  const t0 = performance.now();
  let iters = 0;
  do {
    c.fill(0);
    for (let i = 0; i < m; i++) {
      for (let p = 0; p < k; p++) {
        const av = a[i * k + p]!;
        const row = p * n;
        const out = i * n;
        for (let j = 0; j < n; j++) c[out + j]! += av * b[row + j]!;
      }
    }
    iters++;
  } while (performance.now() - t0 < seconds * 1000);
  return (2 * m * n * k * iters) / ((performance.now() - t0) / 1000) / 1e9;
}

function matmulTable(): void {
  const blas = info.blas.linked;
  const peak = peakEstimate(addon, info.threads);
  console.log(`\nMatrix products, ${info.threads} thread(s), GFLOP/s (best of 5 alternating rounds):`);
  console.log(`peak estimate: ${peak.gflops.toFixed(0)} GFLOP/s = ${peak.how}`);
  const rows: string[][] = [["shape", "M x N x K", "ours", "OpenBLAS", "ours/BLAS", "JS", "% of peak (ours)"]];
  for (const [name, m, n, k, transA, transB] of SHAPES) {
    let own = 0;
    let ref = 0;
    for (let round = 0; round < 5; round++) {
      own = Math.max(own, addon.benchMatmul({ m, n, k, transA, transB, impl: "own", seconds: 0.05 })!.gflops);
      if (blas) ref = Math.max(ref, addon.benchMatmul({ m, n, k, transA, transB, impl: "blas", seconds: 0.05 })!.gflops);
    }
    const js = matmulOnly ? Number.NaN : jsMatmul(m, n, k, 0.15);
    rows.push([
      name,
      `${m} x ${n} x ${k}`,
      own.toFixed(1),
      blas ? ref.toFixed(1) : "n/a",
      blas ? `${((100 * own) / ref).toFixed(0)}%` : "n/a",
      matmulOnly ? "-" : js.toFixed(2),
      `${((100 * own) / peak.gflops).toFixed(0)}%`,
    ]);
  }
  printTable(rows);
}

async function modelThroughput(): Promise<void> {
  const m = new PolicyModel({ ...DEFAULT_MODEL_CONFIG, seed: 1 }, { device: "cpu" });
  const prompts = Array.from({ length: 64 }, (_, i) => [1 + (i % 9), 2, 3, 4]);
  const maxNewTokens = DEFAULT_MODEL_CONFIG.context - 4;
  await m.generate(prompts, { maxNewTokens, seed: 0 });
  let t0 = performance.now();
  let tokens = 0;
  for (let i = 0; performance.now() - t0 < 1500; i++) {
    const g = await m.generate(prompts, { maxNewTokens, seed: i });
    tokens += g.lengths.reduce((a, b) => a + b, 0);
  }
  const genRate = tokens / ((performance.now() - t0) / 1000);

  const T = DEFAULT_MODEL_CONFIG.context;
  const n = 64 * T;
  const tokensArr = new Int32Array(n).map((_, i) => (i * 7) % DEFAULT_MODEL_CONFIG.vocab);
  const mask = new Float32Array(n).map((_, i) => (i % T >= 4 ? 1 : 0));
  const batch = { tokens: tokensArr, mask, batch: 64, seqLen: T, advantages: mask.map((x, i) => x * ((i % 3) - 1)), oldLogprobs: mask.map((x) => -2.7 * x) };
  await m.policyStep(batch);
  t0 = performance.now();
  let samples = 0;
  while (performance.now() - t0 < 1500) {
    await m.policyStep(batch);
    samples += 64;
  }
  const stepRate = samples / ((performance.now() - t0) / 1000);
  t0 = performance.now();
  let lpRows = 0;
  while (performance.now() - t0 < 1000) {
    await m.logprobs(batch);
    lpRows += 64;
  }
  const lpRate = lpRows / ((performance.now() - t0) / 1000);
  const cfg = DEFAULT_MODEL_CONFIG;
  console.log(
    `\nDefault model on CPU (vocab ${cfg.vocab}, context ${cfg.context}, width ${cfg.width}, layers ${cfg.layers}, ` +
      `heads ${cfg.heads}; ${m.numParams} parameters; ${info.threads} threads):`,
  );
  printTable([
    ["call", "shape", "throughput"],
    ["generate (rollout)", `64 prompts x ${maxNewTokens} new tokens`, `${genRate.toFixed(0)} tokens/s`],
    ["policyStep", `64 x ${T} tokens`, `${stepRate.toFixed(0)} samples/s (${((stepRate * (T - 4)) / 1000).toFixed(1)}k response tokens/s)`],
    ["logprobs", `64 x ${T} tokens`, `${lpRate.toFixed(0)} samples/s`],
  ]);
  m.dispose();
}

function printTable(rows: string[][]): void {
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => r[c]!.length)));
  for (const [i, r] of rows.entries()) {
    console.log(r.map((cell, c) => (c < 2 ? cell.padEnd(widths[c]!) : cell.padStart(widths[c]!))).join("  "));
    if (i === 0) console.log(widths.map((w) => "-".repeat(w)).join("  "));
  }
}

if (matmulOnly) {
  matmulTable();
} else {
  const cpu = /^model name\s*:\s*(.*)$/m.exec(readFileSync("/proc/cpuinfo", "utf8"))?.[1] ?? "unknown CPU";
  console.log(`revenant native bench: ${cpu}, ${info.hardwareThreads} hardware threads, BLAS ${info.blas.vendor}`);
  console.log(`CUDA: ${info.cuda.usable ? info.cuda.device?.name : `not used (${info.cuda.reason})`}`);
  matmulTable();
  if (info.threads > 1) {
    const child = Bun.spawnSync([process.execPath, import.meta.path, "--matmul-only"], {
      env: { ...process.env, REVENANT_NUM_THREADS: "1" },
    });
    process.stdout.write(child.stdout.toString());
  }
  await modelThroughput();
}
