/**
 * PolicyModel on the CPU backend: learning (policyStep raises rewarded tokens, valueStep fits
 * returns), reproducible sampling (per seed and across thread counts), exact state round trips
 * and resumption, async behaviour, and the CUDA backend against the CPU one when a device exists.
 */
import { describe, expect, test } from "bun:test";
import { join } from "node:path";
import { loadNative } from "../../native/loader.ts";
import { DEFAULT_MODEL_CONFIG, PolicyModel } from "../../native/policy_model.ts";
import { clearFailedRows } from "../../runtime/rl/trainer/phases.ts";
import { fingerprint, model, SMALL, tokenBatch } from "./helpers.ts";

describe("PolicyModel learning", () => {
  test("policyStep on a fixed reward raises the probability of the rewarded token", async () => {
    const m = model();
    const REWARDED = 3;
    const rows = 16, promptLen = 2, newTokens = 4, seqLen = promptLen + newTokens;
    const prompts = Array.from({ length: rows }, (_, i) => Int32Array.from([i % 8, (i * 3) % 8]));
    // Probe: the mean probability of REWARDED at every response position of a fixed batch.
    const probe = tokenBatch(99, rows, seqLen, SMALL.vocab, promptLen);
    probe.tokens.fill(REWARDED);
    for (let b = 0; b < rows; b++) probe.tokens.set(prompts[b]!, b * seqLen);
    const meanProb = async () => {
      const lp = await m.logprobs(probe);
      let s = 0, n = 0;
      for (let i = 0; i < lp.length; i++) if (probe.mask[i]) (s += Math.exp(lp[i]!)), n++;
      return s / n;
    };
    const before = await meanProb();
    for (let step = 0; step < 25; step++) {
      const g = await m.generate(prompts, { maxNewTokens: newTokens, temperature: 1, seed: 1000 + step });
      const batch = { ...tokenBatch(0, rows, seqLen, SMALL.vocab, promptLen), advantages: new Float32Array(rows * seqLen), oldLogprobs: new Float32Array(rows * seqLen) };
      for (let b = 0; b < rows; b++) {
        batch.tokens.set(prompts[b]!, b * seqLen);
        for (let i = 0; i < newTokens; i++) {
          const t = b * seqLen + promptLen + i;
          batch.tokens[t] = g.tokens[b * newTokens + i]!;
          batch.oldLogprobs[t] = g.logprobs[b * newTokens + i]!;
          batch.advantages[t] = batch.tokens[t] === REWARDED ? 1 : -0.1;
        }
      }
      const stats = await m.policyStep(batch, { lr: 3e-3 });
      expect(Number.isFinite(stats.pgLoss) && Number.isFinite(stats.gradNorm)).toBe(true);
    }
    const after = await meanProb();
    console.log(`p(rewarded token): ${before.toFixed(4)} -> ${after.toFixed(4)}`);
    expect(after).toBeGreaterThan(before * 3);
    expect(after).toBeGreaterThan(0.4);
  });

  test("valueStep fits fixed returns (loss falls by 10x or more)", async () => {
    const m = model({ valueHead: true });
    const batch = tokenBatch(7, 8, 10, SMALL.vocab);
    const returns = new Float32Array(batch.tokens.length).map((_, i) => (batch.mask[i] ? (batch.tokens[i]! % 3) - 1 + 0.5 : 0));
    const oldValues = new Float32Array(returns.length);
    let first = 0, last = 0;
    for (let step = 0; step < 150; step++) {
      const s = await m.valueStep({ ...batch, returns, oldValues }, { lr: 3e-3, clipRange: 0 });
      if (step === 0) first = s.vfLoss;
      last = s.vfLoss;
    }
    console.log(`value loss: ${first.toFixed(4)} -> ${last.toFixed(5)}`);
    expect(first / last).toBeGreaterThanOrEqual(10);
  });

  test("policy and value steps report their statistics", async () => {
    const m = model({ valueHead: true });
    const b = tokenBatch(3, 4, 8, SMALL.vocab);
    const lp = await m.logprobs(b);
    const s = await m.policyStep(
      { ...b, advantages: b.mask.map((x, i) => x * (i % 2 ? 1 : -1)), oldLogprobs: lp.map((x) => x - 0.5), refLogprobs: lp },
      { klCoef: 0.1, entropyCoef: 0.01 },
    );
    for (const k of ["pgLoss", "klLoss", "entropy", "clipFrac", "approxKl", "gradNorm", "loss"] as const) {
      expect(Number.isFinite(s[k])).toBe(true);
    }
    expect(s.clipFrac).toBeGreaterThan(0); // ratios of e^0.5 are outside 1 ± 0.2
    expect(s.entropy).toBeGreaterThan(0);
    expect(s.approxKl).toBeCloseTo(-0.5, 5);
    const v = await m.valueStep({ ...b, returns: b.mask, oldValues: new Float32Array(b.mask.length) });
    expect(Number.isFinite(v.vfLoss) && Number.isFinite(v.gradNorm)).toBe(true);
    expect(m.step).toBe(2);
  });
});

