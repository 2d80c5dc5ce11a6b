/**
 * What this machine's CPU can do at best, for benchmarks that report a fraction of it:
 *  - `peakEstimate`: FP32 GFLOP/s from cores x measured clock x FLOP/cycle;
 *  - `bestSgemm`: the best GFLOP/s a large square sgemm reaches (ours or OpenBLAS), an achieved peak;
 *  - `copyBandwidth`: memory bandwidth of a plain copy (STREAM convention: bytes read + written),
 *    one copy per thread in parallel, over arrays far larger than the last-level cache.
 */
import { readFileSync } from "node:fs";
import type { NativeAddon } from "../native/types.ts";

/**
 * Peak FP32 GFLOP/s: cores x clock x FLOP/cycle (FMA pipes x fp32 lanes x 2). The clock is
 * measured (a dependent-add chain runs one add per cycle), since virtual machines report the base
 * clock in /proc/cpuinfo while the cores run at turbo.
 */
export function peakEstimate(addon: NativeAddon, threads: number): { gflops: number; how: string } {
  let text = "";
  try {
    text = readFileSync("/proc/cpuinfo", "utf8");
  } catch {
    return { gflops: Number.NaN, how: "unknown (/proc/cpuinfo unreadable)" };
  }
  const cpuinfoMhz = Number(/^cpu MHz\s*:\s*([\d.]+)/m.exec(text)?.[1] ?? Number.NaN);
  let ghz = 0;
  for (let i = 0; i < 3; i++) ghz = Math.max(ghz, addon.measureClockGHz());
  const measured = Number.isFinite(ghz);
  const mhz = measured ? ghz * 1000 : cpuinfoMhz;
  const flags = /^flags\s*:(.*)$/m.exec(text)?.[1] ?? "";
  const amd = /AuthenticAMD/.test(text);
  const family = Number(/^cpu family\s*:\s*(\d+)/m.exec(text)?.[1] ?? 0);
  const has = (f: string) => new RegExp(`\\b${f}\\b`).test(flags);
  // Two FMA pipes per core on every recent x86 core. Lanes: AMD before Zen 5 (family 26) runs
  // AVX-512 on 256-bit units; Intel server cores with AVX-512 have two 512-bit FMA units.
  let lanes = 4;
  if (has("avx512f") && !(amd && family < 26)) lanes = 16;
  else if (has("avx2") && has("fma")) lanes = 8;
  const perCycle = 2 * lanes * 2;
  const gflops = (threads * mhz * perCycle) / 1000;
  return {
    gflops,
    how:
      `${threads} core(s) x ${(mhz / 1000).toFixed(2)} GHz (${measured ? `measured; cpuinfo says ${(cpuinfoMhz / 1000).toFixed(2)}` : "cpuinfo"}) ` +
      `x ${perCycle} FLOP/cycle (2 FMA pipes x ${lanes} fp32 lanes x 2${amd && has("avx512f") && family < 26 ? ", AVX-512 on 256-bit units" : ""})`,
  };
}

/** Best GFLOP/s of a 1024^3 sgemm over a few rounds, ours and OpenBLAS (when linked). */
export function bestSgemm(addon: NativeAddon): { gflops: number; kernel: string } {
  let best = { gflops: 0, kernel: "" };
  for (let round = 0; round < 3; round++)
    for (const impl of ["own", "blas"] as const) {
      const r = addon.benchMatmul({ m: 1024, n: 1024, k: 1024, transA: false, transB: true, impl, seconds: 0.3 });
      if (r && r.gflops > best.gflops) best = { gflops: r.gflops, kernel: r.kernel };
    }
  return best;
}

/**
 * GB/s of `threads` simultaneous copies of 256 MiB each (one Worker per thread; TypedArray.set is
 * a memmove), counting bytes read plus bytes written; the best of a few rounds.
 */
export async function copyBandwidth(threads: number): Promise<number> {
  const workers = Array.from({ length: threads }, () => new Worker(new URL("./copy_worker.ts", import.meta.url)));
  let best = 0;
  try {
    for (let round = 0; round < 3; round++) {
      const runs = workers.map(
        (w) =>
          new Promise<{ bytes: number; seconds: number }>((resolve) => {
            w.onmessage = (e: MessageEvent) => resolve(e.data as { bytes: number; seconds: number });
            w.postMessage({ mib: 256, repeats: 4 });
          }),
      );
      const results = await Promise.all(runs);
      const seconds = Math.max(...results.map((r) => r.seconds));
      best = Math.max(best, results.reduce((s, r) => s + r.bytes, 0) / seconds / 1e9);
    }
  } finally {
    for (const w of workers) w.terminate();
  }
  return best;
}
