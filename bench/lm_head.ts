/**
 * The fused LM head at a real vocabulary, beside PyTorch: `bun bench/lm_head.ts [--seconds N]`.
 *
 * Shape: Qwen's vocabulary (151,936 ids), width 64, one llama layer, B x T = 32 x 128 tokens.
 *  - Revenant, in a child process of its own (so its peak RSS is its own): `logprobs` (best of 3)
 *    then one `policyStep`, and the process's peak RSS (VmHWM) after both;
 *  - PyTorch (Debian's python3-torch, /usr/bin/python3), same thread count: the unfused
 *    `log_softmax(linear(x)).gather(targets)` on x [4096, 64] and W [151936, 64] (best of 3),
 *    and its peak RSS;
 * and prints each figure beside its target: peak RSS <= 1 GB; logprobs time <= PyTorch's (the
 * ratio PyTorch / Revenant, >= 1 meets it).
 *
 * The whole run stops within --seconds (default 600): each child runs under that deadline and is
 * killed (SIGKILL) when it passes, and what did not finish is reported as such.
 */
import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { PolicyModel } from "../native/policy_model.ts";

const SHAPE = { vocab: 151_936, width: 64, layers: 1, heads: 4, B: 32, T: 128 };
const THREADS = Number(process.env.REVENANT_NUM_THREADS ?? 2);
const RSS_TARGET = 1e9;

/** The process's peak resident set (VmHWM), bytes. */
function peakRss(): number {
  const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync("/proc/self/status", "utf8"));
  return m ? Number(m[1]) * 1024 : NaN;
}

/** Revenant's side, run in a child: logprobs (best of 3) and one policyStep, then the peak RSS. */
async function child(): Promise<void> {
  const { vocab, width, layers, heads, B, T } = SHAPE;
  const model = new PolicyModel({ arch: "llama", vocab, context: T, width, layers, heads, seed: 1 }, { device: "cpu", threads: THREADS });
  let s = 0x9e3779b9;
  const tokens = new Int32Array(B * T).map(() => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) % vocab));
  const mask = new Float32Array(B * T).fill(1);
  const batch = { tokens, mask, batch: B, seqLen: T };
  let best = Infinity;
  let lp: Float32Array = new Float32Array(0);
  for (let r = 0; r < 3; r++) {
    const t = performance.now();
    lp = await model.logprobs(batch);
    best = Math.min(best, (performance.now() - t) / 1000);
  }
  const t = performance.now();
  await model.policyStep({ ...batch, advantages: new Float32Array(B * T).fill(1), oldLogprobs: lp });
  const step = (performance.now() - t) / 1000;
  console.log(JSON.stringify({ logprobsS: best, policyStepS: step, peakRss: peakRss() }));
}

const TORCH = `
import json, resource, sys, time
import torch
a = json.loads(sys.argv[1])
torch.set_num_threads(a["threads"])
torch.manual_seed(0)
N, C, V = a["N"], a["C"], a["V"]
x = torch.randn(N, C)
w = torch.randn(V, C) * 0.02
t = torch.randint(0, V, (N, 1))
best = float("inf")
with torch.no_grad():
    for _ in range(3):
        s = time.perf_counter()
        lp = torch.log_softmax(torch.nn.functional.linear(x, w), dim=-1).gather(1, t)
        best = min(best, time.perf_counter() - s)
print(json.dumps({"seconds": best, "peakRss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024}))
`;

/** Runs a child to its last JSON line, killed (SIGKILL) past `seconds`; an error string otherwise. */
function run(cmd: string, args: string[], seconds: number, env: Record<string, string | undefined> = process.env): Record<string, number> | string {
  const r = spawnSync(cmd, args, { encoding: "utf8", timeout: Math.max(1000, Math.floor(seconds * 1000)), killSignal: "SIGKILL", env, maxBuffer: 1 << 24 });
  if (r.error && (r.error as NodeJS.ErrnoException).code === "ETIMEDOUT") return `killed after ${seconds.toFixed(0)} s`;
  if (r.error) return r.error.message;
  if (r.status !== 0) return `exit ${r.status ?? r.signal}: ${(r.stderr || r.stdout).trim().split("\n").slice(-2).join(" ")}`;
  const line = r.stdout.trim().split("\n").pop() ?? "";
  try {
    return JSON.parse(line) as Record<string, number>;
  } catch {
    return `no result (${line.slice(0, 200)})`;
  }
}

async function main(): Promise<void> {
  const at = process.argv.indexOf("--seconds");
  const budget = at > 0 ? Number(process.argv[at + 1]) : 600;
  const deadline = Date.now() + budget * 1000;
  const left = () => (deadline - Date.now()) / 1000;
  const { vocab, width, B, T } = SHAPE;
  console.log(`fused LM head: vocab ${vocab}, width ${width}, 1 layer, B x T = ${B} x ${T}, ${THREADS} threads, stops within ${budget} s`);
  const ours = run(process.execPath, [import.meta.path, "--child"], left() * 0.6, { ...process.env, REVENANT_NUM_THREADS: String(THREADS) });
  const torch = run("/usr/bin/python3", ["-c", TORCH, JSON.stringify({ threads: THREADS, N: B * T, C: width, V: vocab })], left());
  const gb = (b: number) => `${(b / 1e9).toFixed(2)} GB`;
  console.log("| figure | measured | target | |");
  console.log("| --- | --- | --- | --- |");
  if (typeof ours === "string") console.log(`| Revenant | ${ours} | | |`);
  else {
    console.log(`| peak RSS, logprobs then one policyStep | ${gb(ours.peakRss!)} | ≤ 1 GB | ${ours.peakRss! <= RSS_TARGET ? "met" : "missed"} |`);
    console.log(`| Revenant logprobs (whole model) | ${ours.logprobsS!.toFixed(3)} s | | |`);
    console.log(`| Revenant policyStep (whole model, AdamW) | ${ours.policyStepS!.toFixed(3)} s | | |`);
  }
  if (typeof torch === "string") console.log(`| PyTorch log_softmax(linear(x)) + gather | ${torch} | | |`);
  else {
    console.log(`| PyTorch log_softmax(linear(x)) + gather | ${torch.seconds!.toFixed(3)} s (peak RSS ${gb(torch.peakRss!)}) | | |`);
    if (typeof ours !== "string") {
      const ratio = torch.seconds! / ours.logprobsS!;
      console.log(`| PyTorch time / Revenant logprobs time | ${ratio.toFixed(2)}x | ≥ 1 (time ≤ PyTorch's) | ${ratio >= 1 ? "met" : "missed"} |`);
    }
  }
  console.log(`load average ${readFileSync("/proc/loadavg", "utf8").split(" ").slice(0, 3).join(" ")}`);
}

if (process.argv.includes("--child")) await child();
else await main();
