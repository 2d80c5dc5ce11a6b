/**
 * Wire frames: FrameEncoder/FrameDecoder round trips (typed arrays as zero-copy, 8-aligned views
 * of one frame buffer), stream reassembly at every split point, and every ProtocolError the
 * decoder and asMessage raise. Random inputs are seeded; a failure prints the seed.
 */
import { describe, expect, test } from "bun:test";
import { encode as msgpackEncode, ExtData } from "@msgpack/msgpack";
import { Channel } from "../../runtime/core/ipc/channel.ts";
import { FrameDecoder, FrameEncoder, HEADER_BYTES, MAGIC, ProtocolError, VERSION, DEFAULT_MAX_FRAME_BYTES, ZERO_COPY_MIN_BYTES } from "../../runtime/core/ipc/frame.ts";
import { asMessage } from "../../runtime/core/ipc/messages.ts";
import { Rng } from "../../runtime/core/rng.ts";
import { concat, frameOf } from "../helpers/frames.ts";

const SEED = Number(process.env.REVENANT_TEST_SEED ?? 20261121);

/** Runs `body` with a seeded generator; a failure names the seed that reproduces it. */
function seeded(seed: number, body: (rng: Rng) => void): void {
  try {
    body(new Rng(seed));
  } catch (e) {
    (e as Error).message = `[seed ${seed}; rerun with REVENANT_TEST_SEED=${seed}] ${(e as Error).message}`;
    throw e;
  }
}



interface RawFrame {
  body: Uint8Array;
  payload?: Uint8Array;
  magic?: number;
  version?: number;
  flags?: number;
  bodyLength?: number;
  payloadLength?: number;
}

/** Builds a frame by hand, so any header field can lie. */
function rawFrame(f: RawFrame): Uint8Array {
  const payload = f.payload ?? new Uint8Array(0);
  const head = Math.ceil((HEADER_BYTES + f.body.byteLength) / 8) * 8;
  const out = new Uint8Array(head + payload.byteLength);
  const view = new DataView(out.buffer);
  view.setUint32(0, f.magic ?? MAGIC, true);
  view.setUint16(4, f.version ?? VERSION, true);
  view.setUint16(6, f.flags ?? 0, true);
  view.setUint32(8, f.bodyLength ?? f.body.byteLength, true);
  view.setUint32(12, f.payloadLength ?? payload.byteLength, true);
  out.set(f.body, HEADER_BYTES);
  out.set(payload, head);
  return out;
}

/** The msgpack extension the encoder writes for a typed array: dtype u8, offset u32, length u32. */
function tensorRef(dtype: number, offset: number, length: number): ExtData {
  const data = new Uint8Array(9);
  const view = new DataView(data.buffer);
  view.setUint8(0, dtype);
  view.setUint32(1, offset, true);
  view.setUint32(5, length, true);
  return new ExtData(1, data);
}

function expectProtocolError(run: () => unknown, pattern: RegExp): ProtocolError {
  let caught: unknown;
  try {
    run();
  } catch (e) {
    caught = e;
  }
  expect(caught).toBeInstanceOf(ProtocolError);
  expect((caught as Error).message).toMatch(pattern);
  return caught as ProtocolError;
}

function sampleMessage(rng: Rng) {
  const f32 = Float32Array.from({ length: 1 + rng.int(33) }, () => rng.next() * 2 - 1);
  const f64 = Float64Array.from({ length: 1 + rng.int(17) }, () => rng.next() * 1e6);
  const i32 = Int32Array.from({ length: rng.int(9) }, () => (rng.nextU32() | 0));
  const u8 = Uint8Array.from({ length: 1 + rng.int(13) }, () => rng.int(256));
  return {
    t: "call" as const,
    id: 1 + rng.int(1000),
    method: "step",
    deadline: 30,
    args: [u8, { grads: f32, meta: { scale: f64, ids: i32, name: "layer" } }, [f64, "x", 3], new Uint8Array(0)],
  };
}

