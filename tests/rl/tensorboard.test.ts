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
import { WriteError } from "../../native/files.ts";
import { crc32c, maskCrc } from "../../runtime/rl/loggers/crc32c.ts";
import { FILE_VERSION, TensorBoardLogger } from "../../runtime/rl/loggers/tensorboard.ts";
import { removeTempDirs, tempDir } from "../helpers/tmp.ts";
import { crc32cBitwise, masked, readRecords, type Field, type Message, parse, only, bytesOf, get, type ReadValue, type ReadEvent, readEvent, readValue, eventFiles, readEvents } from "../helpers/tfevents.ts";

afterAll(removeTempDirs);

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
