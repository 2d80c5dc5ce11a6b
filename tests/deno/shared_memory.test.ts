/**
 * Shared-memory segments under Deno: its Node-API creates external ArrayBuffers over the mapping
 * itself (no copy), so two mappings of one file see each other's writes, and a model loads its
 * weights straight from a segment. The full suite is tests/native/shared_memory.test.ts (Bun).
 */
import assert from "node:assert/strict";
import { PolicyModel } from "../../native/policy_model.ts";
import { SharedSegment } from "../../native/shared_memory.ts";

const path = `/dev/shm/revenant-deno-test-${Deno.pid}`;

Deno.test("shared memory: a write through one mapping is read through another; a model loads from it", async () => {
  const a = SharedSegment.create(path, 1 << 16);
  try {
    const b = SharedSegment.open(path, 1 << 16);
    a.floats(64, 3).set([1.5, -2, 3.25]);
    assert.deepEqual(Array.from(b.floats(64, 3)), [1.5, -2, 3.25]);
    b.bytes[5] = 77;
    assert.equal(a.bytes[5], 77);

    const config = { vocab: 8, context: 12, width: 32, layers: 2, heads: 4 };
    const first = new PolicyModel({ ...config, seed: 1 }, { device: "cpu" });
    const second = new PolicyModel({ ...config, seed: 2 }, { device: "cpu" });
    const weights = SharedSegment.create(`${path}-weights`, first.numParams * 4);
    try {
      await first.copyParamsTo(weights.floats(0, first.numParams));
      await second.loadParamsFrom(weights.floats(0, second.numParams));
      assert.deepEqual((await second.getState()).params, (await first.getState()).params);
    } finally {
      weights.unlink();
    }
    assert.throws(() => SharedSegment.open(path, 8), (e: unknown) => e instanceof RangeError && /holds 65536 bytes, expected 8/.test(e.message));
  } finally {
    a.unlink();
  }
});
