/** Byte helpers for frame tests. */
import { FrameEncoder } from "../../runtime/core/ipc/frame.ts";

/** The chunks of one frame as a single byte array. */
export function concat(chunks: readonly Uint8Array[]): Uint8Array {
  const out = new Uint8Array(chunks.reduce((n, c) => n + c.byteLength, 0));
  let at = 0;
  for (const c of chunks) {
    out.set(c, at);
    at += c.byteLength;
  }
  return out;
}

/** A whole frame for `message`. */
export const frameOf = (message: unknown): Uint8Array => concat(new FrameEncoder().encode(message));