/**
 * Calls `place(i, c)` for each scored token i of `mask`, the k-th taking cases[k % cases.length],
 * and checks every case came up equally often, so a mean over the tokens is the cases' mean.
 */
function placeCases<C>(mask: Float32Array, cases: C[], place: (i: number, c: C) => void): void {
  let k = 0;
  for (let i = 0; i < mask.length; i++) if (mask[i]) place(i, cases[k++ % cases.length]!);
  expect(k % cases.length).toBe(0);
}

describe("clipped policy loss (clipRatio 0.2)", () => {
  // Old log-probs sit at fixed offsets from the model's own, so each ratio r = e^(log π − log π_old)
  // is known, and the loss mean(max(−A·r, −A·clip(r, 0.8, 1.2))) is worked by hand.
  type Case = { logRatio: number; adv: number };
  const R_UP = Math.exp(0.5), R_DOWN = Math.exp(-0.5); // 1.6487..., 0.6065...
  /** Out of the trust region in the direction the advantage rewards: the clipped term wins. */
  const CLIPPED_UP: Case = { logRatio: 0.5, adv: 1 }; // −1.6487 vs −1.2: loss −1.2
  const CLIPPED_DOWN: Case = { logRatio: -0.5, adv: -1 }; // 0.6065 vs 0.8: loss 0.8
  /** Out of the region the other way: the unclipped term is the larger, the gradient flows. */
  const UNCLIPPED_UP: Case = { logRatio: 0.5, adv: -1 }; // 1.6487 vs 1.2: loss 1.6487
  const UNCLIPPED_DOWN: Case = { logRatio: -0.5, adv: 1 }; // −0.6065 vs −0.8: loss −0.6065

  async function placed(cases: Case[]) {
    const m = model();
    const b = tokenBatch(6, 2, 6, SMALL.vocab);
    const lp = await m.logprobs(b);
    const advantages = new Float32Array(lp.length), oldLogprobs = new Float32Array(lp.length);
    placeCases(b.mask, cases, (i, c) => {
      oldLogprobs[i] = lp[i]! - c.logRatio;
      advantages[i] = c.adv;
    });
    return { m, batch: { ...b, advantages, oldLogprobs } };
  }

  test("pgLoss takes the max of the unclipped and clipped terms; clipFrac counts the clipped wins", async () => {
    const { m, batch } = await placed([CLIPPED_UP, CLIPPED_DOWN, UNCLIPPED_UP, UNCLIPPED_DOWN]);
    const s = await m.policyStep(batch, { clipRatio: 0.2 });
    // (−1.2 + 0.8 + e^0.5 − e^−0.5) / 4; the min instead would give (−e^0.5 + e^−0.5 + 1.2 − 0.8) / 4
    expect(s.pgLoss).toBeCloseTo((-1.2 + 0.8 + R_UP - R_DOWN) / 4, 5);
    expect(s.clipFrac).toBeCloseTo(0.5, 6);
    expect(s.approxKl).toBeCloseTo(0, 5); // mean of −log r over ±0.5
  });

  test("where the clipped term wins, the loss is flat: zero gradient", async () => {
    const { m, batch } = await placed([CLIPPED_UP, CLIPPED_DOWN]);
    const s = await m.policyStep(batch, { clipRatio: 0.2 });
    expect(s.pgLoss).toBeCloseTo(-0.2, 5);
    expect(s.clipFrac).toBe(1);
    expect(s.gradNorm).toBe(0);
  });
});