describe("frame round trip", () => {
  test("typed arrays nested in args and maps arrive equal, as their own dtype", () => {
    for (let seed = SEED; seed < SEED + 50; seed++) {
      seeded(seed, (rng) => {
        const sent = sampleMessage(rng);
        const [got] = new FrameDecoder().push(frameOf(sent)) as [typeof sent];
        expect(asMessage(got)).toBe(got as never);
        expect(got).toEqual(sent);
        const [u8, nested, list, empty] = got.args as [Uint8Array, { grads: Float32Array; meta: { scale: Float64Array; ids: Int32Array } }, [Float64Array], Uint8Array];
        expect(u8).toBeInstanceOf(Uint8Array);
        expect(nested.grads).toBeInstanceOf(Float32Array);
        expect(nested.meta.scale).toBeInstanceOf(Float64Array);
        expect(nested.meta.ids).toBeInstanceOf(Int32Array);
        expect(list[0]).toBeInstanceOf(Float64Array);
        expect(empty.length).toBe(0);
      });
    }
  });

  test("received arrays are 8-aligned views of one frame buffer (no copy)", () => {
    seeded(SEED, (rng) => {
      const sent = sampleMessage(rng);
      const bytes = frameOf(sent);
      const [got] = new FrameDecoder().push(bytes) as [typeof sent];
      const u8 = got.args[0] as Uint8Array;
      const { grads, meta } = got.args[1] as { grads: Float32Array; meta: { scale: Float64Array; ids: Int32Array } };
      const arrays = [u8, grads, meta.scale, meta.ids];
      for (const a of arrays) {
        expect(a.byteOffset % 8).toBe(0);
        expect(a.buffer).toBe(grads.buffer);
      }
      // The one buffer is the frame less its header: the single copy out of the socket chunks.
      expect(grads.buffer.byteLength).toBe(bytes.byteLength - HEADER_BYTES);
      expect(grads.buffer).not.toBe(bytes.buffer);
      // A view, not a copy: writing through one decoded array shows in the frame buffer.
      grads[0] = 12345;
      expect(new Float32Array(grads.buffer, grads.byteOffset, 1)[0]).toBe(12345);
    });
  });

  test("the encoder sends large typed arrays without copying them", () => {
    const big = new Float32Array(ZERO_COPY_MIN_BYTES / 4).fill(1.5);
    const chunks = new FrameEncoder().encode({ t: "result", id: 1, value: big });
    expect(chunks.some((c) => c.buffer === big.buffer)).toBe(true);
  });

  test("small typed arrays are copied in beside the header: a frame of many is one chunk", () => {
    const prompts = Array.from({ length: 128 }, (_, i) => new Int32Array(i % 7 + 1).fill(i));
    const chunks = new FrameEncoder().encode({ t: "call", id: 3, method: "generate", args: [prompts], deadline: 1 });
    expect(chunks.length).toBe(1);
    const [got] = new FrameDecoder().push(chunks[0]!) as [{ args: [Int32Array[]] }];
    expect(got.args[0].map((p) => [...p])).toEqual(prompts.map((p) => [...p]));
  });

  test("large arrays between small ones: small ones and paddings copied, large ones sent as they are", () => {
    seeded(SEED + 7, (rng) => {
      for (let trial = 0; trial < 20; trial++) {
        const arrays: (Float32Array | Uint8Array | Int32Array)[] = [];
        for (let i = 0, n = 1 + rng.int(6); i < n; i++) {
          const big = rng.next() < 0.4;
          const len = big ? ZERO_COPY_MIN_BYTES + rng.int(9) : rng.int(300);
          const kind = rng.int(3);
          const a = kind === 0 ? new Uint8Array(len) : kind === 1 ? new Float32Array(Math.ceil(len / 4)) : new Int32Array(Math.ceil(len / 4));
          for (let j = 0; j < a.length; j++) a[j] = rng.int(200);
          arrays.push(a);
        }
        const chunks = new FrameEncoder().encode({ t: "result", id: trial + 1, value: arrays });
        for (const a of arrays) {
          const sentAsIs = chunks.some((c) => c.buffer === a.buffer);
          expect(sentAsIs).toBe(a.byteLength >= ZERO_COPY_MIN_BYTES);
        }
        const [got] = new FrameDecoder().push(concat(chunks)) as [{ value: typeof arrays }];
        expect(got.value.map((a) => [a.constructor.name, ...a])).toEqual(arrays.map((a) => [a.constructor.name, ...a]));
      }
    });
  });

  test("a Buffer travels as a Uint8Array", () => {
    const sent = { t: "result", id: 2, value: Buffer.from("revenant") };
    const [got] = new FrameDecoder().push(frameOf(sent)) as [{ value: Uint8Array }];
    expect(got.value).toBeInstanceOf(Uint8Array);
    expect(new TextDecoder().decode(got.value)).toBe("revenant");
  });

  test("a frame split at every byte boundary decodes the same", () => {
    seeded(SEED + 1, (rng) => {
      const sent = sampleMessage(rng);
      const bytes = frameOf(sent);
      for (let cut = 0; cut <= bytes.byteLength; cut++) {
        const decoder = new FrameDecoder();
        const first = decoder.push(bytes.subarray(0, cut));
        const second = decoder.push(bytes.subarray(cut));
        expect([...first, ...second]).toEqual([sent]);
        expect(first.length).toBe(cut === bytes.byteLength ? 1 : 0);
      }
      const byteByByte = new FrameDecoder();
      const out: unknown[] = [];
      for (let i = 0; i < bytes.byteLength; i++) out.push(...byteByByte.push(bytes.subarray(i, i + 1)));
      expect(out).toEqual([sent]);
    });
  });

  test("several frames in one chunk, and a chunk ending mid-frame", () => {
    seeded(SEED + 2, (rng) => {
      const sent = Array.from({ length: 7 }, (_, i) => (i % 2 ? sampleMessage(rng) : { t: "ping", id: i }));
      const stream = concat(sent.map(frameOf));
      const whole = new FrameDecoder().push(stream);
      expect(whole).toEqual(sent);
      for (let trial = 0; trial < 20; trial++) {
        const decoder = new FrameDecoder();
        const out: unknown[] = [];
        let at = 0;
        while (at < stream.byteLength) {
          const n = 1 + rng.int(200);
          out.push(...decoder.push(stream.subarray(at, at + n)));
          at += n;
        }
        expect(out).toEqual(sent);
      }
    });
  });

  test("an empty chunk yields nothing", () => {
    expect(new FrameDecoder().push(new Uint8Array(0))).toEqual([]);
  });
});

