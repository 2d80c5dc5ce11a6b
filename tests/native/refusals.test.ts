/**
 * Inputs the model refuses, in TypeScript first and again in native code (for callers that bypass
 * PolicyModel), each with an error naming the argument and what is allowed: AdamW eps <= 0, mask
 * entries that are negative or not finite, an update batch with no scored token, an update that
 * would leave a weight or moment non-finite (refused with the state untouched), and a batch too
 * large for the memory limit.
 */
import { describe, expect, test } from "bun:test";
import { join } from "node:path";
import { loadNative } from "../../native/loader.ts";
import { InvalidArgumentError, NativeComputeError } from "../../native/policy_model.ts";
import { fingerprint, model, SMALL, tokenBatch } from "./helpers.ts";

const b = tokenBatch(3, 2, 6, SMALL.vocab);
const policyBatch = { ...b, advantages: b.mask, oldLogprobs: b.mask.map((x) => -2 * x) };
const valueBatch = { ...b, returns: b.mask, oldValues: new Float32Array(b.mask.length) };
const hyper = { lr: 1e-3, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0, maxGradNorm: 1 };
const raw = () => new (loadNative().PolicyModelNative)({ ...SMALL, valueHead: true, seed: 0 }, "cpu");

async function failure(p: Promise<unknown>): Promise<Error> {
  try {
    await p;
  } catch (e) {
    return e as Error;
  }
  throw new Error("expected a rejection");
}

describe("AdamW eps must be > 0", () => {
  test("refused by PolicyModel, naming hyper.eps", async () => {
    const m = model({ valueHead: true });
    const e = await failure(m.policyStep(policyBatch, { eps: 0 }));
    expect(e).toBeInstanceOf(InvalidArgumentError);
    expect(e.message).toBe("policyStep: hyper.eps is 0; expected a finite number > 0");
    expect((await failure(m.valueStep(valueBatch, { eps: -1e-8 }))).message).toBe("valueStep: hyper.eps is -1e-8; expected a finite number > 0");
  });

  test("refused by native code too", async () => {
    const e = await failure(raw().policyStep(policyBatch, { ...hyper, clipRatio: 0.2, klCoef: 0, entropyCoef: 0, eps: 0 }));
    expect(e.message).toMatch(/^policyStep: eps must be a finite number > 0 .*got 0/);
  });
});

describe("mask entries are finite and >= 0", () => {
  test("a negative entry is refused by index", async () => {
    const mask = b.mask.slice();
    mask[3] = -1;
    const e = await failure(model().logprobs({ ...b, mask }));
    expect(e).toBeInstanceOf(InvalidArgumentError);
    expect(e.message).toBe("logprobs: batch.mask[3] is -1; expected a finite number >= 0");
    expect((await failure(raw().logprobs({ ...b, mask }))).message).toMatch(/^logprobs: mask\[3\] is -1(\.0+)?; a mask entry is a token's loss weight, a finite number >= 0/);
  });

  test("a NaN entry is refused by native code as well", async () => {
    const mask = b.mask.slice();
    mask[4] = Number.NaN;
    expect((await failure(raw().values({ ...b, mask }))).message).toMatch(/^values: mask\[4\] is nan/);
  });
});

describe("an update needs a scored token", () => {
  // Only position 0 is set: nothing predicts the first token, so nothing is scored.
  const mask = new Float32Array(b.mask.length);
  mask[0] = 1;

  test("policyStep and valueStep refuse an all-zero mask in TypeScript", async () => {
    const m = model({ valueHead: true });
    const e = await failure(m.policyStep({ ...policyBatch, mask }));
    expect(e).toBeInstanceOf(InvalidArgumentError);
    expect(e.message).toMatch(/^policyStep: batch\.mask is a Float32Array of length 12; expected at least one non-zero entry at positions 1\.\.seqLen-1/);
    expect((await failure(m.valueStep({ ...valueBatch, mask }))).message).toMatch(/^valueStep: batch\.mask .* at least one non-zero entry/);
    expect(m.step).toBe(0);
  });

  test("and in native code", async () => {
    const r = raw();
    expect((await failure(r.policyStep({ ...policyBatch, mask }, { ...hyper, clipRatio: 0.2, klCoef: 0, entropyCoef: 0 }))).message)
      .toMatch(/^policyStep: mask is 0 at every scored position/);
    expect((await failure(r.valueStep({ ...valueBatch, mask }, { ...hyper, clipRange: 0.2 }))).message).toMatch(/^valueStep: mask is 0 at every scored position/);
  });
});

describe("an update that would leave a weight or moment non-finite", () => {
  test("is refused, and weights, moments and step stay as they were", async () => {
    const m = model();
    await m.policyStep(policyBatch, { lr: 1e-2 });
    const before = await m.getState();
    // Gradients near 1e29 are finite, and so is the loss, but their squares overflow float32:
    // the second moment would become infinite.
    const e = await failure(m.policyStep({ ...policyBatch, advantages: b.mask.map((x) => x * 1e30) }, { maxGradNorm: 0 }));
    expect(e).toBeInstanceOf(NativeComputeError);
    expect(e.message).toMatch(/^policyStep: the update would make a weight or an AdamW moment NaN or infinite .*weights, moments and step left unchanged/);
    const after = await m.getState();
    expect(after.step).toBe(1);
    expect(fingerprint(after.params, after.adamM, after.adamV)).toBe(fingerprint(before.params, before.adamM, before.adamV));
    await m.policyStep(policyBatch, { lr: 1e-2 }); // the model still trains
    expect(m.step).toBe(2);
  });
});

describe("a batch that cannot fit in memory", () => {
  test("is refused with B, T and the bytes instead of being allocated", () => {
    const fixture = join(import.meta.dir, "fixtures", "memory_limit.ts");
    const run = Bun.spawnSync([process.execPath, fixture], { env: { ...process.env, REVENANT_MEMORY_LIMIT: "2000000" } });
    if (run.exitCode !== 0) console.log(run.stderr.toString());
    expect(run.exitCode).toBe(0);
    const out = JSON.parse(run.stdout.toString().trim()) as { small: string; large: string };
    expect(out.small).toBe("ok");
    expect(out.large).toMatch(/^logprobs: batch \[B=512, T=12\] needs about \d+ bytes of activations, more than the \d+ bytes available \(REVENANT_MEMORY_LIMIT\); use a smaller batch or mini-batch/);
  });
});
