/**
 * The safetensors format, read and written: an 8-byte little-endian header length, a JSON
 * header (`{name: {dtype, shape, data_offsets: [begin, end]}, "__metadata__": {...}}`), then the
 * raw little-endian tensor bytes, offsets counted from the end of the header.
 *
 * Reading accepts F32, F16 and BF16 and always yields Float32Array (the runtime trains in
 * float32); F32 tensors are views on the file's bytes when aligned, so a load copies each tensor
 * at most once. Every header is checked in full before any tensor is touched, and each failure
 * is a {@link SafetensorsError} naming the file and the tensor. Writing produces F32 or BF16
 * (round to nearest even), with the header padded so the data starts 8-byte aligned, as the
 * reference implementation does.
 *
 * @example
 * ```ts
 * import { readSafetensors, writeSafetensors } from "./native/hf/safetensors.ts";
 * writeSafetensors("/tmp/a.safetensors", new Map([["w", { shape: [2], data: new Float32Array([1, 2]) }]]));
 * const { tensors } = readSafetensors("/tmp/a.safetensors");
 * console.log(tensors.get("w")!.data); // Float32Array [1, 2]
 * ```
 */
import { closeSync, renameSync, rmSync } from "node:fs";
import { dirname } from "node:path";
import { fsyncDir, writeSynced, writing } from "../../runtime/core/files.ts";
import { openRegularFile, readAt } from "./regular_file.ts";

/** The dtypes this runtime reads; every other safetensors dtype is refused by name. */
export type ReadableDtype = "F32" | "F16" | "BF16";
/** The dtypes this runtime writes. */
export type WritableDtype = "F32" | "BF16" | "F16";

/** One tensor in memory: row-major float32 values and the shape they have. */
export interface Tensor {
  shape: number[];
  data: Float32Array;
}

/** A tensor as read from a file: its values in float32 plus the dtype it was stored in. */
export interface StoredTensor extends Tensor {
  dtype: ReadableDtype;
}

export interface SafetensorsContents {
  /** In header order. */
  tensors: Map<string, StoredTensor>;
  /** The header's `__metadata__` (string to string), or an empty object when absent. */
  metadata: Record<string, string>;
}

/** A file that is not valid safetensors, or holds what this runtime cannot read. */
export class SafetensorsError extends Error {
  override name = "SafetensorsError";
  constructor(
    readonly source: string,
    readonly tensor: string | null,
    detail: string,
  ) {
    super(`${source}: ${tensor === null ? "" : `tensor "${tensor}": `}${detail}`);
  }
}

/** Bytes per element of every dtype the format defines (so sizes are checked even for refused ones). */
const DTYPE_BYTES: Readonly<Record<string, number>> = Object.freeze({
  BOOL: 1, U8: 1, I8: 1, F8_E5M2: 1, F8_E4M3: 1,
  I16: 2, U16: 2, F16: 2, BF16: 2,
  I32: 4, U32: 4, F32: 4,
  I64: 8, U64: 8, F64: 8,
});
const READABLE: readonly ReadableDtype[] = ["F32", "F16", "BF16"];

/** The reference implementation refuses headers above 100 MB; so do we, before parsing them. */
export const MAX_HEADER_BYTES = 100_000_000;

const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/**
 * Reads a safetensors file (one read into memory). F32 tensors are views on that buffer.
 * Before the tensors are read, the path must be a regular file (a FIFO or a link to /dev/zero is
 * refused by name, never waited on or read) and the header is checked against the file's size:
 * a header or a tensor that points past the end is refused having read only the header.
 */
export function readSafetensors(path: string): SafetensorsContents {
  const { fd, size } = openSafetensors(path);
  try {
    checkHeaderOf(fd, size, path);
    const bytes = readAt(fd, 0, size);
    if (bytes.byteLength !== size) throw new SafetensorsError(path, null, `the file shrank while it was read (${bytes.byteLength} of ${size} bytes)`);
    return decodeSafetensors(bytes, path);
  } finally {
    closeSync(fd);
  }
}

