/**
 * An independent reader of TensorBoard event files for tests: TFRecord framing with both CRCs
 * checked, and just enough protobuf decoding to read Events back. Shares no code with the writer.
 */
import { expect } from "bun:test";
import * as fs from "node:fs";

/** Bit at a time, no table: shares nothing with the writer's CRC32C. */
export function crc32cBitwise(data: Uint8Array): number {
  let crc = 0xffffffff;
  for (const byte of data) {
    crc ^= byte;
    for (let k = 0; k < 8; k++) crc = (crc >>> 1) ^ (0x82f63b78 & -(crc & 1));
  }
  return ~crc >>> 0;
}
export const masked = (crc: number) => ((((crc >>> 15) | (crc << 17)) >>> 0) + 0xa282ead8) >>> 0;

/** The payloads of every TFRecord in `file`, after checking both CRCs of each and that none is torn. */
export function readRecords(file: Uint8Array): Uint8Array[] {
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

export type Field = { wire: 0; n: bigint } | { wire: 1 | 2 | 5; bytes: Uint8Array };
export type Message = Map<number, Field[]>;

/** A protobuf message as field number → occurrences, for wire types 0, 1, 2 and 5. */
export function parse(buf: Uint8Array): Message {
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

export function only(msg: Message, n: number, wire: Field["wire"]): Field | undefined {
  const fields = msg.get(n) ?? [];
  expect(fields.length).toBeLessThanOrEqual(1);
  if (fields[0]) expect(fields[0].wire).toBe(wire);
  return fields[0];
}
export const bytesOf = (f: Field | undefined) => (f && f.wire !== 0 ? f.bytes : undefined);
export const get = {
  int: (m: Message, n: number) => { const f = only(m, n, 0); return f?.wire === 0 ? BigInt.asIntN(64, f.n) : 0n; },
  double: (m: Message, n: number) => { const b = bytesOf(only(m, n, 1)); return b ? new DataView(b.buffer, b.byteOffset, 8).getFloat64(0, true) : undefined; },
  float: (m: Message, n: number) => { const b = bytesOf(only(m, n, 5)); return b ? new DataView(b.buffer, b.byteOffset, 4).getFloat32(0, true) : undefined; },
  string: (m: Message, n: number) => { const b = bytesOf(only(m, n, 2)); return b ? new TextDecoder("utf-8", { fatal: true }).decode(b) : undefined; },
  message: (m: Message, n: number) => { const b = bytesOf(only(m, n, 2)); return b ? parse(b) : undefined; },
};

export interface ReadValue { tag?: string; simple?: number; plugin?: string; dataClass?: bigint; dtype?: bigint; dims?: number; strings?: string[] }
export interface ReadEvent { wallTime?: number; step: bigint; fileVersion?: string; values: ReadValue[] }

/** Event: wall_time 1, step 2, file_version 3, summary 5 → Summary.value 1 → Value fields. */
export function readEvent(data: Uint8Array): ReadEvent {
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
export function readValue(v: Message): ReadValue {
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

export const eventFiles = (dir: string) => fs.readdirSync(dir).filter((n) => n.startsWith("events.out.tfevents.")).sort();
export const readEvents = (path: string) => readRecords(new Uint8Array(fs.readFileSync(path))).map(readEvent);

