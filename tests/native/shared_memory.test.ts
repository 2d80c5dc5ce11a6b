/**
 * Shared-memory segments (native/shared_memory.ts, mapShared in the addon) and the model's direct
 * param copies: bytes written through one mapping are read through another, in this process and
 * in a separate one; copyParamsTo/loadParamsFrom move exactly the weights, bit for bit, and
 * nothing else; every bad argument is refused with a message naming it.
 */
import { afterAll, describe, expect, test } from "bun:test";
import { existsSync, mkdirSync, statfsSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { loadNative } from "../../native/loader.ts";
import { NULL_ADDON } from "../../native/null_backend.ts";
import { InvalidArgumentError, PolicyModel } from "../../native/policy_model.ts";
import { SharedSegment } from "../../native/shared_memory.ts";
import { fingerprint, model, rng, SMALL, tokenBatch } from "./helpers.ts";

const SHM = "/dev/shm";
const made: SharedSegment[] = [];
let counter = 0;

/** A fresh segment path for this process; every segment made through `segment()` is unlinked after the file. */
function shmPath(): string {
  return join(SHM, `revenant-test-${process.pid}-${counter++}`);
}

function segment(bytes: number): SharedSegment {
  const seg = SharedSegment.create(shmPath(), bytes);
  made.push(seg);
  return seg;
}

afterAll(() => {
  for (const seg of made.splice(0)) seg.unlink();
});

/** Seeded floats in [-1, 1). */
function randomFloats(seed: number, n: number): Float32Array {
  const r = rng(seed);
  return new Float32Array(n).map(() => 2 * r() - 1);
}

/** Runs `script` (ES module source) in a new process of this runtime; returns its stdout, trimmed. */
function runChild(script: string): string {
  const run = Bun.spawnSync([process.execPath, "-e", script], { env: { ...process.env } });
  if (run.exitCode !== 0) console.log(run.stderr.toString());
  expect(run.exitCode).toBe(0);
  return run.stdout.toString().trim();
}

const SEGMENT_MODULE = JSON.stringify(join(import.meta.dir, "..", "..", "native", "shared_memory.ts"));
const HELPERS_MODULE = JSON.stringify(join(import.meta.dir, "helpers.ts"));

describe("SharedSegment", () => {
  test("bytes written through one mapping are read through another mapping of the same file", () => {
    const a = segment(1 << 20);
    const b = SharedSegment.open(a.path, 1 << 20);
    const data = randomFloats(1, 1000);
    a.floats(4096, data.length).set(data);
    expect(fingerprint(b.floats(4096, data.length))).toBe(fingerprint(data));
    b.bytes[7] = 201; // and back the other way, byte-wise
    expect(a.bytes[7]).toBe(201);
    expect(a.byteLength).toBe(1 << 20);
  });

  test("a separate process reads what this one wrote, and this one reads what it wrote back", () => {
    const n = 1 << 18; // 1 MiB of floats each way
    const seg = segment(2 * n * 4);
    const data = randomFloats(2, n);
    seg.floats(0, n).set(data);
    const out = runChild(`
      import { SharedSegment } from ${SEGMENT_MODULE};
      import { fingerprint } from ${HELPERS_MODULE};
      const seg = SharedSegment.open(${JSON.stringify(seg.path)}, ${seg.byteLength});
      const mine = seg.floats(0, ${n});
      seg.floats(${n * 4}, ${n}).set(mine.map((x) => -x));
      console.log(fingerprint(mine));
    `);
    expect(out).toBe(fingerprint(data));
    expect(fingerprint(seg.floats(n * 4, n))).toBe(fingerprint(data.map((x) => -x)));
  });

  test("create truncates an existing file to the new size, all zeros", () => {
    const path = shmPath();
    writeFileSync(path, new Uint8Array(100).fill(7));
    const seg = SharedSegment.create(path, 64);
    made.push(seg);
    expect(seg.byteLength).toBe(64);
    expect(seg.bytes.every((x) => x === 0)).toBe(true);
  });

  test("floats() is a view at the given offset, not a copy", () => {
    const seg = segment(64);
    seg.floats(8, 2).set([1.5, -2]);
    expect(Array.from(new Float32Array(seg.buffer, 0, 4))).toEqual([0, 0, 1.5, -2]);
  });

  test("a segment's mapping is released when it is collected", () => {
    // In a child: 40 mappings of one file, dropped, full collections; the kernel's list of this
    // process's mappings then holds (almost) none of them. Conservative stack scanning may keep a
    // stray one alive, so fewer than before proves the finalizer unmaps. Bun runs Node-API
    // finalizers on the event loop after the collection, hence the turns of the loop.
    const seg = segment(4096);
    const out = runChild(`
      import { readFileSync } from "node:fs";
      import { SharedSegment } from ${SEGMENT_MODULE};
      const mapped = () => readFileSync("/proc/self/maps", "utf8").split("\\n").filter((l) => l.endsWith(${JSON.stringify(seg.path)})).length;
      (() => { for (let i = 0; i < 40; i++) SharedSegment.open(${JSON.stringify(seg.path)}, 4096).bytes[0] = i; })();
      const before = mapped();
      for (let i = 0; i < 3; i++) {
        Bun.gc(true);
        await new Promise((r) => setImmediate(r));
      }
      console.log(JSON.stringify({ before, after: mapped() }));
    `);
    const { before, after } = JSON.parse(out) as { before: number; after: number };
    expect(before).toBeGreaterThanOrEqual(1);
    expect(after).toBeLessThan(40);
    expect(after).toBeLessThan(before);
  });

  test("unlink removes the name; mappings made before keep working", () => {
    const seg = SharedSegment.create(shmPath(), 16);
    seg.unlink();
    expect(existsSync(seg.path)).toBe(false);
    seg.bytes[3] = 9;
    expect(seg.bytes[3]).toBe(9);
    expect(() => SharedSegment.open(seg.path, 16)).toThrow(/ENOENT/);
  });
});

describe("SharedSegment refusals", () => {
  const addon = loadNative();
  const refused = (f: () => unknown, type: ErrorConstructor, message: RegExp) => {
    let error: unknown;
    try {
      f();
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(type);
    expect((error as Error).message).toMatch(message);
    return error as Error & { code?: string };
  };

  test("bytes that are not an integer in 1..2^40", () => {
    for (const bad of [0, -1, 1.5, Number.NaN, Number.POSITIVE_INFINITY, 2 ** 40 + 1]) {
      refused(() => SharedSegment.create(shmPath(), bad), RangeError, /bytes must be an integer in 1\.\.1099511627776 \(2\^40\), got /);
    }
    refused(() => addon.mapShared(shmPath(), "8" as unknown as number, true), TypeError, /bytes must be a number/);
  });

  test("an empty path, a path with NUL, arguments of the wrong type", () => {
    refused(() => SharedSegment.create("", 8), TypeError, /path is empty; expected a file path such as \/dev\/shm\/<name>/);
    refused(() => SharedSegment.create(`${SHM}/a\0b`, 8), TypeError, /contains a NUL character/);
    refused(() => addon.mapShared(42 as unknown as string, 8, true), TypeError, /path must be a string/);
    refused(() => addon.mapShared(shmPath(), 8, 1 as unknown as boolean), TypeError, /create must be a boolean/);
    refused(() => (addon.mapShared as (...a: unknown[]) => unknown)(shmPath(), 8), TypeError, /expected 3 arguments/);
  });

  test("opening a missing file names it and says how to make it (code ENOENT)", () => {
    const path = shmPath();
    const e = refused(() => SharedSegment.open(path, 8), Error, new RegExp(`cannot open "${path}": ENOENT .*create it first with mapShared\\(path, bytes, true\\)`));
    expect(e.code).toBe("ENOENT");
  });

  test("opening with a size other than the file's names path, expected and actual size", () => {
    const seg = segment(4096);
    refused(() => SharedSegment.open(seg.path, 8192), RangeError, new RegExp(`"${seg.path}" holds 4096 bytes, expected 8192`));
  });

  test("opening something that is not a regular file", () => {
    const dir = join(SHM, `revenant-test-${process.pid}-dir`);
    mkdirSync(dir, { recursive: true });
    try {
      refused(() => SharedSegment.open(dir, 8), Error, /EISDIR/);
    } finally {
      Bun.spawnSync(["rmdir", dir]);
    }
  });

  // Only where the file system is smaller than 2^40 bytes (every /dev/shm on real machines): the
  // reservation then fails at once, before anything is allocated.
  const smallFs = statfsSync(SHM).blocks * statfsSync(SHM).bsize < 2 ** 40;
  test.skipIf(!smallFs)("a segment larger than the file system: ENOSPC with the free space, no file left behind", () => {
    const path = shmPath();
    const e = refused(() => SharedSegment.create(path, 2 ** 40), Error, /cannot reserve 1099511627776 bytes .*ENOSPC.*bytes free/);
    expect(e.code).toBe("ENOSPC");
    expect(existsSync(path)).toBe(false);
  });

  test("floats() outside the segment or misaligned", () => {
    const seg = segment(64);
    refused(() => seg.floats(2, 1), RangeError, /offsetBytes must be a non-negative multiple of 4, got 2/);
    refused(() => seg.floats(-4, 1), RangeError, /offsetBytes must be a non-negative multiple of 4, got -4/);
    refused(() => seg.floats(0, 1.5), RangeError, /count must be a non-negative integer, got 1.5/);
    refused(() => seg.floats(60, 2), RangeError, /2 floats at byte 60 end at byte 68, past the segment's 64 bytes/);
  });

  test("the null backend refuses to map (it could share nothing)", () => {
    refused(() => SharedSegment.create(shmPath(), 8, NULL_ADDON), Error, /null backend has no shared memory; build the native addon/);
  });
});

describe("copyParamsTo / loadParamsFrom", () => {
  /** A model that has taken optimizer steps, so its moments and step are not the initial ones. */
  async function trained(seed: number): Promise<PolicyModel> {
    const m = model({ seed });
    const b = tokenBatch(seed + 1, 4, 8, SMALL.vocab);
    for (let i = 0; i < 2; i++) {
      await m.policyStep({ ...b, advantages: b.mask.map((x, j) => x * ((j % 3) - 1)), oldLogprobs: b.mask.map((x) => -2 * x) });
    }
    return m;
  }

  test("copyParamsTo gives getState().params bit for bit", async () => {
    const m = await trained(3);
    const dst = new Float32Array(m.numParams);
    await m.copyParamsTo(dst);
    expect(fingerprint(dst)).toBe(fingerprint((await m.getState()).params));
  });

  test("loadParamsFrom sets the params exactly and leaves adamM, adamV and step unchanged", async () => {
    const m = await trained(4);
    const before = await m.getState();
    expect(before.step).toBe(2);
    const src = randomFloats(5, m.numParams);
    await m.loadParamsFrom(src);
    const after = await m.getState();
    expect(fingerprint(after.params)).toBe(fingerprint(src));
    expect(fingerprint(after.adamM, after.adamV)).toBe(fingerprint(before.adamM, before.adamV));
    expect(after.step).toBe(before.step);
  });

  test("through a segment, a second model gets the first's weights and the same logprobs", async () => {
    const a = await trained(6);
    const b = model({ seed: 77 });
    const seg = segment(a.numParams * 4);
    await a.copyParamsTo(seg.floats(0, a.numParams));
    await b.loadParamsFrom(SharedSegment.open(seg.path, seg.byteLength).floats(0, b.numParams));
    const batch = tokenBatch(8, 4, 10, SMALL.vocab);
    expect(fingerprint(await b.logprobs(batch))).toBe(fingerprint(await a.logprobs(batch)));
  });

  test("they run in the call queue: a copy issued after an unawaited step sees that step", async () => {
    const m = model({ seed: 9 });
    const b = tokenBatch(10, 4, 8, SMALL.vocab);
    const dst = new Float32Array(m.numParams);
    const step = m.policyStep({ ...b, advantages: b.mask, oldLogprobs: b.mask.map((x) => -2 * x) });
    const copied = m.copyParamsTo(dst);
    await Promise.all([step, copied]);
    expect(fingerprint(dst)).toBe(fingerprint((await m.getState()).params));
    expect(fingerprint(dst)).not.toBe(fingerprint(m.initialParams()));
  });

  test("wrong length or type is refused before the call, naming the parameter count", () => {
    const m = model();
    for (const [method, arg] of [["copyParamsTo", "dst"], ["loadParamsFrom", "src"]] as const) {
      for (const bad of [new Float32Array(m.numParams - 1), new Float64Array(m.numParams), null]) {
        expect(() => m[method](bad as Float32Array)).toThrow(InvalidArgumentError);
        expect(() => m[method](bad as Float32Array)).toThrow(`${method}: ${arg} is `);
        expect(() => m[method](bad as Float32Array)).toThrow(`expected a Float32Array of length ${m.numParams} (this config's parameter count)`);
      }
    }
  });

  test("the native methods check too, for callers that bypass PolicyModel", () => {
    const addon = loadNative();
    const native = new addon.PolicyModelNative({ ...SMALL, valueHead: false, seed: 1 }, "cpu");
    const n = native.info().numParams;
    expect(() => native.copyParamsTo(new Float32Array(n + 1))).toThrow(new RangeError(`copyParamsTo: dst holds ${n + 1} floats, expected ${n} (this model's parameter count)`));
    expect(() => native.loadParamsFrom(new Int32Array(n) as unknown as Float32Array)).toThrow(TypeError);
    expect(() => native.loadParamsFrom(new Int32Array(n) as unknown as Float32Array)).toThrow("loadParamsFrom(src: Float32Array): src must be a Float32Array");
  });

  test("after dispose they reject like every other call", async () => {
    const m = model();
    await m.dispose();
    await expect(m.copyParamsTo(new Float32Array(m.numParams))).rejects.toThrow(/disposed/);
    await expect(m.loadParamsFrom(new Float32Array(m.numParams))).rejects.toThrow(/disposed/);
  });

  test("the null backend keeps the same contract", async () => {
    const m = new PolicyModel({ ...SMALL }, { device: "null" });
    const before = await m.getState();
    const src = randomFloats(11, m.numParams);
    await m.loadParamsFrom(src);
    const dst = new Float32Array(m.numParams);
    await m.copyParamsTo(dst);
    expect(fingerprint(dst)).toBe(fingerprint(src));
    expect((await m.getState()).step).toBe(before.step);
  });

  const cuda = loadNative().deviceInfo().cuda.usable;
  test.skipIf(!cuda)("CUDA: copyParamsTo and loadParamsFrom round-trip through device memory bit for bit", async () => {
    const gpu = new PolicyModel({ ...SMALL, seed: 12 }, { device: "cuda" });
    const src = randomFloats(13, gpu.numParams);
    const seg = segment(gpu.numParams * 4);
    seg.floats(0, gpu.numParams).set(src);
    await gpu.loadParamsFrom(seg.floats(0, gpu.numParams));
    const dst = new Float32Array(gpu.numParams);
    await gpu.copyParamsTo(dst);
    expect(fingerprint(dst)).toBe(fingerprint(src));
    expect(fingerprint((await gpu.getState()).params)).toBe(fingerprint(src));
  });
});

describe("computeFrom: a CPU model computes from a segment without copying it", () => {
  test("the model's outputs follow what is written into the segment, with no further call", async () => {
    const a = model({ seed: 21 });
    const b = model({ seed: 22 });
    const seg = segment(a.numParams * 4);
    const view = seg.floats(0, a.numParams);
    await a.copyParamsTo(view);
    const rank = model({ seed: 23 });
    expect(await rank.computeFrom(SharedSegment.open(seg.path, seg.byteLength).floats(0, rank.numParams))).toBe(true);
    const batch = tokenBatch(24, 4, 10, SMALL.vocab);
    expect(fingerprint(await rank.logprobs(batch))).toBe(fingerprint(await a.logprobs(batch)));
    // Another version written by the producer is what the rank computes with next: nothing was copied.
    await b.copyParamsTo(view);
    expect(fingerprint(await rank.logprobs(batch))).toBe(fingerprint(await b.logprobs(batch)));
    expect(fingerprint((await rank.getState()).params)).toBe(fingerprint(view));
  });

  test("it cannot train from borrowed weights; loadParamsFrom gives it its own copy again", async () => {
    const src = model({ seed: 25 });
    const seg = segment(src.numParams * 4);
    const view = seg.floats(0, src.numParams);
    await src.copyParamsTo(view);
    const rank = model({ seed: 26 });
    await rank.computeFrom(view);
    const b = tokenBatch(27, 4, 8, SMALL.vocab);
    const step = { ...b, advantages: b.mask, oldLogprobs: b.mask.map((x) => -2 * x) };
    await expect(rank.policyStep(step)).rejects.toThrow("computes from weights it does not own");
    expect(fingerprint(view)).toBe(fingerprint((await src.getState()).params)); // the refused step wrote nothing
    await rank.loadParamsFrom(view);
    view.fill(0); // the rank's own copy no longer sees the segment
    expect(fingerprint((await rank.getState()).params)).toBe(fingerprint((await src.getState()).params));
    await rank.policyStep(step);
    expect(view.every((x) => x === 0)).toBe(true);
  });

  test("calls queued before computeFrom use the weights held before it", async () => {
    const rank = model({ seed: 28 });
    const before = await rank.getState();
    const seg = segment(rank.numParams * 4);
    seg.floats(0, rank.numParams).set(randomFloats(29, rank.numParams));
    const batch = tokenBatch(30, 4, 8, SMALL.vocab);
    const early = rank.logprobs(batch);
    await rank.computeFrom(seg.floats(0, rank.numParams));
    const fresh = model({ seed: 28 });
    await fresh.setState(before);
    expect(fingerprint(await early)).toBe(fingerprint(await fresh.logprobs(batch)));
  });

  test("a wrong view is refused, naming the count; the null backend copies instead", async () => {
    const m = model();
    expect(() => m.computeFrom(new Float32Array(m.numParams + 1))).toThrow("computeFrom: view is ");
    const addon = loadNative();
    const native = new addon.PolicyModelNative({ ...SMALL, valueHead: false, seed: 1 }, "cpu");
    const n = native.info().numParams;
    expect(() => native.computeFrom!(new Float32Array(n - 1))).toThrow(new RangeError(`computeFrom: view holds ${n - 1} floats, expected ${n} (this model's parameter count)`));
    const nul = new PolicyModel({ ...SMALL }, { device: "null" });
    const src = randomFloats(31, nul.numParams);
    expect(await nul.computeFrom(src)).toBe(false);
    src.fill(0);
    expect((await nul.getState()).params.some((x) => x !== 0)).toBe(true);
  });
});