/**
 * Checks a safetensors file without reading its tensors: a regular file whose header parses and
 * fits the file's size. Cheap (one header read), so a job checks its weight files with it before
 * anything starts. Returns each tensor's dtype and shape, in header order.
 */
export function checkSafetensorsFile(path: string): Map<string, { dtype: ReadableDtype; shape: number[] }> {
  const { fd, size } = openSafetensors(path);
  try {
    return new Map(checkHeaderOf(fd, size, path).map((e) => [e.name, { dtype: e.dtype, shape: e.shape }]));
  } finally {
    closeSync(fd);
  }
}

function openSafetensors(path: string): { fd: number; size: number } {
  try {
    return openRegularFile(path);
  } catch (e) {
    throw new SafetensorsError(path, null, `cannot read the file (${(e as Error).message})`);
  }
}

/** Reads the length prefix and the header (only when they fit the file) and checks them against the file's size; its entries. */
function checkHeaderOf(fd: number, size: number, path: string): HeaderEntry[] {
  const headerLen = size < 8 ? 0 : Number(new DataView(readAt(fd, 0, 8).buffer).getBigUint64(0, true));
  // Only a header that fits the file and the limit is read; parseHeader refuses the others by size.
  const prefixBytes = headerLen <= Math.min(size - 8, MAX_HEADER_BYTES) ? 8 + headerLen : Math.min(size, 8);
  return parseHeader(readAt(fd, 0, prefixBytes), path, size).entries;
}

/** Decodes safetensors bytes; `source` names them in errors (a file path, usually). */
export function decodeSafetensors(bytes: Uint8Array, source = "<bytes>"): SafetensorsContents {
  if (!LITTLE_ENDIAN) throw new SafetensorsError(source, null, "this host is big-endian; safetensors data is little-endian and is read only on little-endian hosts");
  const { entries, metadata, dataStart } = parseHeader(bytes, source);
  const tensors = new Map<string, StoredTensor>();
  for (const e of entries) {
    const start = bytes.byteOffset + dataStart + e.begin;
    tensors.set(e.name, { dtype: e.dtype, shape: e.shape, data: toFloat32(bytes, start, e.count, e.dtype) });
  }
  return { tensors, metadata };
}

interface HeaderEntry {
  name: string;
  dtype: ReadableDtype;
  shape: number[];
  count: number;
  begin: number;
  end: number;
}

/**
 * Parses and validates the whole header against the file's size; tensors are not touched.
 * `bytes` holds at least the length prefix and the header; `fileSize` is the whole file's.
 */
function parseHeader(bytes: Uint8Array, source: string, fileSize = bytes.byteLength): { entries: HeaderEntry[]; metadata: Record<string, string>; dataStart: number } {
  const fail = (detail: string, tensor: string | null = null): never => {
    throw new SafetensorsError(source, tensor, detail);
  };
  if (fileSize < 8) fail(`the file is ${fileSize} bytes, shorter than the 8-byte header length that starts every safetensors file`);
  const headerLen = new DataView(bytes.buffer, bytes.byteOffset, 8).getBigUint64(0, true);
  if (headerLen > BigInt(fileSize - 8)) {
    fail(`the header length is ${headerLen} bytes but only ${fileSize - 8} bytes follow it (truncated file, or not safetensors)`);
  }
  if (headerLen > BigInt(MAX_HEADER_BYTES)) fail(`the header length ${headerLen} exceeds the ${MAX_HEADER_BYTES}-byte limit`);
  const dataStart = 8 + Number(headerLen);
  const dataBytes = fileSize - dataStart;
  let header: unknown;
  try {
    header = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(bytes.subarray(8, dataStart)));
  } catch (e) {
    fail(`the header is not valid UTF-8 JSON (${(e as Error).message})`);
  }
  if (typeof header !== "object" || header === null || Array.isArray(header)) fail("the header is not a JSON object");
  const metadata = parseMetadata((header as Record<string, unknown>).__metadata__, fail);
  const entries: HeaderEntry[] = [];
  for (const [name, raw] of Object.entries(header as Record<string, unknown>)) {
    if (name === "__metadata__") continue;
    entries.push(parseEntry(name, raw, dataBytes, (d) => fail(d, name)));
  }
  checkNoOverlap(entries, fail);
  // The reference refuses bytes after the last tensor too: they are no tensor's, and a file far
  // larger than its header says (a sparse file, a device) must not be read to find that out.
  const last = entries.reduce((n, e) => Math.max(n, e.end), 0);
  if (dataBytes > last) fail(`the data section holds ${dataBytes} bytes but the header's data_offsets end at ${last}: ${dataBytes - last} bytes belong to no tensor`);
  return { entries, metadata, dataStart };
}

