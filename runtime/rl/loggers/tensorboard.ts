/**
 * TensorBoard event files written directly, with no TensorFlow or TensorBoard package: a file
 * `events.out.tfevents.<unix seconds>.<hostname>` of TFRecords, each an `Event` protocol buffer.
 * Field numbers follow tensorboard/compat/proto (event.proto, summary.proto, tensor.proto,
 * tensor_shape.proto); TFRecord framing is: uint64 length (little-endian), masked CRC32C of
 * those 8 bytes, the data, masked CRC32C of the data.
 *
 * Every record is written with one synchronous write and fsynced, so a crash loses at most the
 * record being written; a failed write throws a WriteError (never swallowed) after cutting the
 * file back to its last whole record, so the records already there stay readable.
 *
 * @example
 * ```ts
 * const tb = new TensorBoardLogger("runs/job-1/tensorboard");
 * tb.scalars(1, { "actor/kl": 0.01, "critic/score/mean": 0.4 });
 * tb.text(1, "samples", "| prompt | response |\n|---|---|\n| 12+7 | 19 |");
 * tb.close();
 * ```
 */
import { closeSync, fsyncSync, ftruncateSync, mkdirSync, openSync, writeSync } from "node:fs";
import { hostname } from "node:os";
import { join } from "node:path";
import { writing } from "../../../native/files.ts";
import { crc32c, maskCrc } from "./crc32c.ts";
import { concat, pb } from "./protobuf.ts";

/** The version string of the first event in every file; readers check its "brain.Event:" prefix. */
export const FILE_VERSION = "brain.Event:2";

/** Field numbers, from the .proto files named above. */
const EVENT = { wallTime: 1, step: 2, fileVersion: 3, summary: 5 } as const;
const SUMMARY = { value: 1 } as const;
const VALUE = { tag: 1, simpleValue: 2, tensor: 8, metadata: 9 } as const;
const METADATA = { pluginData: 1, dataClass: 4 } as const;
const PLUGIN_DATA = { pluginName: 1 } as const;
const TENSOR = { dtype: 1, shape: 2, stringVal: 8 } as const;
const DT_STRING = 7;
/** What TensorBoard itself assigns to text series when it loads them (DataClass enum). */
const DATA_CLASS_TENSOR = 2;

const utf8 = new TextEncoder();

/** One TFRecord around `data`. */
export function tfrecord(data: Uint8Array): Uint8Array {
  const header = new Uint8Array(12);
  const view = new DataView(header.buffer);
  view.setBigUint64(0, BigInt(data.length), true);
  view.setUint32(8, maskCrc(crc32c(header.subarray(0, 8))), true);
  const footer = new Uint8Array(4);
  new DataView(footer.buffer).setUint32(0, maskCrc(crc32c(data)), true);
  return concat(header, data, footer);
}

/** An Event with its time and step, and `what` (one encoded field of the `what` oneof). */
const event = (wallTimeS: number, step: number, what: Uint8Array) =>
  concat(pb.double(EVENT.wallTime, wallTimeS), pb.int64(EVENT.step, step), what);

/** A scalar as TensorBoard's legacy writers store it: a float32 `simple_value`. */
const scalarValue = (tag: string, value: number) =>
  pb.message(SUMMARY.value, pb.string(VALUE.tag, tag), pb.float(VALUE.simpleValue, value));

/**
 * Markdown for the text plugin: a rank-0 DT_STRING tensor, marked with plugin "text" (its plugin
 * content, a TextPluginData of version 0, encodes to nothing, so it is left out).
 */
const textValue = (tag: string, markdown: string) =>
  pb.message(SUMMARY.value,
    pb.string(VALUE.tag, tag),
    pb.message(VALUE.metadata,
      pb.message(METADATA.pluginData, pb.string(PLUGIN_DATA.pluginName, "text")),
      pb.int64(METADATA.dataClass, DATA_CLASS_TENSOR)),
    pb.message(VALUE.tensor,
      pb.int64(TENSOR.dtype, DT_STRING),
      pb.message(TENSOR.shape), // no dims: a scalar
      pb.bytes(TENSOR.stringVal, utf8.encode(markdown))));