describe("clipped value loss (clipRange 0.2)", () => {
  // Old values and returns are placed at fixed offsets from the model's own values v, so the loss
  // 0.5·mean(max((v − R)², (clip(v, old ± 0.2) − R)²)) is known by hand whatever v is.
  type Case = { old: number; ret: number };
  /** Outside old ± 0.2 and the clipped error is the larger one: the clipped branch wins. */
  const CLIPPED_ABOVE: Case = { old: -0.5, ret: 0.1 }; // v − R = −0.1; clip(v) − R = −0.4: loss 0.16
  const CLIPPED_BELOW: Case = { old: 0.5, ret: -0.1 }; // v − R = 0.1; clip(v) − R = 0.4: loss 0.16
  /** Outside old ± 0.2 but the unclipped error is larger: max keeps (v − R)². */
  const UNCLIPPED_OUTSIDE: Case = { old: -0.5, ret: -1 }; // v − R = 1; clip(v) − R = 0.7: loss 1
  /** Inside old ± 0.2: clip(v) = v, the plain squared error. */
  const INSIDE: Case = { old: -0.1, ret: 0.3 }; // v − R = −0.3: loss 0.09

  /** A value batch whose k-th scored token takes cases[k % cases.length], offsets from v. */
  async function placed(cases: Case[]) {
    const m = model({ valueHead: true });
    const b = tokenBatch(5, 2, 6, SMALL.vocab);
    const v = await m.values(b);
    const returns = new Float32Array(v.length), oldValues = new Float32Array(v.length);
    placeCases(b.mask, cases, (i, c) => {
      oldValues[i] = v[i]! + c.old;
      returns[i] = v[i]! + c.ret;
    });
    return { m, batch: { ...b, returns, oldValues } };
  }

  test("loss is the max of the clipped and unclipped errors; vfClipFrac counts the clipped wins", async () => {
    const { m, batch } = await placed([CLIPPED_ABOVE, CLIPPED_BELOW, UNCLIPPED_OUTSIDE, INSIDE]);
    const s = await m.valueStep(batch, { clipRange: 0.2 });
    // 0.5 · (0.16 + 0.16 + 1 + 0.09) / 4; the min instead would give 0.5 · (0.01 + 0.01 + 0.49 + 0.09) / 4
    expect(s.vfLoss).toBeCloseTo(0.17625, 5);
    expect(s.vfClipFrac).toBeCloseTo(0.5, 6);
  });

  test("where the clipped branch wins, the loss is flat in v: zero gradient", async () => {
    // clip(v, old ± 0.2) does not move with v outside the range, so these tokens teach nothing.
    const { m, batch } = await placed([CLIPPED_ABOVE, CLIPPED_BELOW]);
    const s = await m.valueStep(batch, { clipRange: 0.2 });
    expect(s.vfLoss).toBeCloseTo(0.08, 5);
    expect(s.vfClipFrac).toBe(1);
    expect(s.gradNorm).toBe(0);
  });
});

describe("policyStep's loss denominator (lossNorm)", () => {
  test("the loss terms divide the weighted sums by lossNorm; clipFrac and approxKl stay weighted means; gradients scale with it", async () => {
    const b = tokenBatch(5, 4, 8, SMALL.vocab);
    // Rows of different lengths: row r keeps 6 - r response tokens.
    for (let r = 0; r < 4; r++) for (let t = 8 - r; t < 8; t++) b.mask[r * 8 + t] = 0;
    const adv = b.mask.map((x, i) => x * ((i % 3) - 1));
    const stats = async (hyper: { lossNorm?: number }) => {
      const m = model();
      const lp = await m.logprobs(b);
      // ratio 1, so each token's policy loss is −A and no clipping happens.
      return m.policyStep({ ...b, advantages: adv, oldLogprobs: lp }, { lr: 0, entropyCoef: 0, ...hyper });
    };
    let sumMaskedLoss = 0, tokens = 0;
    for (let i = 0; i < adv.length; i++) if (b.mask[i]) (sumMaskedLoss -= adv[i]!), tokens++;
    const mean = await stats({});
    const norm = await stats({ lossNorm: 4 });
    expect(mean.pgLoss).toBeCloseTo(sumMaskedLoss / tokens, 5);
    expect(norm.pgLoss).toBeCloseTo(sumMaskedLoss / 4, 5);
    expect(norm.clipFrac).toBe(mean.clipFrac);
    expect(norm.approxKl).toBeCloseTo(mean.approxKl, 6);
    // The gradient is the same direction, scaled by tokens / lossNorm.
    expect(norm.gradNorm / mean.gradNorm).toBeCloseTo(tokens / 4, 3);
    await expect(stats({ lossNorm: -1 })).rejects.toThrow("hyper.lossNorm");
  });
});

