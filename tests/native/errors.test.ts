/**
 * Bad arguments throw InvalidArgumentError naming the method, argument, bad value and what is
 * allowed; native failures become NativeComputeError naming op, file and line. Nothing crashes.
 */
import { describe, expect, test } from "bun:test";
import { loadNative } from "../../native/loader.ts";
import { InvalidArgumentError, NativeComputeError, PolicyModel } from "../../native/policy_model.ts";
import { model, SMALL, tokenBatch } from "./helpers.ts";

const m = model();
const b = tokenBatch(1, 2, 6, SMALL.vocab);
const policyBatch = { ...b, advantages: new Float32Array(12), oldLogprobs: new Float32Array(12) };

async function rejects(p: Promise<unknown>, pattern: RegExp, type: Function = InvalidArgumentError) {
  let err: unknown;
  try {
    await p;
  } catch (e) {
    err = e;
  }
  expect(err).toBeInstanceOf(type);
  expect((err as Error).message).toMatch(pattern);
}

describe("argument validation", () => {
  test("config: width not a multiple of heads, non-integer sizes, unknown device", () => {
    expect(() => new PolicyModel({ ...SMALL, width: 30, heads: 4 })).toThrow(
      "PolicyModel: config.width is 30; expected a multiple of heads (4)",
    );
    expect(() => new PolicyModel({ ...SMALL, layers: 1.5 })).toThrow(/config\.layers is 1\.5; expected an integer in 1\.\.64/);
    expect(() => new PolicyModel(SMALL, { device: "tpu" as "cpu" })).toThrow(/options\.device is "tpu"/);
  });

  test("wrong dtype names the argument, the type received and the type expected", async () => {
    await rejects(m.logprobs({ ...b, mask: new Float64Array(12) as unknown as Float32Array }),
      /logprobs: batch\.mask is a Float64Array of length 12; expected a Float32Array of length 12/);
    await rejects(m.logprobs({ ...b, tokens: new Uint32Array(12) as unknown as Int32Array }), /batch\.tokens is a Uint32Array/);
  });

  test("wrong shape", async () => {
    await rejects(m.policyStep({ ...policyBatch, advantages: new Float32Array(11) }),
      /policyStep: batch\.advantages is a Float32Array of length 11; expected a Float32Array of length 12/);
    await rejects(m.logprobs({ ...b, seqLen: 13 }), /batch\.seqLen is 13; expected an integer in 2\.\.12/);
  });

  test("token id out of range", async () => {
    const tokens = b.tokens.slice();
    tokens[4] = 8;
    await rejects(m.logprobs({ ...b, tokens }), /batch\.tokens\[4\] is 8; expected a token id in 0\.\.7/);
    await rejects(m.generate([[1, -1]], { maxNewTokens: 2 }), /prompts\[0\]\[1\] is -1; expected a token id in 0\.\.7/);
  });

  test("NaN in inputs", async () => {
    const advantages = new Float32Array(12);
    advantages[3] = Number.NaN;
    await rejects(m.policyStep({ ...policyBatch, advantages }), /batch\.advantages\[3\] is NaN; expected a finite number/);
    await rejects(m.generate([[1]], { maxNewTokens: 2, temperature: Number.NaN }), /options\.temperature is NaN/);
  });

  test("generate: prompt too long for the context, empty prompt", async () => {
    await rejects(m.generate([[1, 2, 3, 4, 5]], { maxNewTokens: 8 }), /prompts\[0\]\.length is 5; expected 1\.\.4/);
    await rejects(m.generate([[]], { maxNewTokens: 2 }), /prompts\[0\]\.length is 0/);
  });

  test("value calls on a model without a value head", async () => {
    await rejects(m.values(b), /values: model is "a model without a value head"/);
  });

  test("KL term without reference log-probs; state of the wrong size", async () => {
    await rejects(m.policyStep(policyBatch, { klCoef: 0.1 }), /batch\.refLogprobs .* when hyper\.klCoef != 0/);
    // Same parameter count, different shape: heads only changes how the weights are used.
    const other = new PolicyModel({ ...SMALL, heads: 2 }, { device: "cpu" });
    expect(other.numParams).toBe(m.numParams);
    const [otherState, ownState] = [await other.getState(), await m.getState()];
    expect(() => m.setState(otherState)).toThrow(/setState: state\.layout is "vocab=8 context=12 width=32 layers=2 heads=2 valueHead=false"; expected "vocab=8 .* heads=4 valueHead=false" \(this model's layout\)/);
    expect(() => m.setState({ ...ownState, params: new Float32Array(3) })).toThrow(
      new RegExp(`state\\.params is a Float32Array of length 3; expected a Float32Array of length ${m.numParams}`),
    );
  });
});

describe("native errors", () => {
  test("errors from native code name the op, the source file and the line", async () => {
    // Bypass the TypeScript checks to reach the native ones.
    const raw = new (loadNative().PolicyModelNative)({ ...SMALL, valueHead: false, seed: 0 }, "cpu");
    let err: Error | undefined;
    try {
      await raw.generate([Int32Array.from([1, 99])], { maxNewTokens: 2, temperature: 1, seed: 0, eosToken: -1 });
    } catch (e) {
      err = e as Error;
    }
    expect(err?.message).toMatch(/^generate: token id 99 in prompt 0 is outside 0\.\.7 \(at native\/src\/core\/model\.cc:\d+\)$/);
    expect(() => raw.logprobs({ ...b, mask: new Float64Array(12) as unknown as Float32Array })).toThrow(/mask must be a Float32Array/);
  });

  test("a disposed model rejects calls with a clear error", async () => {
    const d = model();
    d.dispose();
    await rejects(d.logprobs(b), /this model was disposed/, NativeComputeError);
  });
});
