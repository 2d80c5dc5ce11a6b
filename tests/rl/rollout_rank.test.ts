/**
 * A rollout rank on the CPU computes straight from the policy's weight segment (no copy per push),
 * so it guards every generate call by the segment's version: it samples exactly what the policy
 * samples with the same weights, a push is in use without a copy, and a call that a newer write
 * overlaps, or that asks for a version the segment no longer holds, fails as stale instead of
 * returning samples from other weights.
 */
import { afterAll, describe, expect, test } from "bun:test";
import { rmSync } from "node:fs";
import { PolicyModel, type PolicyModelConfig } from "../../native/policy_model.ts";
import { RolloutRank } from "../../roles/rollout.ts";
import { publishWeights, StaleWeightsError, type WeightSegment } from "../../roles/weights.ts";
import type { RoleContext } from "../../runtime/core/host/role.ts";

const MODEL: Omit<PolicyModelConfig, "valueHead"> & { seed: number } = { vocab: 16, context: 16, width: 32, layers: 2, heads: 4, seed: 3 };
const PATH = `/dev/shm/revenant-test-rank-${process.pid}`;
afterAll(() => rmSync(PATH, { force: true }));

const prompts = [new Int32Array([1, 2, 3]), new Int32Array([4, 5, 6])];
const options = { maxNewTokens: 5, temperature: 1, seed: 11 };

function policy(seed: number): PolicyModel {
  return new PolicyModel({ ...MODEL, seed, valueHead: false }, { device: "cpu", threads: 1 });
}

function rank(): RolloutRank {
  return new RolloutRank({ model: { ...MODEL, seed: 99 }, device: "cpu", threads: 1 }, {} as RoleContext);
}

describe("a CPU rollout rank computing from the weight segment", () => {
  test("samples what the policy samples, and takes the next push without copying it", async () => {
    const [p1, p2, r] = [policy(1), policy(2), rank()];
    const seg: WeightSegment = await publishWeights(p1, PATH, 1);
    expect(await r.syncWeights({ version: 1, segment: seg })).toEqual({ version: 1 });
    expect((await r.generate(prompts, options, { version: 1, segment: seg })).tokens).toEqual((await p1.generate(prompts, options)).tokens);
    await publishWeights(p2, PATH, 2);
    expect((await r.generate(prompts, options, { version: 2, segment: seg })).tokens).toEqual((await p2.generate(prompts, options)).tokens);
  });

  test("a call for a version the segment no longer holds fails as stale before it samples", async () => {
    const [p1, p2, r] = [policy(1), policy(2), rank()];
    const seg = await publishWeights(p1, PATH, 1);
    await r.syncWeights({ version: 1, segment: seg });
    await publishWeights(p2, PATH, 2);
    await expect(r.generate(prompts, options, { version: 1, segment: seg })).rejects.toThrow(StaleWeightsError);
    await expect(r.generate(prompts, options, { version: 1, segment: seg })).rejects.toThrow("holds another version than version 1 (it holds 2)");
  });

  test("a write that begins while the rank generates fails that call as stale; the next call is served", async () => {
    const [p1, p2, r] = [policy(1), policy(2), rank()];
    const seg = await publishWeights(p1, PATH, 1);
    await r.syncWeights({ version: 1, segment: seg });
    const during = r.generate(prompts, options, { version: 1, segment: seg });
    const write = publishWeights(p2, PATH, 2); // marks the segment as being written at once
    await expect(during).rejects.toThrow("was rewritten while generating with version 1");
    await write;
    expect((await r.generate(prompts, options, { version: 2, segment: seg })).tokens).toEqual((await p2.generate(prompts, options)).tokens);
  });
});
