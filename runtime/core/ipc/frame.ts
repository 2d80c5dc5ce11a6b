/**
 * Wire frames between the coordinator and its actors.
 *
 *   offset 0   u32  magic "RVNT" (0x52564e54, little endian)
 *          4   u16  protocol version (1)
 *          6   u16  flags (0; anything else is rejected)
 *          8   u32  msgpack body length
 *         12   u32  payload area length
 *         16        msgpack body
 *                   zero padding to a multiple of 8
 *                   payload area: the raw bytes of every typed array in the message, each 8-aligned
 *
 * Typed arrays (Float32Array, Float64Array, Int32Array, Uint8Array) are not msgpack-encoded: the
 * body holds an extension (type 1: dtype u8, offset u32, length u32) pointing into the payload
 * area. A received frame is copied once, from the socket's chunks into its own 8-aligned buffer,
 * and every typed array in the decoded message is a view of that buffer: no further copy.
 *
 * On the sending side, arrays of ZERO_COPY_MIN_BYTES or more are written from their own memory;
 * smaller ones are copied in beside the header, so a message of many small arrays (a batch of
 * prompts) is one write and arrives as one read, not one per array.
 */
import { Decoder, Encoder, ExtensionCodec } from "@msgpack/msgpack";

export const MAGIC = 0x52564e54;
export const VERSION = 1;
export const HEADER_BYTES = 16;
/**
 * Default largest frame accepted (header, body and payloads together): just under the 4 GiB the
 * u32 lengths allow. A model's state travels in one frame (a checkpoint's getState: weights and
 * both AdamW moments, 1.6 GB at SmolLM2-135M's shape), so the bound is the protocol's, not a
 * guess at model sizes; before a handshake a connection gets far less (HELLO_MAX_FRAME_BYTES).
 */
export const DEFAULT_MAX_FRAME_BYTES = 2 ** 32 - 2 ** 16;
const TENSOR_EXT = 1;
const ALIGN = 8;
/**
 * Typed arrays this large are sent from their own memory; smaller ones are copied into the
 * frame's leading chunk. Copying 64 KiB costs about what one more socket write and one more
 * wakeup of the reader cost, and below that the write and the wakeup dominate.
 */
export const ZERO_COPY_MIN_BYTES = 64 * 1024;

/** A frame that breaks the protocol; the connection it arrived on must be dropped. */
export class ProtocolError extends Error {
  override name = "ProtocolError";
}

type TypedArray = Float32Array | Float64Array | Int32Array | Uint8Array;
const DTYPES = [Float32Array, Float64Array, Int32Array, Uint8Array] as const;
const DTYPE_NAMES = ["float32", "float64", "int32", "uint8"];

/** Rounds up to a multiple of 8 in plain arithmetic: lengths reach past 2^31, where bit operators wrap. */
const align = (n: number) => Math.ceil(n / ALIGN) * ALIGN;

/** `a` then `b`, in a new array (only interjected bytes are joined: never on the hot path). */
function concatBytes(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.byteLength + b.byteLength);
  out.set(a);
  out.set(b, a.byteLength);
  return out;
}

/** Frames a connection may send before it has identified itself (hello) are at most this large. */
export const HELLO_MAX_FRAME_BYTES = 4096;

function dtypeOf(value: unknown): number {
  // Exact class checks: a Buffer is a Uint8Array subclass and travels as one.
  if (value instanceof Float32Array) return 0;
  if (value instanceof Float64Array) return 1;
  if (value instanceof Int32Array) return 2;
  if (value instanceof Uint8Array) return 3;
  return -1;
}

interface EncodeContext {
  arrays: TypedArray[];
  payloadBytes: number;
}
interface DecodeContext {
  buffer: ArrayBuffer;
  payloadStart: number;
  payloadEnd: number;
}

const codec = new ExtensionCodec<EncodeContext | DecodeContext>();
codec.register({
  type: TENSOR_EXT,
  encode(value, ctx) {
    const dtype = dtypeOf(value);
    if (dtype < 0) return null;
    const array = value as TypedArray;
    const c = ctx as EncodeContext;
    const ref = new Uint8Array(9);
    const view = new DataView(ref.buffer);
    view.setUint8(0, dtype);
    view.setUint32(1, c.payloadBytes, true);
    view.setUint32(5, array.length, true);
    c.arrays.push(array);
    c.payloadBytes = align(c.payloadBytes + array.byteLength);
    return ref;
  },
  decode(data, _type, ctx) {
    const c = ctx as DecodeContext;
    if (data.byteLength !== 9) throw new ProtocolError(`tensor reference of ${data.byteLength} bytes, expected 9`);
    const view = new DataView(data.buffer, data.byteOffset, 9);
    const dtype = view.getUint8(0);
    const offset = view.getUint32(1, true);
    const length = view.getUint32(5, true);
    const Ctor = DTYPES[dtype];
    if (!Ctor) throw new ProtocolError(`unknown tensor dtype ${dtype}; known: ${DTYPE_NAMES.join(", ")}`);
    const start = c.payloadStart + offset;
    const end = start + length * Ctor.BYTES_PER_ELEMENT;
    if (offset % ALIGN !== 0 || end > c.payloadEnd) {
      throw new ProtocolError(`tensor ${DTYPE_NAMES[dtype]}[${length}] at payload offset ${offset} is misaligned or outside the ${c.payloadEnd - c.payloadStart}-byte payload area`);
    }
    return new Ctor(c.buffer, start, length);
  },
});

