/**
 * Shared-memory segments: bulk bytes between processes on one host without the actor socket. A
 * segment is a file (put it under /dev/shm, which is memory) mapped into each process that opens
 * it, so what one process writes the others read, with no framing, no syscalls per transfer and
 * no decoding. Only the bytes are shared: the caller defines the layout (offsets, counts, a
 * header if it wants one) and the signalling (a small actor call saying "it is written").
 *
 * The mapping is released when the segment object is collected; the file stays until someone
 * calls `unlink()` (or removes it), so exactly one side should own the name.
 *
 * @example
 * ```ts
 * // producer
 * const seg = SharedSegment.create("/dev/shm/revenant-weights-1", 16 << 20);
 * seg.floats(0, weights.length).set(weights);
 * await consumer.call("weightsReady", [seg.path, seg.byteLength, weights.length]);
 *
 * // consumer (another process)
 * const seg = SharedSegment.open(path, byteLength);
 * mine.set(seg.floats(0, count));          // or: await model.loadParamsFrom(seg.floats(0, count))
 * ```
 */
import { rmSync } from "node:fs";
import { loadNative } from "./loader.ts";
import type { NativeAddon } from "./types.ts";

export class SharedSegment {
  /** Every byte of the segment, a view of the mapping itself (writes are seen by other mappers). */
  readonly bytes: Uint8Array;

  private constructor(
    /** The file the segment lives in. */
    readonly path: string,
    /** The mapped memory; collected with the segment, which unmaps it. */
    readonly buffer: ArrayBuffer,
  ) {
    this.bytes = new Uint8Array(buffer);
  }

  /** The segment's size in bytes. */
  get byteLength(): number {
    return this.buffer.byteLength;
  }

  /**
   * Makes (or truncates) `path` to `bytes` zero bytes and maps it. The memory is reserved now, so
   * a full /dev/shm is an Error with code "ENOSPC" here rather than a crash at the first write.
   * @param bytes an integer in 1..2^40
   */
  static create(path: string, bytes: number, addon: NativeAddon = loadNative()): SharedSegment {
    return new SharedSegment(path, addon.mapShared(path, bytes, true));
  }

  /**
   * Maps an existing segment. `bytes` must equal its size (a RangeError names both otherwise: the
   * two sides disagree about the layout); a missing file is an Error with code "ENOENT".
   */
  static open(path: string, bytes: number, addon: NativeAddon = loadNative()): SharedSegment {
    return new SharedSegment(path, addon.mapShared(path, bytes, false));
  }

  /**
   * A Float32Array view of `count` floats starting `offsetBytes` into the segment (a multiple of
   * 4: float views must be aligned). A view, not a copy: pass it to `set()`, or to a model's
   * `copyParamsTo`/`loadParamsFrom`.
   */
  floats(offsetBytes: number, count: number): Float32Array {
    if (!Number.isInteger(offsetBytes) || offsetBytes < 0 || offsetBytes % 4 !== 0) {
      throw new RangeError(`SharedSegment.floats: offsetBytes must be a non-negative multiple of 4, got ${offsetBytes}`);
    }
    if (!Number.isInteger(count) || count < 0) {
      throw new RangeError(`SharedSegment.floats: count must be a non-negative integer, got ${count}`);
    }
    if (offsetBytes + count * 4 > this.byteLength) {
      throw new RangeError(
        `SharedSegment.floats: ${count} floats at byte ${offsetBytes} end at byte ${offsetBytes + count * 4}, ` +
          `past the segment's ${this.byteLength} bytes (${this.path})`,
      );
    }
    return new Float32Array(this.buffer, offsetBytes, count);
  }

  /**
   * Removes the segment's file name (if it is still there). Mappings already made stay valid;
   * new `open()` calls fail. The memory is freed when the last mapping goes.
   */
  unlink(): void {
    rmSync(this.path, { force: true });
  }
}