describe("frame rejection", () => {
  const body = msgpackEncode({ t: "ping", id: 1 });

  test("bad magic", () => {
    expectProtocolError(() => new FrameDecoder().push(rawFrame({ body, magic: 0x12345678 })), /bad magic 0x12345678/);
  });

  test("wrong version", () => {
    expectProtocolError(() => new FrameDecoder().push(rawFrame({ body, version: 2 })), /protocol version 2/);
  });

  test("nonzero flags: each of the 16 bits alone is refused (none is defined yet)", () => {
    for (let bit = 0; bit < 16; bit++) {
      const flags = 1 << bit;
      expectProtocolError(() => new FrameDecoder().push(rawFrame({ body, flags })), new RegExp(`flags 0x${flags.toString(16)};`));
    }
  });

  test("body length 0", () => {
    expectProtocolError(() => new FrameDecoder().push(rawFrame({ body: new Uint8Array(0) })), /empty frame body/);
  });

  test("payload length not a multiple of 8", () => {
    expectProtocolError(() => new FrameDecoder().push(rawFrame({ body, payloadLength: 12 })), /payload length 12 is not a multiple of 8/);
  });

  test("a frame larger than the decoder's limit, found from the header alone", () => {
    const decoder = new FrameDecoder(1024);
    const header = rawFrame({ body, payloadLength: 4096 }).subarray(0, HEADER_BYTES);
    expectProtocolError(() => decoder.push(header), /frame of \d+ bytes exceeds the 1024-byte limit/);
  });

  test("a frame of exactly the limit is accepted", () => {
    const bytes = frameOf({ t: "result", id: 1, value: new Float64Array(8) });
    expect(new FrameDecoder(bytes.byteLength).push(bytes)).toHaveLength(1);
    expectProtocolError(() => new FrameDecoder(bytes.byteLength - 8).push(bytes), /exceeds/);
  });

  test("undecodable msgpack body", () => {
    // 0xc1 is the one byte msgpack never uses.
    expectProtocolError(() => new FrameDecoder().push(rawFrame({ body: new Uint8Array([0xc1]) })), /undecodable frame body/);
  });

  test("trailing bytes after the msgpack value", () => {
    const extra = concat([body, new Uint8Array([0x01])]);
    expectProtocolError(() => new FrameDecoder().push(rawFrame({ body: extra })), /undecodable frame body/);
  });

  test("tensor reference outside the payload area", () => {
    const ref = msgpackEncode({ t: "result", id: 1, value: tensorRef(0, 0, 4) });
    expectProtocolError(() => new FrameDecoder().push(rawFrame({ body: ref, payload: new Uint8Array(8) })), /float32\[4\] at payload offset 0 .*outside the 8-byte payload area/);
    const far = msgpackEncode({ t: "result", id: 1, value: tensorRef(3, 0xfffffff8, 1) });
    expectProtocolError(() => new FrameDecoder().push(rawFrame({ body: far, payload: new Uint8Array(8) })), /outside/);
    const huge = msgpackEncode({ t: "result", id: 1, value: tensorRef(1, 0, 0xffffffff) });
    expectProtocolError(() => new FrameDecoder().push(rawFrame({ body: huge, payload: new Uint8Array(8) })), /float64\[4294967295\]/);
  });

  test("misaligned tensor offset", () => {
    const ref = msgpackEncode({ t: "result", id: 1, value: tensorRef(3, 4, 1) });
    expectProtocolError(() => new FrameDecoder().push(rawFrame({ body: ref, payload: new Uint8Array(16) })), /misaligned/);
  });

  test("unknown tensor dtype", () => {
    const ref = msgpackEncode({ t: "result", id: 1, value: tensorRef(9, 0, 1) });
    expectProtocolError(() => new FrameDecoder().push(rawFrame({ body: ref, payload: new Uint8Array(8) })), /unknown tensor dtype 9; known: float32, float64, int32, uint8/);
  });

  test("tensor reference of the wrong size", () => {
    const ref = msgpackEncode({ t: "result", id: 1, value: new ExtData(1, new Uint8Array(5)) });
    expectProtocolError(() => new FrameDecoder().push(rawFrame({ body: ref, payload: new Uint8Array(8) })), /tensor reference of 5 bytes, expected 9/);
  });

  test("after an error the decoder stays failed, even for valid frames", () => {
    const decoder = new FrameDecoder();
    const first = expectProtocolError(() => decoder.push(rawFrame({ body, magic: 0 })), /bad magic/);
    const valid = frameOf({ t: "ping", id: 2 });
    let again: unknown;
    try {
      decoder.push(valid);
    } catch (e) {
      again = e;
    }
    expect(again).toBe(first);
    expect(() => decoder.push(new Uint8Array(0))).toThrow(ProtocolError);
  });

  test("an error in a later frame of a chunk fails the chunk", () => {
    const decoder = new FrameDecoder();
    const stream = concat([frameOf({ t: "ping", id: 1 }), rawFrame({ body, version: 9 })]);
    expectProtocolError(() => decoder.push(stream), /protocol version 9/);
  });

  test("the encoder refuses a message over its limit, with RangeError", () => {
    const encoder = new FrameEncoder(1024);
    expect(() => encoder.encode({ t: "result", id: 1, value: new Float32Array(1024) })).toThrow(RangeError);
    expect(() => encoder.encode({ t: "result", id: 1, value: new Float32Array(1024) })).toThrow(/exceeds the 1024-byte frame limit/);
    // The encoder is still usable afterwards.
    const ok = concat(encoder.encode({ t: "result", id: 1, value: new Float32Array(4) }));
    expect(new FrameDecoder().push(ok)).toHaveLength(1);
  });
});