describe("PolicyModel reproducibility", () => {
  test("generate is bit-identical for a seed and differs across seeds", async () => {
    const m = model({ valueHead: true });
    const prompts = [[1, 2], [3], [4, 5, 6]];
    const a = await m.generate(prompts, { maxNewTokens: 6, seed: 11 });
    const b = await m.generate(prompts, { maxNewTokens: 6, seed: 11 });
    const c = await m.generate(prompts, { maxNewTokens: 6, seed: 12 });
    expect(fingerprint(a.tokens, a.logprobs, a.values!, a.lengths)).toBe(fingerprint(b.tokens, b.logprobs, b.values!, b.lengths));
    expect(fingerprint(a.tokens)).not.toBe(fingerprint(c.tokens));
    expect(a.lengths).toEqual(new Int32Array([6, 6, 6]));
  });

  test("clearing a row's mask zeroes exactly that row's logprobs and values, bit for bit (clearFailedRows)", async () => {
    // The trainer scores rewards while the log-probs and values run over every row, then clears
    // the rows whose reward failed: that must equal sending them with their mask cleared.
    const m = model({ valueHead: true });
    const rows = 5, seqLen = 7;
    const full = tokenBatch(21, rows, seqLen, SMALL.vocab, 2);
    const failed = Uint8Array.of(0, 1, 0, 0, 1);
    const dropped = { ...full, mask: full.mask.slice() };
    for (let r = 0; r < rows; r++) if (failed[r]) dropped.mask.fill(0, r * seqLen, (r + 1) * seqLen);
    const sent = { oldLogprobs: await m.logprobs(full), values: await m.values(full), timing: {} };
    const cleared = clearFailedRows(sent, { ...full, responseLengths: new Int32Array(rows) }, failed);
    expect(fingerprint(cleared.oldLogprobs, cleared.values!)).toBe(fingerprint(await m.logprobs(dropped), await m.values(dropped)));
    expect(cleared.oldLogprobs.subarray(seqLen, 2 * seqLen).some((x) => x !== 0)).toBe(false);
    expect(full.mask.subarray(seqLen + 2, 2 * seqLen).every((x) => x === 1)).toBe(true); // the row had tokens to clear
  });

  test("generated logprobs equal logprobs() of the same sequences", async () => {
    const m = model();
    const g = await m.generate([[1, 2, 3]], { maxNewTokens: 5, seed: 4 });
    const tokens = Int32Array.from([1, 2, 3, ...g.tokens]);
    const mask = Float32Array.from(tokens, (_, i) => (i >= 3 ? 1 : 0));
    const lp = await m.logprobs({ tokens, mask, batch: 1, seqLen: tokens.length });
    expect(Array.from(lp.subarray(3))).toEqual(Array.from(g.logprobs));
  });

  test("a row stops at eosToken", async () => {
    const m = model();
    const free = await m.generate([[1], [2]], { maxNewTokens: 8, seed: 9 });
    const eos = free.tokens[2]!; // row 0's third token
    const g = await m.generate([[1], [2]], { maxNewTokens: 8, seed: 9, eosToken: eos });
    const firstEos = Array.from(free.tokens.subarray(0, 8)).indexOf(eos);
    expect(g.lengths[0]).toBe(firstEos + 1);
    expect(Array.from(g.tokens.subarray(g.lengths[0]!, 8)).every((t) => t === 0)).toBe(true);
  });

  test("generate and policyStep are bit-identical with 1 and 2 threads", () => {
    const fixture = join(import.meta.dir, "fixtures", "determinism.ts");
    const outputs = ["1", "2"].map((threads) => {
      const run = Bun.spawnSync([process.execPath, fixture], { env: { ...process.env, REVENANT_NUM_THREADS: threads } });
      if (run.exitCode !== 0) console.log(run.stderr.toString());
      expect(run.exitCode).toBe(0);
      return JSON.parse(run.stdout.toString().trim()) as { threads: number; generate: string; weights: string };
    });
    expect(outputs.map((o) => o.threads)).toEqual([1, 2]);
    expect(outputs[0]!.generate).toBe(outputs[1]!.generate);
    expect(outputs[0]!.weights).toBe(outputs[1]!.weights);
  });
});

