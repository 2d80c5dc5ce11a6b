/**
 * End to end on the default model: GRPO-style training (generate, group-relative rewards,
 * policyStep) learns to reverse 4 digits from scratch on the CPU. Fully seeded, so the run is the
 * same on every machine and thread count.
 */
import { expect, test } from "bun:test";
import { DEFAULT_MODEL_CONFIG, PolicyModel } from "../../native/policy_model.ts";
import { rng } from "./helpers.ts";

const BOS = 10, SEP = 11, EOS = 12, DIGITS = 4;

test("the default model learns digit reversal with policyStep", async () => {
  const m = new PolicyModel({ ...DEFAULT_MODEL_CONFIG, seed: 1 }, { device: "cpu" });
  const r = rng(1);
  const groups = 16, perGroup = 8, answer = DIGITS + 1, seqLen = DIGITS + 2 + answer;
  let reward = 0;
  const history: string[] = [];
  for (let step = 0; step < 320; step++) {
    const prompts: number[][] = [];
    for (let g = 0; g < groups; g++) {
      const digits = Array.from({ length: DIGITS }, () => Math.floor(r() * 10));
      for (let k = 0; k < perGroup; k++) prompts.push([BOS, ...digits, SEP]);
    }
    const out = await m.generate(prompts, { maxNewTokens: answer, seed: step, eosToken: EOS });
    const B = prompts.length;
    // Reward: fraction of answer positions right (the reversed digits, then EOS).
    const rewards = prompts.map((p, b) => {
      const want = p.slice(1, 1 + DIGITS).reverse().concat([EOS]);
      let right = 0;
      for (let i = 0; i < out.lengths[b]!; i++) if (out.tokens[b * answer + i] === want[i]) right++;
      return right / answer;
    });
    const batch = {
      tokens: new Int32Array(B * seqLen),
      mask: new Float32Array(B * seqLen),
      batch: B,
      seqLen,
      advantages: new Float32Array(B * seqLen),
      oldLogprobs: new Float32Array(B * seqLen),
    };
    for (let b = 0; b < B; b++) {
      const first = b - (b % perGroup);
      const mean = rewards.slice(first, first + perGroup).reduce((a, c) => a + c, 0) / perGroup;
      batch.tokens.set(prompts[b]!, b * seqLen);
      for (let i = 0; i < out.lengths[b]!; i++) {
        const t = b * seqLen + DIGITS + 2 + i;
        batch.tokens[t] = out.tokens[b * answer + i]!;
        batch.mask[t] = 1;
        batch.advantages[t] = rewards[b]! - mean;
        batch.oldLogprobs[t] = out.logprobs[b * answer + i]!;
      }
    }
    await m.policyStep(batch, { lr: 1e-3, entropyCoef: 0.01 });
    reward = rewards.reduce((a, c) => a + c, 0) / B;
    if (step % 40 === 0) history.push(`${step}:${reward.toFixed(2)}`);
  }
  console.log(`mean reward by step: ${history.join(" ")} final:${reward.toFixed(3)}`);
  expect(reward).toBeGreaterThan(0.9);
}, 120_000);