function parseMetadata(raw: unknown, fail: (detail: string) => never): Record<string, string> {
  if (raw === undefined) return {};
  if (typeof raw !== "object" || raw === null || Array.isArray(raw)) fail("__metadata__ is not an object of strings");
  for (const [k, v] of Object.entries(raw as object)) {
    if (typeof v !== "string") fail(`__metadata__.${k} is ${JSON.stringify(v)}; metadata values must be strings`);
  }
  return { ...(raw as Record<string, string>) };
}

function parseEntry(name: string, raw: unknown, dataBytes: number, fail: (detail: string) => never): HeaderEntry {
  if (typeof raw !== "object" || raw === null || Array.isArray(raw)) fail("its header entry is not an object {dtype, shape, data_offsets}");
  const { dtype, shape, data_offsets: offsets } = raw as Record<string, unknown>;
  if (typeof dtype !== "string" || !(dtype in DTYPE_BYTES)) {
    fail(`dtype ${JSON.stringify(dtype)} is not a safetensors dtype (${Object.keys(DTYPE_BYTES).join(", ")})`);
  }
  if (!Array.isArray(shape) || !shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
    fail(`shape ${JSON.stringify(shape)} is not an array of non-negative integers`);
  }
  if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every((o) => Number.isSafeInteger(o) && o >= 0)) {
    fail(`data_offsets ${JSON.stringify(offsets)} is not a pair [begin, end] of non-negative integers`);
  }
  const [begin, end] = offsets as [number, number];
  if (begin > end || end > dataBytes) {
    fail(`data_offsets [${begin}, ${end}] are out of range: the data section holds ${dataBytes} bytes (truncated file?)`);
  }
  const count = (shape as number[]).reduce((a, b) => a * b, 1);
  const size = DTYPE_BYTES[dtype as string]!;
  if (count * size !== end - begin) {
    fail(`shape [${(shape as number[]).join(", ")}] of ${dtype} needs ${count * size} bytes but data_offsets [${begin}, ${end}] span ${end - begin}`);
  }
  if (!READABLE.includes(dtype as ReadableDtype)) fail(`dtype ${dtype} is not supported; readable dtypes are ${READABLE.join(", ")}`);
  return { name, dtype: dtype as ReadableDtype, shape: shape as number[], count, begin, end };
}

/** Tensors may leave gaps (they hold nothing), but no two may share a byte. */
function checkNoOverlap(entries: readonly HeaderEntry[], fail: (detail: string, tensor: string) => never): void {
  const spans = entries.filter((e) => e.end > e.begin).sort((a, b) => a.begin - b.begin);
  for (let i = 1; i < spans.length; i++) {
    const prev = spans[i - 1]!, cur = spans[i]!;
    if (cur.begin < prev.end) {
      fail(`data_offsets [${cur.begin}, ${cur.end}] overlap those of "${prev.name}" [${prev.begin}, ${prev.end}]`, cur.name);
    }
  }
}

/** Float32 values of `count` elements at byte `start` of `bytes.buffer`; copies only when it must. */
function toFloat32(bytes: Uint8Array, start: number, count: number, dtype: ReadableDtype): Float32Array {
  const size = DTYPE_BYTES[dtype]!;
  // Typed views need an aligned offset; a misaligned tensor is copied once into fresh memory.
  const aligned = start % size === 0;
  const buffer = aligned ? bytes.buffer : bytes.buffer.slice(start, start + count * size);
  const at = aligned ? start : 0;
  if (dtype === "F32") return new Float32Array(buffer, at, count);
  const halves = new Uint16Array(buffer, at, count);
  return dtype === "BF16" ? bf16ToFloat32(halves) : f16ToFloat32(halves);
}