// Fault injection on the receiving side: bytes read as if the peer had written them. A peer
// writes whole frames, so its bytes never land inside one of its frames; interjected bytes don't either.
describe("bytes interjected between frames", () => {
  const NOT_A_FRAME = new TextEncoder().encode("garbage, not a frame");
  const result = { t: "result", id: 1, value: Float32Array.from([1, 2, 3, 4, 5]) };
  const frame = frameOf(result);

  test("at a frame boundary, bytes that are not a frame are a protocol error at once", () => {
    const decoder = new FrameDecoder();
    expect(decoder.push(frame)).toEqual([result]);
    expectProtocolError(() => decoder.interject(NOT_A_FRAME), /bad magic 0x62726167/);
  });

  test("inside a frame, at every split point, they are read right after it: the frame is intact", () => {
    const ping = { t: "ping", id: 99 };
    const next = { t: "pong", id: 2 };
    for (let split = 1; split < frame.byteLength; split++) {
      const decoder = new FrameDecoder();
      expect(decoder.push(frame.subarray(0, split))).toEqual([]);
      expect(decoder.interject(frameOf(ping))).toEqual([]);
      expect(decoder.push(concat([frame.subarray(split), frameOf(next)])), `split at ${split}`).toEqual([result, ping, next]);
    }
  });

  test("garbage interjected inside a frame fails the stream once that frame is read, not before", () => {
    const decoder = new FrameDecoder();
    decoder.push(frame.subarray(0, 20));
    expect(decoder.interject(NOT_A_FRAME)).toEqual([]);
    expectProtocolError(() => decoder.push(frame.subarray(20)), /bad magic 0x62726167/);
  });

  test("a channel they are injected into closes once, with the ProtocolError bytes from the peer would give", () => {
    const channel = new Channel();
    const closes: (Error | undefined)[] = [];
    channel.listen({ message: () => {}, close: (e) => closes.push(e) });
    channel.receive(frame);
    channel.inject(NOT_A_FRAME);
    channel.inject(NOT_A_FRAME); // a closed channel reads nothing more
    expect(channel.isClosed).toBe(true);
    expect(closes.map((e) => [e?.name, e?.message])).toEqual([["ProtocolError", "bad magic 0x62726167, expected 0x52564e54"]]);
  });
});

