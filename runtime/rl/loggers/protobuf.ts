/**
 * A protocol-buffer encoder just large enough for TensorBoard events: each function returns one
 * encoded field (key then value) and `message` nests fields into a length-delimited field, so a
 * message reads as a tree of calls, e.g.
 *
 * ```ts
 * const event = concat(pb.double(1, wallTime), pb.int64(2, step), pb.message(5, pb.message(1, pb.string(1, tag), pb.float(2, v))));
 * ```
 *
 * Wire types: 0 varint, 1 fixed 64-bit, 2 length-delimited, 5 fixed 32-bit (little-endian).
 */

const VARINT = 0;
const FIXED64 = 1;
const LENGTH_DELIMITED = 2;
const FIXED32 = 5;

const utf8 = new TextEncoder();

/** Joins byte arrays into one. */
export function concat(...parts: readonly Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let off = 0;
  for (const p of parts) {
    out.set(p, off);
    off += p.length;
  }
  return out;
}

/**
 * Base-128 varint of an integer taken as 64 bits: a negative int64 is its two's complement, ten
 * bytes long, as every protobuf runtime writes it.
 */
export function varint(n: number | bigint): Uint8Array {
  let v = BigInt.asUintN(64, BigInt(n));
  const bytes: number[] = [];
  while (v >= 0x80n) {
    bytes.push(Number(v & 0x7fn) | 0x80);
    v >>= 7n;
  }
  bytes.push(Number(v));
  return Uint8Array.from(bytes);
}

const key = (field: number, wireType: number) => varint((field << 3) | wireType);

function fixed(field: number, wireType: number, size: 4 | 8, put: (view: DataView) => void): Uint8Array {
  const value = new Uint8Array(size);
  put(new DataView(value.buffer));
  return concat(key(field, wireType), value);
}

function bytes(field: number, data: Uint8Array): Uint8Array {
  return concat(key(field, LENGTH_DELIMITED), varint(data.length), data);
}

/** Field encoders; `field` is the field number from the .proto file. */
export const pb = {
  /** int64, int32 and enum fields (int32 negatives are sign-extended to 64 bits, as specified). */
  int64: (field: number, n: number | bigint) => concat(key(field, VARINT), varint(n)),
  double: (field: number, x: number) => fixed(field, FIXED64, 8, (v) => v.setFloat64(0, x, true)),
  float: (field: number, x: number) => fixed(field, FIXED32, 4, (v) => v.setFloat32(0, x, true)),
  bytes,
  string: (field: number, s: string) => bytes(field, utf8.encode(s)),
  /** A nested message made of the given encoded fields (none: an empty, yet present, message). */
  message: (field: number, ...fields: Uint8Array[]) => bytes(field, concat(...fields)),
};