/** Encodes messages into frames; one per connection (it reuses its buffers). */
export class FrameEncoder {
  private readonly ctx: EncodeContext = { arrays: [], payloadBytes: 0 };
  private readonly encoder = new Encoder({ extensionCodec: codec, context: this.ctx, ignoreUndefined: true });

  constructor(private readonly maxFrameBytes = DEFAULT_MAX_FRAME_BYTES) {}

  /**
   * Returns the frame as a list of chunks to write in order: the header and body, with every
   * array under ZERO_COPY_MIN_BYTES and its padding copied in after them, then each larger array's
   * own bytes (not copied), each followed by a chunk that holds its padding and the small arrays
   * after it. A frame without large arrays is one chunk.
   */
  encode(message: unknown): Uint8Array[] {
    this.ctx.arrays = [];
    this.ctx.payloadBytes = 0;
    const body = this.encoder.encodeSharedRef(message);
    const headLength = align(HEADER_BYTES + body.byteLength);
    const total = headLength + this.ctx.payloadBytes;
    if (total > this.maxFrameBytes) {
      throw new RangeError(`message of ${total} bytes exceeds the ${this.maxFrameBytes}-byte frame limit`);
    }
    const runs = copiedRuns(headLength, this.ctx.arrays);
    const head = new Uint8Array(runs[0]!);
    const view = new DataView(head.buffer);
    view.setUint32(0, MAGIC, true);
    view.setUint16(4, VERSION, true);
    view.setUint16(6, 0, true);
    view.setUint32(8, body.byteLength, true);
    view.setUint32(12, this.ctx.payloadBytes, true);
    head.set(body, HEADER_BYTES);
    const chunks: Uint8Array[] = [];
    let run = head;
    let at = headLength;
    let next = 1;
    for (const array of this.ctx.arrays) {
      const bytes = new Uint8Array(array.buffer, array.byteOffset, array.byteLength);
      const padded = align(bytes.byteLength);
      if (bytes.byteLength < ZERO_COPY_MIN_BYTES) {
        run.set(bytes, at);
        at += padded; // the padding is already zero
        continue;
      }
      if (run.byteLength > 0) chunks.push(run);
      chunks.push(bytes);
      run = new Uint8Array(runs[next++]!);
      at = padded - bytes.byteLength;
    }
    if (run.byteLength > 0) chunks.push(run);
    return chunks;
  }
}

/**
 * The sizes of the copied chunks of a frame: the first holds the header and body (`headLength`
 * bytes) and the small arrays up to the first large one; each later one the padding of a large
 * array and the small arrays up to the next.
 */
function copiedRuns(headLength: number, arrays: readonly TypedArray[]): number[] {
  const runs: number[] = [];
  let run = headLength;
  for (const array of arrays) {
    const padded = align(array.byteLength);
    if (array.byteLength < ZERO_COPY_MIN_BYTES) {
      run += padded;
      continue;
    }
    runs.push(run);
    run = padded - array.byteLength;
  }
  runs.push(run);
  return runs;
}

/**
 * Reassembles frames from a byte stream. `push` returns the messages completed by a chunk and
 * throws ProtocolError on the first bad header or undecodable body; after that the decoder is
 * unusable, as the connection must be dropped.
 */
export class FrameDecoder {
  private readonly ctx: DecodeContext = { buffer: new ArrayBuffer(0), payloadStart: 0, payloadEnd: 0 };
  private readonly decoder = new Decoder({ extensionCodec: codec, context: this.ctx });
  private header = new Uint8Array(HEADER_BYTES);
  private headerFill = 0;
  private frame: Uint8Array | undefined;
  private frameFill = 0;
  private bodyLength = 0;
  private failed: ProtocolError | undefined;
  /** Bytes to read right after the frame now partly read (see interject). */
  private interjected: Uint8Array | undefined;

