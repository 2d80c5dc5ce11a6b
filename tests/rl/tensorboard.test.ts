/**
 * TensorBoard event files: read back by a decoder written here, independently of the writer
 * (its own bit-at-a-time CRC32C, its own protobuf parser), which checks both CRCs of every
 * record, the Event/Summary/TensorProto field numbers, and that scalars and text round-trip.
 *
 * Not cross-checked against TensorBoard itself: no Debian package provides it
 * (`apt-cache policy python3-tensorboard` finds none) and PyPI is not reachable here. Where
 * `protoc` is installed (Debian's protobuf-compiler), Google's own parser also reads every record.
 */
import { afterAll, describe, expect, spyOn, test } from "bun:test";
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import { join } from "node:path";
import { WriteError } from "../../runtime/files.ts";
import { crc32c, maskCrc } from "../../runtime/rl/loggers/crc32c.ts";
import { FILE_VERSION, TensorBoardLogger } from "../../runtime/rl/loggers/tensorboard.ts";
import { removeTempDirs, tempDir } from "../helpers/tmp.ts";

afterAll(removeTempDirs);

// ---- an independent reader -------------------------------------------------------------------

/** Bit at a time, no table: shares nothing with the writer's CRC32C. */
function crc32cBitwise(data: Uint8Array): number {
  let crc = 0xffffffff;
  for (const byte of data) {
    crc ^= byte;
    for (let k = 0; k < 8; k++) crc = (crc >>> 1) ^ (0x82f63b78 & -(crc & 1));
  }
  return ~crc >>> 0;
}
const masked = (crc: number) => ((((crc >>> 15) | (crc << 17)) >>> 0) + 0xa282ead8) >>> 0;

/** The payloads of every TFRecord in `file`, after checking both CRCs of each and that none is torn. */
function readRecords(file: Uint8Array): Uint8Array[] {
  const view = new DataView(file.buffer, file.byteOffset, file.byteLength);
  const records: Uint8Array[] = [];
  let off = 0;
  while (off < file.length) {
    expect(file.length - off).toBeGreaterThanOrEqual(16);
    const length = Number(view.getBigUint64(off, true));
    expect(view.getUint32(off + 8, true)).toBe(masked(crc32cBitwise(file.subarray(off, off + 8))));
    const data = file.subarray(off + 12, off + 12 + length);
    expect(data.length).toBe(length);
    expect(view.getUint32(off + 12 + length, true)).toBe(masked(crc32cBitwise(data)));
    records.push(data);
    off += 16 + length;
  }
  expect(off).toBe(file.length);
  return records;
}

type Field = { wire: 0; n: bigint } | { wire: 1 | 2 | 5; bytes: Uint8Array };
type Message = Map<number, Field[]>;

/** A protobuf message as field number → occurrences, for wire types 0, 1, 2 and 5. */
function parse(buf: Uint8Array): Message {
  const msg: Message = new Map();
  let off = 0;
  const readVarint = () => {
    let v = 0n;
    for (let shift = 0n; ; shift += 7n) {
      const b = buf[off++]!;
      v |= BigInt(b & 0x7f) << shift;
      if (!(b & 0x80)) return v;
    }
  };
  const take = (n: number) => buf.subarray(off, (off += n));
  while (off < buf.length) {
    const key = Number(readVarint());
    const wire = key & 7;
    let field: Field;
    if (wire === 0) field = { wire, n: readVarint() };
    else if (wire === 1) field = { wire, bytes: take(8) };
    else if (wire === 5) field = { wire, bytes: take(4) };
    else if (wire === 2) field = { wire, bytes: take(Number(readVarint())) };
    else throw new Error(`unexpected wire type ${wire}`);
    msg.set(key >>> 3, [...(msg.get(key >>> 3) ?? []), field]);
  }
  expect(off).toBe(buf.length);
  return msg;
}

function only(msg: Message, n: number, wire: Field["wire"]): Field | undefined {
  const fields = msg.get(n) ?? [];
  expect(fields.length).toBeLessThanOrEqual(1);
  if (fields[0]) expect(fields[0].wire).toBe(wire);
  return fields[0];
}
const bytesOf = (f: Field | undefined) => (f && f.wire !== 0 ? f.bytes : undefined);
const get = {
  int: (m: Message, n: number) => { const f = only(m, n, 0); return f?.wire === 0 ? BigInt.asIntN(64, f.n) : 0n; },
  double: (m: Message, n: number) => { const b = bytesOf(only(m, n, 1)); return b ? new DataView(b.buffer, b.byteOffset, 8).getFloat64(0, true) : undefined; },
  float: (m: Message, n: number) => { const b = bytesOf(only(m, n, 5)); return b ? new DataView(b.buffer, b.byteOffset, 4).getFloat32(0, true) : undefined; },
  string: (m: Message, n: number) => { const b = bytesOf(only(m, n, 2)); return b ? new TextDecoder("utf-8", { fatal: true }).decode(b) : undefined; },
  message: (m: Message, n: number) => { const b = bytesOf(only(m, n, 2)); return b ? parse(b) : undefined; },
};

