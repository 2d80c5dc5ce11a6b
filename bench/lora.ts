/**
 * LoRA against full fine-tuning at SmolLM2-135M's shape (30 layers, width 576, 9 heads over 3
 * kv heads, SwiGLU 1536, vocabulary 49152, tied embeddings), on the CPU: each mode runs in a
 * process of its own, so its peak resident memory (VmHWM) is its own.
 *
 *   full: the policy trains every weight (weights, gradients, two AdamW moments)
 *   lora: rank-16 adapters on all seven projections; the base frozen (weights only, float32)
 *   lora-bf16: the same with the base as a BF16 folder holds it (projection matrices, the tied
 *         embedding and LM head in bfloat16, each widened to float32 scratch before its product,
 *         the head a vocabulary chunk at a time, the lookup only its rows; norms float32)
 *   ref:  the reference policy a full job also runs (a second copy of the weights, log-probs only)
 *
 * Each mode takes policy steps (or, for ref, log-probs) on one batch of B rows of T tokens and
 * reports the median time of the steps after the first, the process's peak memory, and the bytes
 * its base weights take as the model itself counts them (PolicyModel#baseBytes). A full job's
 * models are full + ref; a LoRA job's is lora alone (its reference is its own base).
 *
 *   bun bench/lora.ts [B=4] [T=64] [steps=3]
 */
import { readFileSync } from "node:fs";
import { PolicyModel, type PolicyModelConfig } from "../native/policy_model.ts";

const SMOLLM2_135M: PolicyModelConfig = {
  arch: "llama", vocab: 49152, context: 2048, width: 576, layers: 30, heads: 9, kvHeads: 3, intermediate: 1536,
  ropeTheta: 100000, normEps: 1e-5, tiedEmbeddings: true, seed: 1,
};

const peakBytes = () => Number(/^VmHWM:\s*(\d+) kB/m.exec(readFileSync("/proc/self/status", "utf8"))![1]) * 1024;

const MODES = ["full", "lora", "lora-bf16", "ref"] as const;
type Mode = (typeof MODES)[number];

async function child(mode: Mode, B: number, T: number, steps: number): Promise<void> {
  const lora = mode === "lora" ? { lora: { rank: 16 } } : mode === "lora-bf16" ? { lora: { rank: 16, bf16Base: true } } : {};
  const model = new PolicyModel({ ...SMOLLM2_135M, ...lora }, { device: "cpu" });
  const n = B * T;
  const tokens = new Int32Array(n).map((_, i) => (i * 7919) % SMOLLM2_135M.vocab);
  const mask = new Float32Array(n).map((_, i) => (i % T >= T / 2 ? 1 : 0));
  const batch = { tokens, mask, batch: B, seqLen: T };
  const old = await model.logprobs(batch);
  const times: number[] = [];
  for (let s = 0; s < steps; s++) {
    const t = performance.now();
    if (mode === "ref") await model.logprobs(batch);
    else await model.policyStep({ ...batch, advantages: new Float32Array(n).fill(1), oldLogprobs: old, refLogprobs: old }, { lr: 1e-5, klCoef: 0.01 });
    times.push((performance.now() - t) / 1000);
  }
  const later = times.slice(1).sort((a, b) => a - b);
  console.log(JSON.stringify({
    mode, params: model.numParams, trained: model.numTrained, baseBytes: model.baseBytes,
    stepS: later[Math.floor(later.length / 2)] ?? times[0], peakBytes: peakBytes(),
  }));
}

async function main(): Promise<void> {
  const [mode, ...rest] = process.argv.slice(2);
  if (mode === "--child") {
    const [m, B, T, steps] = rest;
    return child(m as Mode, Number(B), Number(T), Number(steps));
  }
  const [B = "4", T = "64", steps = "3"] = [mode, ...rest].filter((a) => a !== undefined);
  const results = {} as Record<Mode, { params: number; trained: number; baseBytes: number; stepS: number; peakBytes: number }>;
  for (const m of MODES) {
    const r = Bun.spawnSync([process.execPath, import.meta.path, "--child", m, B, T, steps], { stdout: "pipe", stderr: "inherit" });
    if (r.exitCode !== 0) throw new Error(`bench/lora.ts: mode ${m} failed (${r.exitCode})`);
    results[m] = JSON.parse(r.stdout.toString().trim().split("\n").pop()!);
  }
  const gib = (b: number) => (b / 2 ** 30).toFixed(2);
  const { full, lora, ref } = results;
  const bf16 = results["lora-bf16"];
  const job = full.peakBytes + ref.peakBytes;
  const ratio = (a: number, b: number) => (a / b).toFixed(2);
  console.log(`SmolLM2-135M shape, CPU, B=${B} T=${T}: ${full.params} weights; LoRA rank 16 on all projections trains ${lora.trained}`);
  console.log("| | full fine-tuning | LoRA r=16, float32 base | LoRA r=16, bfloat16 base | LoRA ÷ full (float32 / bfloat16 base) |");
  console.log("|---|---:|---:|---:|---:|");
  console.log(`| base weights, GiB (as the model counts them) | ${gib(full.baseBytes)} | ${gib(lora.baseBytes)} | ${gib(bf16.baseBytes)} | ${ratio(lora.baseBytes, full.baseBytes)} / ${ratio(bf16.baseBytes, full.baseBytes)} |`);
  console.log(`| actor peak memory, GiB | ${gib(full.peakBytes)} | ${gib(lora.peakBytes)} | ${gib(bf16.peakBytes)} | ${ratio(lora.peakBytes, full.peakBytes)} / ${ratio(bf16.peakBytes, full.peakBytes)} |`);
  console.log(`| actor policy step, s (median of the steps after the first) | ${full.stepS.toFixed(2)} | ${lora.stepS.toFixed(2)} | ${bf16.stepS.toFixed(2)} | ${ratio(lora.stepS, full.stepS)} / ${ratio(bf16.stepS, full.stepS)} |`);
  console.log(`| job's model memory, GiB (full: actor + ref_policy; LoRA: actor alone) | ${gib(job)} | ${gib(lora.peakBytes)} | ${gib(bf16.peakBytes)} | ${ratio(lora.peakBytes, job)} / ${ratio(bf16.peakBytes, job)} (target ≤ 0.40) |`);
}

await main();