  constructor(private maxFrameBytes = DEFAULT_MAX_FRAME_BYTES) {}

  /** Changes the limit for frames not yet started (raised once a peer has authenticated). */
  setMaxFrameBytes(bytes: number): void {
    this.maxFrameBytes = bytes;
  }

  push(chunk: Uint8Array): unknown[] {
    return this.decode(chunk);
  }

  /**
   * Reads `bytes` as if the peer had sent them between two of its frames: now, when no frame is
   * partly read, or else right after the frame being read completes (a peer writes whole frames,
   * so bytes it wrote itself never land inside one). Fault injection on the receiving side
   * uses it: garbage interjected is a ProtocolError exactly where the peer's garbage would be.
   */
  interject(bytes: Uint8Array): unknown[] {
    if (this.frame || this.headerFill > 0) {
      this.interjected = this.interjected ? concatBytes(this.interjected, bytes) : bytes;
      return [];
    }
    return this.decode(bytes);
  }

  private decode(chunk: Uint8Array): unknown[] {
    if (this.failed) throw this.failed;
    const out: unknown[] = [];
    try {
      this.read(chunk, out);
    } catch (e) {
      this.failed = e instanceof ProtocolError ? e : new ProtocolError(`undecodable frame body: ${(e as Error).message}`);
      throw this.failed;
    }
    return out;
  }

  private read(chunk: Uint8Array, out: unknown[]): void {
    let pos = 0;
    while (pos < chunk.byteLength) {
      if (!this.frame) {
        const take = Math.min(HEADER_BYTES - this.headerFill, chunk.byteLength - pos);
        this.header.set(chunk.subarray(pos, pos + take), this.headerFill);
        this.headerFill += take;
        pos += take;
        if (this.headerFill < HEADER_BYTES) break;
        this.startFrame();
        if (this.frameFill === this.frame!.byteLength) this.completeFrame(out);
        continue;
      }
      const take = Math.min(this.frame.byteLength - this.frameFill, chunk.byteLength - pos);
      this.frame.set(chunk.subarray(pos, pos + take), this.frameFill);
      this.frameFill += take;
      pos += take;
      if (this.frameFill === this.frame.byteLength) this.completeFrame(out);
    }
  }

  /** Decodes the frame just completed; interjected bytes come next, before the rest of the chunk. */
  private completeFrame(out: unknown[]): void {
    out.push(this.finishFrame());
    const next = this.interjected;
    if (!next) return;
    this.interjected = undefined;
    this.read(next, out);
  }

  private startFrame(): void {
    const view = new DataView(this.header.buffer);
    const magic = view.getUint32(0, true);
    if (magic !== MAGIC) throw new ProtocolError(`bad magic 0x${magic.toString(16).padStart(8, "0")}, expected 0x${MAGIC.toString(16)}`);
    const version = view.getUint16(4, true);
    if (version !== VERSION) throw new ProtocolError(`protocol version ${version}, this side speaks ${VERSION}`);
    const flags = view.getUint16(6, true);
    if (flags !== 0) throw new ProtocolError(`unknown frame flags 0x${flags.toString(16)}; none are defined`);
    this.bodyLength = view.getUint32(8, true);
    const payloadLength = view.getUint32(12, true);
    if (this.bodyLength === 0) throw new ProtocolError("empty frame body");
    if (this.bodyLength > this.maxFrameBytes || payloadLength > this.maxFrameBytes) {
      throw new ProtocolError(`frame of ${HEADER_BYTES + this.bodyLength + payloadLength} bytes exceeds the ${this.maxFrameBytes}-byte limit`);
    }
    if (payloadLength % ALIGN !== 0) throw new ProtocolError(`payload length ${payloadLength} is not a multiple of ${ALIGN}`);
    const total = align(HEADER_BYTES + this.bodyLength) + payloadLength;
    if (total > this.maxFrameBytes) throw new ProtocolError(`frame of ${total} bytes exceeds the ${this.maxFrameBytes}-byte limit`);
    // The frame (less its header) gets a fresh buffer so payload views are 8-aligned and owned.
    this.frame = new Uint8Array(total - HEADER_BYTES);
    this.frameFill = 0;
  }

  private finishFrame(): unknown {
    const frame = this.frame!;
    this.frame = undefined;
    this.headerFill = 0;
    this.ctx.buffer = frame.buffer as ArrayBuffer;
    this.ctx.payloadStart = align(HEADER_BYTES + this.bodyLength) - HEADER_BYTES;
    this.ctx.payloadEnd = frame.byteLength;
    return this.decoder.decode(frame.subarray(0, this.bodyLength));
  }
}