interface ReadValue { tag?: string; simple?: number; plugin?: string; dataClass?: bigint; dtype?: bigint; dims?: number; strings?: string[] }
interface ReadEvent { wallTime?: number; step: bigint; fileVersion?: string; values: ReadValue[] }

/** Event: wall_time 1, step 2, file_version 3, summary 5 → Summary.value 1 → Value fields. */
function readEvent(data: Uint8Array): ReadEvent {
  const ev = parse(data);
  const summary = get.message(ev, 5);
  return {
    wallTime: get.double(ev, 1),
    step: get.int(ev, 2),
    fileVersion: get.string(ev, 3),
    values: (summary?.get(1) ?? []).map((f) => readValue(parse(bytesOf(f)!))),
  };
}

/** Value: tag 1, simple_value 2, tensor 8 (dtype 1, shape 2 with dims 2, string_val 8), metadata 9. */
function readValue(v: Message): ReadValue {
  const metadata = get.message(v, 9);
  const tensor = get.message(v, 8);
  const shape = tensor && get.message(tensor, 2);
  return {
    tag: get.string(v, 1),
    simple: get.float(v, 2),
    plugin: metadata && get.string(get.message(metadata, 1)!, 1),
    dataClass: metadata && get.int(metadata, 4),
    dtype: tensor && get.int(tensor, 1),
    dims: shape && (shape.get(2) ?? []).length,
    strings: tensor && (tensor.get(8) ?? []).map((f) => new TextDecoder().decode(bytesOf(f))),
  };
}

const eventFiles = (dir: string) => fs.readdirSync(dir).filter((n) => n.startsWith("events.out.tfevents.")).sort();
const readEvents = (path: string) => readRecords(new Uint8Array(fs.readFileSync(path))).map(readEvent);

// ---- the tests -------------------------------------------------------------------------------

const NOW_MS = 1_700_000_000_250;
const fixedClock = { now: () => NOW_MS, hostname: "trainer-0" };

describe("CRC32C", () => {
  const ascii = (s: string) => new TextEncoder().encode(s);
  test("matches published test vectors (RFC 3720 B.4 and the usual check value)", () => {
    expect(crc32c(ascii("123456789"))).toBe(0xe3069283);
    expect(crc32c(new Uint8Array(0))).toBe(0);
    expect(crc32c(new Uint8Array(32))).toBe(0x8a9136aa);
    expect(crc32c(new Uint8Array(32).fill(0xff))).toBe(0x62a8ab43);
    expect(crc32c(Uint8Array.from({ length: 32 }, (_, i) => i))).toBe(0x46dd794e);
    expect(crc32c(Uint8Array.from({ length: 32 }, (_, i) => 31 - i))).toBe(0x113fdb5c);
  });

  test("agrees with the bit-at-a-time reference on seeded random data, masked too", () => {
    let seed = 12345;
    const next = () => (seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) >>> 24;
    for (let len = 0; len < 300; len += 37) {
      const data = Uint8Array.from({ length: len }, next);
      expect(crc32c(data)).toBe(crc32cBitwise(data));
      expect(maskCrc(crc32c(data))).toBe(masked(crc32cBitwise(data)));
    }
  });
});