describe("asMessage", () => {
  test("accepts every well-formed message type", () => {
    const good = [
      { t: "hello", actor: "a", incarnation: 1, token: "x", pid: 7 },
      { t: "ready", methods: ["m"], readOnly: [], stateful: true },
      { t: "fatal", name: "E", message: "m", stack: "" },
      { t: "call", id: 1, method: "m", args: [], deadline: 1 },
      { t: "result", id: 1, value: null },
      { t: "result", id: 1 }, // an undefined value is dropped by the encoder: still a result
      { t: "error", id: 1, name: "E", message: "m", stack: "" },
      { t: "ping", id: 1 },
      { t: "pong", id: 1 },
      { t: "health", id: 1 },
      { t: "healthy", id: 1, report: {} },
      { t: "log", level: "info", line: "l" },
      { t: "shutdown" },
    ];
    for (const m of good) expect(asMessage(m)).toBe(m as never);
  });

  test("rejects non-maps", () => {
    expectProtocolError(() => asMessage([1, 2]), /message must be a map, got array/);
    expectProtocolError(() => asMessage(null), /message must be a map, got any/);
    expectProtocolError(() => asMessage(3), /message must be a map, got number/);
    expectProtocolError(() => asMessage("call"), /message must be a map, got string/);
    expectProtocolError(() => asMessage(new Float32Array(2)), /message must be a map, got binary/);
  });

  test("rejects unknown and missing types", () => {
    expectProtocolError(() => asMessage({ t: "launch" }), /unknown message type "launch"; known: hello, /);
    expectProtocolError(() => asMessage({ id: 1 }), /unknown message type undefined/);
    expectProtocolError(() => asMessage({ t: 1 }), /unknown message type 1/);
    expectProtocolError(() => asMessage({ t: "toString" }), /unknown message type "toString"/);
    expectProtocolError(() => asMessage({ t: "__proto__" }), /unknown message type "__proto__"/);
    // Fault injection is no message: the wire protocol has no test hook.
    expectProtocolError(() => asMessage({ t: "chaos", action: "garble" }), /unknown message type "chaos"/);
  });

  test("rejects missing and mistyped fields, naming them", () => {
    expectProtocolError(() => asMessage({ t: "call", id: 1, method: "m", deadline: 1 }), /call\.args must be a array, got any/);
    expectProtocolError(() => asMessage({ t: "call", id: "1", method: "m", args: [], deadline: 1 }), /call\.id must be a number, got string/);
    expectProtocolError(() => asMessage({ t: "hello", actor: "a", incarnation: 1, token: 5, pid: 1 }), /hello\.token must be a string, got number/);
    expectProtocolError(() => asMessage({ t: "ready", methods: {}, readOnly: [], stateful: true }), /ready\.methods must be a array, got object/);
    expectProtocolError(() => asMessage({ t: "ready", methods: [], readOnly: [], stateful: 1 }), /ready\.stateful must be a boolean, got number/);
    expectProtocolError(() => asMessage({ t: "healthy", id: 1, report: null }), /healthy\.report must be a object, got any/);
    expectProtocolError(() => asMessage({ t: "healthy", id: 1, report: [] }), /healthy\.report must be a object, got array/);
    expectProtocolError(() => asMessage({ t: "pong" }), /pong\.id must be a number/);
  });

  test("decoded frames go through the same checks", () => {
    const [decoded] = new FrameDecoder().push(frameOf({ t: "call", id: 1, method: "m", args: "no", deadline: 1 }));
    expectProtocolError(() => asMessage(decoded), /call\.args must be a array, got string/);
  });
});