export interface TensorBoardOptions {
  /** Milliseconds since the epoch, for wall_time and the file name; default Date.now. */
  now?: () => number;
  /** The host part of the file name; default the machine's hostname. */
  hostname?: string;
  /** fsync after every record (default true): a machine crash then loses at most one record. */
  fsync?: boolean;
}

/**
 * Creates the event file with O_EXCL, so two writers started in the same second on one host
 * never share a file: the second gets a `.2` suffix (TensorBoard reads any name with "tfevents").
 */
function createEventFile(dir: string, seconds: number, host: string): { path: string; fd: number } {
  const base = join(dir, `events.out.tfevents.${String(seconds).padStart(10, "0")}.${host}`);
  for (let n = 1; ; n++) {
    const path = n === 1 ? base : `${base}.${n}`;
    try {
      return { path, fd: openSync(path, "wx", 0o644) };
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== "EEXIST") throw e;
    }
  }
}

export class TensorBoardLogger {
  /** The event file being written. */
  readonly path: string;
  private fd: number | undefined;
  /** Bytes of whole records in the file: where a failed write is cut back to. */
  private length = 0;
  /** Set when a failed write could not be cut back: later records would be unreadable. */
  private broken: Error | undefined;
  private readonly now: () => number;
  private readonly fsync: boolean;

  constructor(dir: string, o: TensorBoardOptions = {}) {
    this.now = o.now ?? Date.now;
    this.fsync = o.fsync ?? true;
    const opened = writing(dir, () => {
      mkdirSync(dir, { recursive: true });
      return createEventFile(dir, Math.floor(this.now() / 1000), o.hostname ?? hostname());
    });
    this.path = opened.path;
    this.fd = opened.fd;
    this.append(event(this.wallTime(), 0, pb.string(EVENT.fileVersion, FILE_VERSION)));
  }

  /** One event at `step` holding every metric as a scalar (tags as given: "actor/kl" groups under "actor"). */
  scalars(step: number, metrics: Record<string, number>): void {
    const values = Object.entries(metrics).map(([tag, v]) => scalarValue(tag, v));
    if (values.length) this.summary(step, values);
  }

  /** A markdown text entry under `tag` at `step` (TensorBoard's Text tab renders it). */
  text(step: number, tag: string, markdown: string): void {
    this.summary(step, [textValue(tag, markdown)]);
  }

  /** Closes the file; later calls throw. Closing twice is harmless. */
  close(): void {
    const fd = this.fd;
    this.fd = undefined;
    if (fd !== undefined) writing(this.path, () => closeSync(fd));
  }

  private summary(step: number, values: Uint8Array[]): void {
    if (!Number.isSafeInteger(step)) throw new RangeError(`TensorBoard step must be an integer, got ${step}`);
    this.append(event(this.wallTime(), step, pb.message(EVENT.summary, ...values)));
  }

  private wallTime(): number {
    return this.now() / 1000;
  }

  private append(data: Uint8Array): void {
    const fd = this.fd;
    if (fd === undefined) throw new Error(`${this.path}: the TensorBoard logger is closed`);
    if (this.broken) throw new Error(`${this.path}: an earlier write failed (${this.broken.message})`);
    const record = tfrecord(data);
    try {
      writing(this.path, () => {
        // Positional writes: after a cut-back the next record must start at `length`, not at the
        // file offset a failed write left behind (which would leave a hole of zeros).
        for (let off = 0; off < record.length;) off += writeSync(fd, record, off, record.length - off, this.length + off);
        if (this.fsync) fsyncSync(fd);
      });
    } catch (e) {
      this.cutBack(fd, e as Error);
      throw e;
    }
    this.length += record.length;
  }

  /** Drops a partly written record, so the file still ends on a whole record. */
  private cutBack(fd: number, cause: Error): void {
    try {
      ftruncateSync(fd, this.length);
    } catch {
      this.broken = cause;
    }
  }
}