describe("TensorBoardLogger", () => {
  test("scalars and text round-trip through an independent reader", () => {
    const dir = join(tempDir("revenant-tb-"), "tb");
    const tb = new TensorBoardLogger(dir, fixedClock);
    const step1 = { "actor/kl": 0.0125, "critic/score/mean": -0.75, "perf/throughput": 18234.5 };
    tb.scalars(1, step1);
    tb.scalars(2, { "actor/kl": 0.02, "val/score": 0.5 });
    const markdown = "| prompt | response |\n|---|---|\n| 12+7 | 19 ✓ |";
    tb.text(2, "samples", markdown);
    tb.close();

    expect(eventFiles(dir)).toEqual(["events.out.tfevents.1700000000.trainer-0"]);
    expect(tb.path).toBe(join(dir, "events.out.tfevents.1700000000.trainer-0"));
    const events = readEvents(tb.path);
    expect(events).toHaveLength(4);
    expect(events[0]).toEqual({ wallTime: NOW_MS / 1000, step: 0n, fileVersion: FILE_VERSION, values: [] });
    expect(events.every((e) => e.wallTime === NOW_MS / 1000)).toBe(true);

    const scalars = (e: ReadEvent) => Object.fromEntries(e.values.map((v) => [v.tag, v.simple]));
    expect(events[1]!.step).toBe(1n);
    expect(scalars(events[1]!)).toEqual(Object.fromEntries(Object.entries(step1).map(([k, v]) => [k, Math.fround(v)])));
    expect(events[2]!.step).toBe(2n);
    expect(scalars(events[2]!)).toEqual({ "actor/kl": Math.fround(0.02), "val/score": 0.5 });

    const [text] = events[3]!.values;
    expect(events[3]!.step).toBe(2n);
    expect(text).toEqual({ tag: "samples", simple: undefined, plugin: "text", dataClass: 2n, dtype: 7n, dims: 0, strings: [markdown] });
  });

  test("steps are int64: a large step and a negative one decode exactly", () => {
    const tb = new TensorBoardLogger(tempDir("revenant-tb-"), fixedClock);
    tb.scalars(2 ** 40 + 3, { x: 1 });
    tb.scalars(-1, { x: 2 });
    tb.close();
    expect(readEvents(tb.path).map((e) => e.step)).toEqual([0n, 2n ** 40n + 3n, -1n]);
  });

  test("an empty metrics object writes nothing; a fractional step is refused", () => {
    const tb = new TensorBoardLogger(tempDir("revenant-tb-"), fixedClock);
    tb.scalars(1, {});
    expect(() => tb.scalars(1.5, { x: 1 })).toThrow(RangeError);
    tb.close();
    expect(readEvents(tb.path)).toHaveLength(1);
  });

  test("two loggers opened in one second on one host write separate files", () => {
    const dir = tempDir("revenant-tb-");
    const a = new TensorBoardLogger(dir, fixedClock);
    const b = new TensorBoardLogger(dir, fixedClock);
    a.scalars(1, { a: 1 });
    b.scalars(1, { b: 2 });
    a.close();
    b.close();
    expect(eventFiles(dir)).toEqual(["events.out.tfevents.1700000000.trainer-0", "events.out.tfevents.1700000000.trainer-0.2"]);
    expect(readEvents(a.path)[1]!.values[0]!.tag).toBe("a");
    expect(readEvents(b.path)[1]!.values[0]!.tag).toBe("b");
  });

  test("a folder that cannot be made throws a WriteError naming it", () => {
    const file = join(tempDir("revenant-tb-"), "not-a-dir");
    fs.writeFileSync(file, "");
    expect(() => new TensorBoardLogger(join(file, "tb"), fixedClock)).toThrow(WriteError);
  });

  test("a failed write throws, leaves the file whole, and the next step still lands", () => {
    const tb = new TensorBoardLogger(tempDir("revenant-tb-"), fixedClock);
    tb.scalars(1, { x: 1 });
    // A short write followed by ENOSPC: half a record reaches the file before the error.
    const real = fs.writeSync;
    const spy = spyOn(fs, "writeSync")
      .mockImplementationOnce(((fd: number, buf: Uint8Array, off: number, _len: number, pos: number) => real(fd, buf, off, 10, pos)) as typeof fs.writeSync)
      .mockImplementationOnce(() => {
        throw Object.assign(new Error("no space left on device"), { code: "ENOSPC" });
      });
    let thrown: unknown;
    try {
      tb.scalars(2, { x: 2 });
    } catch (e) {
      thrown = e;
    } finally {
      spy.mockRestore();
    }
    expect(thrown).toBeInstanceOf(WriteError);
    expect((thrown as WriteError).code).toBe("ENOSPC");
    expect((thrown as WriteError).path).toBe(tb.path);
    expect(readEvents(tb.path).map((e) => e.step)).toEqual([0n, 1n]);

    tb.scalars(3, { x: 3 });
    tb.close();
    expect(readEvents(tb.path).map((e) => e.step)).toEqual([0n, 1n, 3n]);
  });

  test("a closed logger refuses writes; closing twice is harmless", () => {
    const tb = new TensorBoardLogger(tempDir("revenant-tb-"), fixedClock);
    tb.close();
    tb.close();
    expect(() => tb.scalars(1, { x: 1 })).toThrow(/closed/);
    expect(() => tb.text(1, "t", "md")).toThrow(/closed/);
  });

  const protoc = Bun.which("protoc");
  if (!protoc) console.log("skipped: protoc not found (Debian package protobuf-compiler); the cross-check with Google's protobuf parser does not run");
  test.skipIf(!protoc)("Google's protobuf parser (protoc --decode_raw) reads every record the same way", () => {
    const tb = new TensorBoardLogger(tempDir("revenant-tb-"), fixedClock);
    tb.scalars(7, { "actor/kl": 0.5 });
    tb.text(7, "samples", "| 12+7 | 19 |"); // "|" is not a valid field key, so protoc cannot mistake it for a message
    tb.close();
    const decoded = readRecords(new Uint8Array(fs.readFileSync(tb.path))).map((record) => {
      const run = spawnSync(protoc!, ["--decode_raw"], { input: record });
      expect(run.status).toBe(0);
      return run.stdout.toString().replace(/\s+/g, " ").trim();
    });
    // Doubles and floats print as the hex of their bits: 0.5 is 0x3f000000 as a float32.
    const wall = `0x${Buffer.from(new Float64Array([NOW_MS / 1000]).buffer).readBigUInt64LE().toString(16).padStart(16, "0")}`;
    expect(decoded).toEqual([
      `1: ${wall} 2: 0 3: "brain.Event:2"`,
      `1: ${wall} 2: 7 5 { 1 { 1: "actor/kl" 2: 0x3f000000 } }`,
      `1: ${wall} 2: 7 5 { 1 { 1: "samples" 9 { 1 { 1: "text" } 4: 2 } 8 { 1: 7 2: "" 8: "| 12+7 | 19 |" } } }`,
    ]);
  });
});
