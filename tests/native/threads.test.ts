/**
 * The thread budget: the coordinator splits the machine's cores among the model actors that run
 * at once, REVENANT_NUM_THREADS overrides the share, and the native pool follows the count a
 * model is made with, with bit-identical results whatever the count.
 */
import { afterAll, describe, expect, test } from "bun:test";
import { resolveConfig } from "../../config/index.ts";
import { loadNative } from "../../native/loader.ts";
import { PolicyModel } from "../../native/policy_model.ts";
import { actorThreads, threadShare } from "../../roles/model_options.ts";
import { checkTaskJobConfig } from "../../runtime/rl/trainer/plan.ts";
import { fingerprint, SMALL, tokenBatch } from "./helpers.ts";

const initialThreads = loadNative().deviceInfo().threads;
afterAll(() => loadNative().setThreads(initialThreads));

describe("each model actor's share of the cores", () => {
  test("an even split, at least one thread each", () => {
    expect(threadShare(8, 3)).toBe(2);
    expect(threadShare(16, 2)).toBe(8);
    expect(threadShare(2, 3)).toBe(1);
    expect(threadShare(1, 1)).toBe(1);
    expect(() => threadShare(0, 1)).toThrow("threadShare: cores must be an integer >= 1, got 0");
    expect(() => threadShare(4, 0)).toThrow("threadShare: actors must be an integer >= 1, got 0");
  });

  test("REVENANT_NUM_THREADS overrides the coordinator's share; a bad value is an error naming it", () => {
    expect(actorThreads(2, {})).toBe(2);
    expect(actorThreads(2, { REVENANT_NUM_THREADS: "3" })).toBe(3);
    expect(actorThreads(undefined, { REVENANT_NUM_THREADS: "" })).toBeUndefined();
    expect(() => actorThreads(2, { REVENANT_NUM_THREADS: "two" })).toThrow('REVENANT_NUM_THREADS must be an integer in 1..4096, got "two"');
  });

  test("the plan divides the cores among actor_rollout, critic and ref_policy when all three run", () => {
    const plan = (...args: string[]) => checkTaskJobConfig(resolveConfig({ file: null, env: {}, args }).config);
    const all = plan("algorithm.adv_estimator=gae", "algorithm.kl_coef=0.001");
    expect(all.modelThreads(8)).toBe(2);
    expect(all.modelThreads(2)).toBe(1);
    const actorOnly = plan("algorithm.adv_estimator=grpo", "worker.actor.rollout_n=2", "algorithm.kl_coef=0");
    expect(actorOnly.modelThreads(8)).toBe(8);
    for (const role of ["actor", "critic", "ref"] as const) expect(all.roleOptions(role).threads).toBe(all.modelThreads());
  });
});

describe("the native pool follows the model's thread count", () => {
  test("deviceInfo reports the count set, and results are bit-identical at 1 and 2 threads", async () => {
    const b = tokenBatch(41, 8, 12, SMALL.vocab);
    const run = async (threads: number) => {
      const m = new PolicyModel({ ...SMALL, seed: 4 }, { device: "cpu", threads });
      expect(loadNative().deviceInfo().threads).toBe(threads);
      await m.policyStep({ ...b, advantages: b.mask, oldLogprobs: b.mask.map((x) => -2 * x) }, { lr: 1e-2 });
      const s = await m.getState();
      return fingerprint(await m.logprobs(b), s.params, s.adamM, s.adamV);
    };
    expect(await run(1)).toBe(await run(2));
  });

  test("a thread count out of range is refused by name", () => {
    expect(() => new PolicyModel(SMALL, { device: "cpu", threads: 0 })).toThrow("PolicyModel: options.threads is 0; expected an integer in 1..4096");
    expect(() => loadNative().setThreads(0)).toThrow("setThreads: threads must be an integer in 1..4096");
  });
});
