/**
 * The safetensors reader and writer: round trips in F32 and BF16, half-precision and bfloat16
 * conversions against known bit patterns, and every header error with its message.
 */
import { describe, expect, test } from "bun:test";
import { execFileSync } from "node:child_process";
import { symlinkSync, truncateSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import {
  bf16ToFloat32,
  decodeSafetensors,
  encodeSafetensors,
  f16ToFloat32,
  float32ToBf16,
  float32ToF16,
  readSafetensors,
  SafetensorsError,
  type Tensor,
  writeSafetensors,
} from "../../native/hf/safetensors.ts";
import { tempDir } from "../helpers/tmp.ts";
import { rng } from "./helpers.ts";

/** Seeded tensors of assorted shapes, a scalar and an empty one included. */
function sampleTensors(seed: number): Map<string, Tensor> {
  const r = rng(seed);
  const make = (shape: number[]) => ({ shape, data: new Float32Array(shape.reduce((a, b) => a * b, 1)).map(() => (r() - 0.5) * 200) });
  return new Map([
    ["model.embed_tokens.weight", make([7, 5])],
    ["scalar", make([])],
    ["empty", make([0, 3])],
    ["model.norm.weight", make([5])],
  ]);
}

/** A file from a header object and raw data bytes, without any of the writer's checks. */
function rawFile(header: unknown, data: Uint8Array = new Uint8Array(0), headerText?: string): Uint8Array {
  const json = new TextEncoder().encode(headerText ?? JSON.stringify(header));
  const out = new Uint8Array(8 + json.length + data.length);
  new DataView(out.buffer).setBigUint64(0, BigInt(json.length), true);
  out.set(json, 8);
  out.set(data, 8 + json.length);
  return out;
}

const bits32 = (values: Float32Array) => Array.from(new Uint32Array(values.buffer, values.byteOffset, values.length));
const fromBits32 = (...bits: number[]) => new Float32Array(new Uint32Array(bits).buffer);

describe("safetensors round trips", () => {
  test("F32 round trip is bit-exact, keeps shapes, order and metadata, and aligns the data", () => {
    const tensors = sampleTensors(1);
    const bytes = encodeSafetensors(tensors, { metadata: { format: "pt" } });
    const headerLen = Number(new DataView(bytes.buffer).getBigUint64(0, true));
    expect((8 + headerLen) % 8).toBe(0);
    const back = decodeSafetensors(bytes);
    expect(back.metadata).toEqual({ format: "pt" });
    expect([...back.tensors.keys()]).toEqual([...tensors.keys()]);
    for (const [name, t] of tensors) {
      const got = back.tensors.get(name)!;
      expect(got.dtype).toBe("F32");
      expect(got.shape).toEqual(t.shape);
      expect(bits32(got.data)).toEqual(bits32(t.data));
    }
  });

  test("aligned F32 tensors are views on the file's bytes, not copies", () => {
    const bytes = encodeSafetensors(sampleTensors(2));
    const t = decodeSafetensors(bytes).tensors.get("model.embed_tokens.weight")!;
    expect(t.data.buffer).toBe(bytes.buffer);
  });

  test("a misaligned F32 tensor (unpadded header) is still read correctly", () => {
    const values = new Float32Array([1.5, -2.25, 3e-39]);
    const data = new Uint8Array(values.buffer);
    // Header of odd length: the data section starts at an offset not divisible by 4.
    const header = { x: { dtype: "F32", shape: [3], data_offsets: [0, 12] } };
    let text = JSON.stringify(header);
    if ((8 + text.length) % 4 === 0) text += " ";
    const t = decodeSafetensors(rawFile(null, data, text)).tensors.get("x")!;
    expect(bits32(t.data)).toEqual(bits32(values));
  });

  test("BF16 round trip through a file: values are rounded once, to nearest even", () => {
    const dir = tempDir("hf-st-");
    const tensors = sampleTensors(3);
    const path = join(dir, "w.safetensors");
    writeSafetensors(path, tensors, { dtype: "BF16", metadata: { format: "pt" } });
    const back = readSafetensors(path);
    for (const [name, t] of tensors) {
      const got = back.tensors.get(name)!;
      expect(got.dtype).toBe("BF16");
      expect(got.shape).toEqual(t.shape);
      expect(bits32(got.data)).toEqual(bits32(bf16ToFloat32(float32ToBf16(t.data))));
    }
    // A value bf16 holds exactly survives unchanged.
    const exact = new Map([["e", { shape: [3], data: new Float32Array([1, -0.5, 3.140625]) }]]);
    expect(Array.from(decodeSafetensors(encodeSafetensors(exact, { dtype: "BF16" })).tensors.get("e")!.data)).toEqual([1, -0.5, 3.140625]);
  });

  test("F16 tensors are read as float32", () => {
    const halves = new Uint16Array([0x3c00, 0xc000, 0x0001, 0x7c00]);
    const file = rawFile({ h: { dtype: "F16", shape: [2, 2], data_offsets: [0, 8] } }, new Uint8Array(halves.buffer));
    const t = decodeSafetensors(file).tensors.get("h")!;
    expect(t.dtype).toBe("F16");
    expect(Array.from(t.data)).toEqual([1, -2, 2 ** -24, Infinity]);
  });

  test("gaps between tensors are tolerated", () => {
    const data = new Uint8Array(12);
    new Float32Array(data.buffer).set([1, 0, 2]);
    const file = rawFile({ a: { dtype: "F32", shape: [1], data_offsets: [0, 4] }, b: { dtype: "F32", shape: [1], data_offsets: [8, 12] } }, data);
    const t = decodeSafetensors(file).tensors;
    expect(t.get("a")!.data[0]).toBe(1);
    expect(t.get("b")!.data[0]).toBe(2);
  });
});

describe("half-precision conversions", () => {
  test("f16 bit patterns: normals, subnormals, signed zero, infinities, NaN", () => {
    const cases: Array<[number, number]> = [
      [0x3c00, 1],
      [0xc000, -2],
      [0x3555, 0.333251953125],
      [0x7bff, 65504], // largest finite half
      [0x0400, 2 ** -14], // smallest normal
      [0x03ff, 1023 * 2 ** -24], // largest subnormal
      [0x0001, 2 ** -24], // smallest subnormal
      [0x8001, -(2 ** -24)],
      [0x0000, 0],
      [0x7c00, Infinity],
      [0xfc00, -Infinity],
    ];
    const got = f16ToFloat32(new Uint16Array(cases.map(([h]) => h)));
    cases.forEach(([h, want], i) => expect([h, got[i]]).toEqual([h, want]));
    const special = f16ToFloat32(new Uint16Array([0x8000, 0x7e00, 0x7c01, 0xfe00]));
    expect(Object.is(special[0], -0)).toBe(true);
    expect([1, 2, 3].every((i) => Number.isNaN(special[i]))).toBe(true);
  });

  test("bf16 to float32 puts the 16 bits on top", () => {
    const got = bf16ToFloat32(new Uint16Array([0x3f80, 0xc000, 0x7f80, 0xff80, 0x0001, 0x8000, 0x7fc0]));
    expect(Array.from(got.subarray(0, 5))).toEqual([1, -2, Infinity, -Infinity, 2 ** -133]);
    expect(Object.is(got[5], -0)).toBe(true);
    expect(Number.isNaN(got[6])).toBe(true);
  });

  test("float32 to bf16 rounds to nearest, ties to even, and keeps NaN a NaN", () => {
    const cases: Array<[number, number]> = [
      [0x3f800000, 0x3f80], // 1.0 exact
      [0x3f807fff, 0x3f80], // just below half-way: down
      [0x3f808000, 0x3f80], // half-way, even neighbour below: down
      [0x3f808001, 0x3f81], // just above half-way: up
      [0x3f818000, 0x3f82], // half-way, odd below: up to even
      [0xbf818000, 0xbf82], // the same for a negative value
      [0x7f7fffff, 0x7f80], // largest float rounds past bf16's max to infinity
      [0x7f800000, 0x7f80], // infinity
      [0x80000000, 0x8000], // -0
      [0x00008000, 0x0000], // subnormal half-way, even: down
      [0x00018000, 0x0002], // subnormal half-way, odd: up
      [0x7fc00001, 0x7fc0], // quiet NaN keeps its top bits
      [0x7f800001, 0x7fc0], // signalling NaN whose payload is all below: quieted, not infinity
      [0xff800001, 0xffc0],
    ];
    const got = float32ToBf16(fromBits32(...cases.map(([b]) => b)));
    cases.forEach(([b, want], i) => expect([b.toString(16), got[i]!.toString(16)]).toEqual([b.toString(16), want.toString(16)]));
  });
});

describe("float32 to half precision rounds to nearest, ties to even", () => {
  test("every half comes back as itself, and every midpoint between neighbours goes to the even one", () => {
    const halves = new Uint16Array(65536).map((_, i) => i);
    const values = f16ToFloat32(halves);
    const back = float32ToF16(values);
    const finite = (h: number) => (h & 0x7c00) !== 0x7c00;
    for (let h = 0; h < 65536; h++) if (finite(h) && back[h] !== h) throw new Error(`half 0x${h.toString(16)} came back as 0x${back[h]!.toString(16)}`);
    // Midpoints between h and h + 1 (same sign, both finite), exact in float32: the even one wins.
    const lows: number[] = [], mids: number[] = [];
    for (let h = 0; h < 0x7bff; h++) {
      for (const s of [0, 0x8000]) {
        lows.push(h | s);
        mids.push((values[h | s]! + values[(h + 1) | s]!) / 2);
      }
    }
    const rounded = float32ToF16(Float32Array.from(mids));
    lows.forEach((h, i) => {
      const even = (h & 1) === 0 ? h : h + 1;
      if (rounded[i] !== even) throw new Error(`midpoint above 0x${h.toString(16)} rounded to 0x${rounded[i]!.toString(16)}, not 0x${even.toString(16)}`);
    });
  });

  test("overflow, infinities and NaN", () => {
    const cases: Array<[number, number]> = [
      [65504, 0x7bff], // the largest half
      [65519.99, 0x7bff], // below the midpoint to infinity: down
      [65520, 0x7c00], // the midpoint: ties to even, which is infinity
      [1e6, 0x7c00],
      [-Infinity, 0xfc00],
      [2 ** -25, 0x0000], // half the smallest subnormal: ties to even (zero)
      [2 ** -25 * 1.0001, 0x0001],
      [-0, 0x8000],
    ];
    const got = float32ToF16(Float32Array.from(cases.map(([v]) => v)));
    cases.forEach(([v, want], i) => expect([v, got[i]!.toString(16)]).toEqual([v, want.toString(16)]));
    expect(f16ToFloat32(float32ToF16(Float32Array.from([NaN])))[0]).toBeNaN();
  });
});

describe("safetensors errors name the file, the tensor and what is allowed", () => {
  const f32 = (shape: number[], offsets: number[]) => ({ dtype: "F32", shape, data_offsets: offsets });
  const cases: Array<[string, Uint8Array, RegExp]> = [
    ["a file shorter than the length prefix", new Uint8Array(5), /5 bytes, shorter than the 8-byte header length/],
    ["a header length past the end", (() => {
      const b = rawFile({});
      new DataView(b.buffer).setBigUint64(0, 1000n, true);
      return b;
    })(), /header length is 1000 bytes but only 2 bytes follow it \(truncated/],
    ["a header that is not JSON", rawFile(null, undefined, "{nope"), /header is not valid UTF-8 JSON/],
    ["a header that is not an object", rawFile([1, 2]), /header is not a JSON object/],
    ["non-string metadata", rawFile({ __metadata__: { format: 1 } }), /__metadata__\.format is 1; metadata values must be strings/],
    ["an entry that is not an object", rawFile({ w: 3 }), /tensor "w": its header entry is not an object/],
    ["an unknown dtype", rawFile({ w: { dtype: "F99", shape: [1], data_offsets: [0, 4] } }, new Uint8Array(4)), /tensor "w": dtype "F99" is not a safetensors dtype/],
    ["a negative dimension", rawFile({ w: f32([-1], [0, 4]) }, new Uint8Array(4)), /tensor "w": shape \[-1\] is not an array of non-negative integers/],
    ["offsets that are not a pair", rawFile({ w: f32([1], [0]) }, new Uint8Array(4)), /tensor "w": data_offsets \[0\] is not a pair/],
    ["offsets past the data (truncated data)", rawFile({ w: f32([4], [0, 16]) }, new Uint8Array(8)), /tensor "w": data_offsets \[0, 16\] are out of range: the data section holds 8 bytes/],
    ["begin after end", rawFile({ w: f32([0], [8, 4]) }, new Uint8Array(8)), /tensor "w": data_offsets \[8, 4\] are out of range/],
    ["a byte length that does not match the shape", rawFile({ w: f32([4], [0, 12]) }, new Uint8Array(16)), /tensor "w": shape \[4\] of F32 needs 16 bytes but data_offsets \[0, 12\] span 12/],
    ["overlapping tensors", rawFile({ a: f32([2], [0, 8]), b: f32([2], [4, 12]) }, new Uint8Array(12)), /tensor "b": data_offsets \[4, 12\] overlap those of "a" \[0, 8\]/],
    ["an unsupported dtype", rawFile({ ids: { dtype: "I64", shape: [2], data_offsets: [0, 16] } }, new Uint8Array(16)), /tensor "ids": dtype I64 is not supported; readable dtypes are F32, F16, BF16/],
  ];
  for (const [what, bytes, message] of cases) {
    test(`refuses ${what}`, () => {
      expect(() => decodeSafetensors(bytes, "w.safetensors")).toThrow(SafetensorsError);
      expect(() => decodeSafetensors(bytes, "w.safetensors")).toThrow(message);
      expect(() => decodeSafetensors(bytes, "w.safetensors")).toThrow(/^w\.safetensors: /);
    });
  }

  test("a file error names its path; a missing file says it cannot be read", () => {
    const dir = tempDir("hf-st-");
    const path = join(dir, "bad.safetensors");
    writeFileSync(path, rawFile({ ids: { dtype: "I32", shape: [1], data_offsets: [0, 4] } }, new Uint8Array(4)));
    expect(() => readSafetensors(path)).toThrow(`${path}: tensor "ids": dtype I32 is not supported`);
    expect(() => readSafetensors(join(dir, "none.safetensors"))).toThrow(/none\.safetensors: cannot read the file/);
  });

  test("a path that is not a regular file is refused by name before anything is read", () => {
    const dir = tempDir("hf-st-");
    const zero = join(dir, "zero.safetensors");
    symlinkSync("/dev/zero", zero);
    expect(() => readSafetensors(zero)).toThrow(`${zero}: cannot read the file (${zero} is a character device; expected a regular file)`);
    const fifo = join(dir, "fifo.safetensors");
    execFileSync("mkfifo", [fifo]);
    expect(() => readSafetensors(fifo)).toThrow(`${fifo} is a FIFO (named pipe); expected a regular file`);
    expect(() => readSafetensors(dir)).toThrow(`${dir} is a folder; expected a regular file`);
  });

  test("a symlink to a regular file is read (the Hugging Face cache links files to blobs)", () => {
    const dir = tempDir("hf-st-");
    const blob = join(dir, "blob");
    writeSafetensors(blob, sampleTensors(6));
    symlinkSync(blob, join(dir, "model.safetensors"));
    expect([...readSafetensors(join(dir, "model.safetensors")).tensors.keys()]).toEqual([...sampleTensors(6).keys()]);
  });

  test("a file larger than its header says is refused from the header alone", () => {
    // 16 GiB of holes after one 4-byte tensor: refused by size, never read (no memory is spent on it).
    const path = join(tempDir("hf-st-"), "sparse.safetensors");
    writeFileSync(path, rawFile({ w: { dtype: "F32", shape: [1], data_offsets: [0, 4] } }, new Uint8Array(4)));
    truncateSync(path, 16 * 2 ** 30);
    expect(() => readSafetensors(path)).toThrow(`${path}: the data section holds ${16 * 2 ** 30 - 8 - 54} bytes but the header's data_offsets end at 4`);
  });

  test("bytes after the last tensor are refused, as the reference does", () => {
    const file = rawFile({ w: { dtype: "F32", shape: [1], data_offsets: [0, 4] } }, new Uint8Array(12));
    expect(() => decodeSafetensors(file, "w.safetensors")).toThrow("w.safetensors: the data section holds 12 bytes but the header's data_offsets end at 4: 8 bytes belong to no tensor");
  });

  test("a truncated copy of a valid file is refused", () => {
    const bytes = encodeSafetensors(sampleTensors(4));
    expect(() => decodeSafetensors(bytes.subarray(0, bytes.length - 3), "cut.safetensors")).toThrow(/are out of range: the data section holds/);
  });

  test("the writer refuses a shape that does not match the data, the reserved name and other dtypes", () => {
    const bad = new Map([["w", { shape: [2, 2], data: new Float32Array(3) }]]);
    expect(() => encodeSafetensors(bad)).toThrow('tensor "w": shape [2, 2] does not match its 3 values');
    const reserved = new Map([["__metadata__", { shape: [1], data: new Float32Array(1) }]]);
    expect(() => encodeSafetensors(reserved)).toThrow(/reserved for the header's metadata/);
    expect(() => encodeSafetensors(new Map(), { dtype: "F64" as "F32" })).toThrow('cannot write dtype "F64"; writable dtypes are F32, BF16, F16');
  });
});
