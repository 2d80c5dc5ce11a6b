/**
 * Generation and policy-step throughput on the CPU, beside PyTorch CPU: `bun bench/decode.ts`.
 *
 * Prints one markdown table, every figure from this run:
 *  - decode tokens/s (16 rows) of a ~20M-parameter Llama-style model and of the shipped default
 *    model: end to end (`generate`, prefill included) and per decoding step (the time of
 *    `generate` with N new tokens minus that with 1, over the N - 1 steps), against the bound the
 *    step's work implies: max(FLOPs / peak, bytes streamed / memory bandwidth), summed over steps;
 *  - the bytes a decoding step streams (weights once, the KV caches once) per step and per token,
 *    the GB/s that makes at our decode rate, and the % of the bandwidth bound alone (target ≥ 50%
 *    at the 20M and SmolLM2-135M shapes);
 *  - policyStep GFLOP/s (matrix products and attention, forward + backward = 3x forward) against
 *    the FP32 peak (target ≥ 70%);
 *  - PyTorch's figures for the same shapes at the same thread count (bench/decode_torch.py, run
 *    with /usr/bin/python3; skipped with the reason when torch is missing), and ours / PyTorch.
 * Peak: cores x measured clock x FLOP/cycle (bench/cpu_peak.ts), with the best sgemm alongside;
 * bandwidth: parallel copies of 256 MiB (read + written bytes), counted only for steps whose bytes
 * exceed the last-level cache. Each timing is the best of a few rounds (the machine may be shared).
 */
import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { loadNative } from "../native/loader.ts";
import { defaultIntermediate } from "../native/model_limits.ts";
import { DEFAULT_MODEL_CONFIG, PolicyModel, type PolicyModelConfig } from "../native/policy_model.ts";
import { bestSgemm, copyBandwidth, peakEstimate } from "./cpu_peak.ts";

const ROUNDS = 3;
/** The PyTorch child is killed past this many seconds. */
const TORCH_TIMEOUT_S = 900;

interface Spec {
  name: string;
  config: PolicyModelConfig;
  decode: { rows: number; prompt: number; newTokens: number };
  policy: { batch: number; seqLen: number } | null;
}

const ALL_SPECS: Spec[] = [
  {
    name: "llama ~20M",
    config: { arch: "llama", vocab: 8192, context: 256, width: 512, layers: 4, heads: 8, kvHeads: 4, intermediate: 1408 },
    decode: { rows: 16, prompt: 32, newTokens: 128 },
    policy: { batch: 8, seqLen: 128 },
  },
  {
    name: "SmolLM2-135M shape",
    config: { arch: "llama", vocab: 49152, context: 128, width: 576, layers: 30, heads: 9, kvHeads: 3, intermediate: 1536, tiedEmbeddings: true },
    decode: { rows: 16, prompt: 32, newTokens: 64 },
    policy: { batch: 8, seqLen: 128 },
  },
  {
    name: "shipped default",
    config: { ...DEFAULT_MODEL_CONFIG },
    decode: { rows: 16, prompt: 4, newTokens: DEFAULT_MODEL_CONFIG.context - 4 },
    policy: null,
  },
];

// `--only 20M,135M`: a subset of the models, by a word of their names.
const only = process.argv.includes("--only") ? process.argv[process.argv.indexOf("--only") + 1]!.split(",") : null;
const SPECS = only ? ALL_SPECS.filter((s) => only.some((w) => s.name.includes(w))) : ALL_SPECS;

/** Sizes the cost model needs, from the config as the native model resolves it. */
function dims(c: PolicyModelConfig) {
  const llama = c.arch === "llama";
  const C = c.width, kvC = (C / c.heads) * (c.kvHeads ?? c.heads);
  const I = c.intermediate ?? defaultIntermediate(llama ? "llama" : "gpt2", C);
  // Weights of the matrix products one token goes through (embedding rows are gathered, not multiplied).
  const perLayer = C * (C + 2 * kvC) + C * C + C * (llama ? 2 * I : I) + I * C;
  return { C, kvC, L: c.layers, matrixParams: c.layers * perLayer + c.vocab * C };
}

/** FLOPs and bytes of one decoding step of `rows` rows whose cache holds `len` positions. */
function stepCost(c: PolicyModelConfig, rows: number, len: number) {
  const d = dims(c);
  const attFlops = rows * d.L * 4 * d.C * len;  // q.k and att.v over the cache, every query head
  return {
    flops: 2 * rows * d.matrixParams + attFlops,
    bytes: 4 * d.matrixParams + 4 * rows * d.L * 2 * d.kvC * len,  // weights once, the caches once
  };
}