describe("PolicyModel state", () => {
  const steps = async (m: PolicyModel, n: number) => {
    const b = tokenBatch(21, 4, 8, SMALL.vocab);
    const old = b.mask.map((x) => -2 * x); // fixed, so both histories see the same batches
    for (let i = 0; i < n; i++) {
      await m.policyStep({ ...b, advantages: b.mask.map((x, j) => x * ((j % 3) - 1)), oldLogprobs: old }, { weightDecay: 0.01 });
      await m.valueStep({ ...b, returns: b.mask, oldValues: new Float32Array(b.mask.length) });
    }
  };

  test("setState(getState()) round-trips bit-exactly", async () => {
    const a = model({ valueHead: true });
    await steps(a, 2);
    const s = (await a.getState());
    const b = model({ valueHead: true, seed: 999 });
    b.setState(s);
    const t = (await b.getState());
    expect(t.step).toBe(s.step);
    expect(fingerprint(t.params, t.adamM, t.adamV)).toBe(fingerprint(s.params, s.adamM, s.adamV));
    expect(Buffer.from(t.params.buffer).equals(Buffer.from(s.params.buffer))).toBe(true);
  });

  test("a model restored from state trains to the same weights as one that never stopped", async () => {
    const straight = model({ valueHead: true });
    await steps(straight, 4);
    const first = model({ valueHead: true });
    await steps(first, 2);
    const saved = (await first.getState());
    first.dispose();
    const resumed = model({ valueHead: true, seed: 12345 });
    resumed.setState(saved);
    await steps(resumed, 2);
    const x = (await straight.getState()), y = (await resumed.getState());
    expect(y.step).toBe(x.step);
    expect(fingerprint(y.params, y.adamM, y.adamV)).toBe(fingerprint(x.params, x.adamM, x.adamV));
  });
});

describe("PolicyModel async calls", () => {
  test("slow calls return Promises and let the caller run before they resolve", async () => {
    const m = new PolicyModel({ ...DEFAULT_MODEL_CONFIG, seed: 1 }, { device: "cpu" });
    let afterCall = false;
    const p = m.generate(Array.from({ length: 64 }, () => [1, 2]), { maxNewTokens: 20, seed: 1 });
    expect(p).toBeInstanceOf(Promise);
    afterCall = true;
    const g = await p.then((r) => ({ r, sawAfterCall: afterCall }));
    expect(g.sawAfterCall).toBe(true);
    expect(g.r.tokens.length).toBe(64 * 20);
  });

  test("concurrent calls on one model are serialised and all resolve", async () => {
    const m = model();
    const b = tokenBatch(1, 2, 6, SMALL.vocab);
    const results = await Promise.all([m.logprobs(b), m.generate([[1]], { maxNewTokens: 3 }), m.logprobs(b)]);
    expect(fingerprint(results[0] as Float32Array)).toBe(fingerprint(results[2] as Float32Array));
  });
});

describe("CUDA backend", () => {
  const info = loadNative().deviceInfo();
  const usable = info.cuda.usable;
  if (!usable) console.log(`skipped: no CUDA device (${info.cuda.reason})`);

  test.skipIf(!usable)("CUDA logprobs, values and a policy step match the CPU backend", async () => {
    const cfg = { ...DEFAULT_MODEL_CONFIG, valueHead: true, seed: 2 };
    const cpu = new PolicyModel(cfg, { device: "cpu" });
    const gpu = new PolicyModel(cfg, { device: "cuda" });
    expect(gpu.backend).toBe("cuda");
    const b = tokenBatch(5, 8, 16, cfg.vocab);
    const [lc, lg] = [await cpu.logprobs(b), await gpu.logprobs(b)];
    // Different summation orders in float32: agreement to ~1e-5 on O(1) log-probs.
    for (let i = 0; i < lc.length; i++) expect(Math.abs(lc[i]! - lg[i]!)).toBeLessThan(1e-4);
    const batch = { ...b, advantages: b.mask, oldLogprobs: lc };
    const [sc, sg] = [await cpu.policyStep(batch), await gpu.policyStep(batch)];
    expect(Math.abs(sc.gradNorm - sg.gradNorm) / sc.gradNorm).toBeLessThan(1e-3);
    const [pc, pg] = [(await cpu.getState()).params, (await gpu.getState()).params];
    let worst = 0;
    for (let i = 0; i < pc.length; i++) worst = Math.max(worst, Math.abs(pc[i]! - pg[i]!));
    expect(worst).toBeLessThan(1e-4);
  });

  test.skipIf(usable)("device 'cuda' without a usable device throws a clear error", () => {
    expect(() => new PolicyModel(SMALL, { device: "cuda" })).toThrow(/device "cuda" requested but CUDA is not usable/);
  });
});