/** bfloat16 bit patterns to float32: the bf16 bits are the top half of the float32 bits. */
export function bf16ToFloat32(halves: Uint16Array): Float32Array {
  const out = new Float32Array(halves.length);
  const bits = new Uint32Array(out.buffer);
  for (let i = 0; i < halves.length; i++) bits[i] = halves[i]! << 16;
  return out;
}

let f16Table: Float32Array | null = null;

/** IEEE half-precision bit patterns to float32, subnormals, infinities and NaN included. */
export function f16ToFloat32(halves: Uint16Array): Float32Array {
  const table = (f16Table ??= buildF16Table());
  const out = new Float32Array(halves.length);
  for (let i = 0; i < halves.length; i++) out[i] = table[halves[i]!]!;
  return out;
}

/** All 65536 half values, computed once: faster than decoding each element's fields. */
function buildF16Table(): Float32Array {
  const table = new Float32Array(65536);
  for (let h = 0; h < 65536; h++) table[h] = f16BitsToNumber(h);
  return table;
}

/** One half-precision value: 1 sign bit, 5 exponent bits (bias 15), 10 mantissa bits. */
export function f16BitsToNumber(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >> 10) & 0x1f;
  const mant = h & 0x3ff;
  if (exp === 0) return sign * mant * 2 ** -24; // zero and subnormals: no implicit leading 1
  if (exp === 0x1f) return mant === 0 ? sign * Infinity : NaN;
  return sign * (1 + mant / 1024) * 2 ** (exp - 15);
}

/** float32 to bfloat16 bit patterns, rounding to nearest with ties to even; NaN stays a quiet NaN. */
export function float32ToBf16(values: Float32Array): Uint16Array {
  const bits = new Uint32Array(values.buffer, values.byteOffset, values.length);
  const out = new Uint16Array(values.length);
  for (let i = 0; i < values.length; i++) {
    const b = bits[i]!;
    if ((b & 0x7fffffff) > 0x7f800000) {
      out[i] = (b >>> 16) | 0x0040; // keep sign and payload top, force the quiet bit
      continue;
    }
    // Adding 0x7fff plus the lowest kept bit rounds half-way cases to the even neighbour;
    // a carry into the exponent is the correct rounding up (to infinity past bf16's max).
    out[i] = ((b + 0x7fff + ((b >>> 16) & 1)) >>> 16) & 0xffff;
  }
  return out;
}

/**
 * float32 to IEEE half-precision bit patterns, rounding to nearest with ties to even as torch's
 * `.to(torch.float16)` does: past the largest half (65504) to infinity from 65520 on, below the
 * smallest normal (2^-14) to subnormals; NaN stays a quiet NaN.
 */
export function float32ToF16(values: Float32Array): Uint16Array {
  const bits = new Uint32Array(values.buffer, values.byteOffset, values.length);
  const out = new Uint16Array(values.length);
  for (let i = 0; i < values.length; i++) {
    const b = bits[i]!;
    const sign = (b >>> 16) & 0x8000;
    const abs = b & 0x7fffffff;
    if (abs > 0x7f800000) out[i] = sign | 0x7e00 | ((abs >>> 13) & 0x3ff);
    else if (abs >= 0x477ff000) out[i] = sign | 0x7c00; // 65520 and above (infinity too) round to infinity
    else if (abs < 0x38800000) out[i] = sign | roundHalfEven(Math.abs(values[i]!) * 2 ** 24); // subnormal: units of 2^-24
    // Normal: rebias the exponent (127 to 15) and drop 13 mantissa bits; adding 0xfff plus the
    // lowest kept bit rounds half-way cases to the even neighbour, a carry being the correct round up.
    else out[i] = sign | (((abs + 0xfff + ((abs >>> 13) & 1)) >>> 13) - 0x1c000);
  }
  return out;
}