/** Bytes of the last-level cache (0 when unknown): a step whose bytes fit there is not bound by DRAM. */
function lastLevelCacheBytes(): number {
  try {
    const text = readFileSync("/sys/devices/system/cpu/cpu0/cache/index3/size", "utf8").trim();
    const m = /^(\d+)([KMG]?)/.exec(text);
    return m ? Number(m[1]) * ({ "": 1, K: 1024, M: 1024 ** 2, G: 1024 ** 3 } as Record<string, number>)[m[2]!]! : 0;
  } catch {
    return 0;
  }
}

/**
 * Seconds the decoding steps of a generate call cannot beat (steps after the first token). The
 * memory term counts only for steps whose bytes exceed the last-level cache: a model that fits
 * there is read from cache, faster than the copy bandwidth, so only its compute bounds it.
 */
function decodeBound(s: Spec, peakGflops: number, gbps: number, llc: number): { seconds: number; binds: string; memoryS: number; bytes: number } {
  let compute = 0;
  let memory = 0;
  let seconds = 0;
  let bytes = 0;
  for (let t = 1; t < s.decode.newTokens; t++) {
    const cost = stepCost(s.config, s.decode.rows, s.decode.prompt + t + 1);
    const fc = cost.flops / (peakGflops * 1e9), fm = cost.bytes > llc ? cost.bytes / (gbps * 1e9) : 0;
    compute += fc;
    memory += fm;
    bytes += cost.bytes;
    seconds += Math.max(fc, fm);
  }
  // memoryS: the bandwidth bound alone (every step's bytes at the copy bandwidth, cache or not).
  return { seconds, binds: memory > compute ? "memory" : "compute", memoryS: bytes / (gbps * 1e9), bytes };
}

/** FLOPs of one policy step: forward (matrix products + causal attention) times 3. */
function policyFlops(c: PolicyModelConfig, B: number, T: number): number {
  const d = dims(c);
  const forward = B * T * (2 * d.matrixParams + d.L * 2 * d.C * (T + 1));
  return 3 * forward;
}

async function bestOf(rounds: number, fn: () => Promise<unknown>): Promise<number> {
  let best = Infinity;
  for (let i = 0; i < rounds; i++) {
    const t0 = performance.now();
    await fn();
    best = Math.min(best, (performance.now() - t0) / 1000);
  }
  return best;
}

interface Timing {
  params: number;
  generateS: number;
  prefillS: number;
  policyStepS?: number;
}

async function ours(s: Spec): Promise<Timing> {
  const m = new PolicyModel({ ...s.config, seed: 1 }, { device: "cpu" });
  const prompts = Array.from({ length: s.decode.rows }, (_, r) =>
    Array.from({ length: s.decode.prompt }, (_, i) => (r * 31 + i * 7 + 1) % s.config.vocab),
  );
  const gen = (n: number, seed: number) => m.generate(prompts, { maxNewTokens: n, temperature: 1, seed });
  await gen(s.decode.newTokens, 0);  // warm-up: allocates the caches and scratch
  const t: Timing = {
    params: m.numParams,
    generateS: await bestOf(ROUNDS, () => gen(s.decode.newTokens, 1)),
    prefillS: await bestOf(ROUNDS, () => gen(1, 1)),
  };
  if (s.policy) {
    const { batch, seqLen: T } = s.policy;
    const n = batch * T;
    const tokens = new Int32Array(n).map((_, i) => (i * 7919) % s.config.vocab);
    const mask = new Float32Array(n).map((_, i) => (i % T === 0 ? 0 : 1));
    const b = { tokens, mask, batch, seqLen: T, advantages: mask.map((x, i) => x * ((i % 3) - 1)), oldLogprobs: mask.map((x) => -9 * x) };
    await m.policyStep(b);
    t.policyStepS = await bestOf(Math.max(2, ROUNDS - 1), () => m.policyStep(b));
  }
  await m.dispose();
  return t;
}

/** PyTorch's timings, or the reason there are none. */
function torch(threads: number): { models: Timing[]; version: string } | string {
  const arg = JSON.stringify({ threads, rounds: ROUNDS, models: SPECS });
  // Bounded: a child that hangs (or a machine too loaded to finish) is killed, and the table
  // is printed without PyTorch's column rather than never.
  const r = spawnSync("/usr/bin/python3", [new URL("./decode_torch.py", import.meta.url).pathname, arg], {
    encoding: "utf8", timeout: TORCH_TIMEOUT_S * 1000, killSignal: "SIGKILL",
  });
  if (r.signal === "SIGKILL" || (r.error as NodeJS.ErrnoException | undefined)?.code === "ETIMEDOUT") {
    return `PyTorch skipped: its child did not finish within ${TORCH_TIMEOUT_S} s and was killed`;
  }
  if (r.error) return `PyTorch skipped: /usr/bin/python3 did not run (${r.error.message})`;
  if (r.status !== 0) {
    const why = /No module named 'torch'/.test(r.stderr) ? "torch is not installed for /usr/bin/python3" : r.stderr.trim().split("\n").pop();
    return `PyTorch skipped: ${why}`;
  }
  const out = JSON.parse(r.stdout.trim().split("\n").pop()!) as {
    torch: string;
    models: Array<{ params: number; generate_s: number; prefill_s: number; policy_step_s?: number }>;
  };
  return {
    version: out.torch,
    models: out.models.map((m) => ({ params: m.params, generateS: m.generate_s, prefillS: m.prefill_s, policyStepS: m.policy_step_s })),
  };
}