// Lengths of 2^31 and more must not wrap around in the length arithmetic.
describe("frame lengths of 2 GiB and more", () => {
  test("a header claiming a 4 GiB body is rejected, not read as a 64-byte frame", () => {
    // The body is 48 bytes and exactly fills the 64 bytes sent; the header claims 0xfffffff0.
    const body = msgpackEncode({ t: "ping", id: 7, pad: "x".repeat(31) });
    expect(body.byteLength).toBe(48);
    const bytes = rawFrame({ body, bodyLength: 0xfffffff0, payloadLength: 64 }).subarray(0, HEADER_BYTES + 48);
    expectProtocolError(() => new FrameDecoder().push(bytes), /exceeds/);
  });

  test("the encoder refuses a 2 GiB typed array over a 1 GiB limit; the default admits a 135M-parameter model's state", () => {
    expect(() => new FrameEncoder(2 ** 30).encode({ t: "result", id: 1, value: new Uint8Array(2 ** 31) })).toThrow(RangeError);
    // Weights and both AdamW moments of SmolLM2-135M's shape, as a checkpoint's getState sends them.
    expect(DEFAULT_MAX_FRAME_BYTES).toBeGreaterThan(3 * 134_515_008 * 4);
    expect(DEFAULT_MAX_FRAME_BYTES).toBeLessThan(2 ** 32); // the header's u32 lengths
  });
});