/** Rounds a non-negative number to an integer, ties to even. */
function roundHalfEven(x: number): number {
  const floor = Math.floor(x), rest = x - floor;
  return rest > 0.5 || (rest === 0.5 && floor % 2 === 1) ? floor + 1 : floor;
}

export interface WriteOptions {
  /** Stored dtype; default "F32". BF16 and F16 halve the size and round each value to nearest even. */
  dtype?: WritableDtype;
  /** The header's `__metadata__`; transformers wants `{format: "pt"}` (see HF_METADATA). */
  metadata?: Record<string, string>;
}

/** What transformers requires of a PyTorch checkpoint's metadata. */
export const HF_METADATA: Readonly<Record<string, string>> = Object.freeze({ format: "pt" });

/**
 * The file's bytes as a list of chunks: the header, then one chunk per tensor. F32 chunks are
 * views on the caller's arrays, so nothing is copied before it is written.
 */
export function encodeSafetensorsChunks(tensors: ReadonlyMap<string, Tensor>, options: WriteOptions = {}): Uint8Array[] {
  const dtype = options.dtype ?? "F32";
  if (dtype !== "F32" && dtype !== "BF16" && dtype !== "F16") throw new SafetensorsError("<write>", null, `cannot write dtype ${JSON.stringify(dtype)}; writable dtypes are F32, BF16, F16`);
  const size = DTYPE_BYTES[dtype]!;
  const header: Record<string, unknown> = {};
  if (options.metadata !== undefined) header.__metadata__ = options.metadata;
  const chunks: Uint8Array[] = [new Uint8Array(0)];
  let offset = 0;
  for (const [name, t] of tensors) {
    if (name === "__metadata__") throw new SafetensorsError("<write>", name, "this name is reserved for the header's metadata");
    const count = t.shape.reduce((a, b) => a * b, 1);
    if (!t.shape.every((d) => Number.isSafeInteger(d) && d >= 0) || count !== t.data.length) {
      throw new SafetensorsError("<write>", name, `shape [${t.shape.join(", ")}] does not match its ${t.data.length} values`);
    }
    const data = dtype === "F32" ? t.data : dtype === "BF16" ? float32ToBf16(t.data) : float32ToF16(t.data);
    chunks.push(new Uint8Array(data.buffer, data.byteOffset, count * size));
    header[name] = { dtype, shape: t.shape, data_offsets: [offset, offset + count * size] };
    offset += count * size;
  }
  chunks[0] = encodeHeader(header);
  return chunks;
}

/** Length prefix plus JSON, padded with spaces so the data that follows starts 8-byte aligned. */
function encodeHeader(header: Record<string, unknown>): Uint8Array {
  const json = new TextEncoder().encode(JSON.stringify(header));
  const padded = Math.ceil(json.length / 8) * 8;
  const out = new Uint8Array(8 + padded).fill(0x20);
  new DataView(out.buffer).setBigUint64(0, BigInt(padded), true);
  out.set(json, 8);
  return out;
}

/** The whole file in one buffer (for small tensors and tests). */
export function encodeSafetensors(tensors: ReadonlyMap<string, Tensor>, options: WriteOptions = {}): Uint8Array {
  const chunks = encodeSafetensorsChunks(tensors, options);
  const out = new Uint8Array(chunks.reduce((n, c) => n + c.byteLength, 0));
  let at = 0;
  for (const c of chunks) (out.set(c, at), (at += c.byteLength));
  return out;
}

/**
 * Writes a safetensors file durably (temporary file, fsync, rename, fsync of the folder), chunk
 * by chunk so a large model is never concatenated in memory.
 */
export function writeSafetensors(path: string, tensors: ReadonlyMap<string, Tensor>, options: WriteOptions = {}): void {
  const chunks = encodeSafetensorsChunks(tensors, options);
  const tmp = `${path}.tmp`;
  try {
    writeSynced(tmp, chunks);
    writing(path, () => renameSync(tmp, path));
  } catch (e) {
    rmSync(tmp, { force: true });
    throw e;
  }
  fsyncDir(dirname(path));
}