const fmt = (x: number, digits = 0) => (Number.isFinite(x) ? x.toFixed(digits) : "-");
const pct = (x: number) => (Number.isFinite(x) ? `${(100 * x).toFixed(0)}%` : "-");

async function main(): Promise<void> {
  const addon = loadNative();
  const threads = addon.deviceInfo().threads;
  const peak = peakEstimate(addon, threads);
  const sgemm = bestSgemm(addon);
  const gbps = await copyBandwidth(threads);
  const llc = lastLevelCacheBytes();
  console.log(`threads ${threads}; FP32 peak ${fmt(peak.gflops)} GFLOP/s = ${peak.how}`);
  console.log(`best sgemm 1024^3: ${fmt(sgemm.gflops, 1)} GFLOP/s (${sgemm.kernel}); copy bandwidth ${fmt(gbps, 1)} GB/s (${threads} parallel copies, read + written); last-level cache ${(llc / 2 ** 20).toFixed(0)} MiB`);
  const mine: Timing[] = [];
  for (const s of SPECS) mine.push(await ours(s));
  // `--no-torch`: our figures alone (PyTorch's side of the 135M shape takes many minutes on a loaded machine).
  const theirs = process.argv.includes("--no-torch") ? "PyTorch skipped: --no-torch" : torch(threads);
  if (typeof theirs === "string") console.log(theirs);
  else console.log(`PyTorch ${theirs.version}, torch.set_num_threads(${threads}), eager`);

  const rows: string[][] = [["model", "measure", "shape", "ours", "bound / peak", "ours / bound", "target", "PyTorch", "ours / PyTorch"]];
  for (const [i, s] of SPECS.entries()) {
    const o = mine[i]!, p = typeof theirs === "string" ? undefined : theirs.models[i];
    const { rows: R, prompt, newTokens: N } = s.decode;
    const label = `${s.name} (${(o.params / 1e6).toFixed(2)}M)`;
    const bound = decodeBound(s, peak.gflops, gbps, llc);
    const stepRate = (t: Timing) => (R * (N - 1)) / (t.generateS - t.prefillS);
    const boundRate = (R * (N - 1)) / bound.seconds;
    const e2e = (t: Timing) => (R * N) / t.generateS;
    const steps = N - 1, perStep = bound.bytes / steps;
    const stepS = (t: Timing) => t.generateS - t.prefillS;
    rows.push([label, "generate tokens/s", `${R} rows, prompt ${prompt}, ${N} new`, fmt(e2e(o)), "", "", "", p ? fmt(e2e(p)) : "-", p ? `${fmt(e2e(o) / e2e(p), 2)}x` : "-"]);
    rows.push([
      label, "decode tokens/s", `${steps} steps of ${R} rows`, fmt(stepRate(o)),
      `${fmt(boundRate)} (${bound.binds})`, pct(stepRate(o) / boundRate), "",
      p ? fmt(stepRate(p)) : "-", p ? `${fmt(stepRate(o) / stepRate(p), 2)}x` : "-",
    ]);
    // The bandwidth bound alone: each step streams the weights once and the caches once.
    rows.push([
      label, "decode GB/s streamed", `${(perStep / 2 ** 20).toFixed(1)} MiB/step, ${(perStep / R / 2 ** 20).toFixed(2)} MiB/token`,
      fmt(bound.bytes / stepS(o) / 1e9, 1), `${fmt(gbps, 1)} (bandwidth)`, pct(bound.memoryS / stepS(o)), "≥ 50%",
      p ? fmt(bound.bytes / stepS(p) / 1e9, 1) : "-", p ? `${fmt(stepS(p) / stepS(o), 2)}x` : "-",
    ]);
    if (s.policy && o.policyStepS) {
      const { batch: B, seqLen: T } = s.policy;
      const gf = policyFlops(s.config, B, T) / 1e9;
      const og = gf / o.policyStepS, pg = p?.policyStepS ? gf / p.policyStepS : Number.NaN;
      rows.push([
        label, "policyStep GFLOP/s", `${B} x ${T} tokens, ${fmt(gf, 1)} GFLOP`, fmt(og, 1),
        `${fmt(peak.gflops)} (peak)`, pct(og / peak.gflops), "≥ 70%", fmt(pg, 1), p ? `${fmt(og / pg, 2)}x` : "-",
      ]);
    }
  }
  console.log(`\n| ${rows[0]!.join(" | ")} |\n|${rows[0]!.map(() => "---").join("|")}|`);
  for (const r of rows.slice(1)) console.log(`| ${r.join(" | ")} |`);
}

await main();
