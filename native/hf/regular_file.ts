/**
 * Reading files a user names (weights, config.json, tokenizer files) without letting their kind
 * cost anything: a path that is not a regular file is refused at once, by name. A FIFO would
 * block the reader until some writer came, and `/dev/zero` (or a symlink to it) would be read
 * until memory ran out; neither is a file a model folder holds. Symlinks to regular files (the
 * Hugging Face cache links every file to a blob) are followed as usual.
 *
 * @example
 * ```ts
 * const text = readRegularFile("models/qwen/config.json").toString("utf8");
 * ```
 */
import { Buffer } from "node:buffer";
import { closeSync, constants, fstatSync, openSync, readSync, type Stats } from "node:fs";

/** A path that names something other than a regular file, or a file too large for its purpose. */
export class RefusedFileError extends Error {
  override name = "RefusedFileError";
}

/** What a stat says a path is, in words. */
export function fileKind(st: Stats): string {
  if (st.isDirectory()) return "a folder";
  if (st.isFIFO()) return "a FIFO (named pipe)";
  if (st.isCharacterDevice()) return "a character device";
  if (st.isBlockDevice()) return "a block device";
  if (st.isSocket()) return "a socket";
  return "not a regular file";
}

/**
 * Opens `path` for reading and checks it is a regular file. O_NONBLOCK makes opening a FIFO
 * return at once (instead of waiting for a writer), so the check on the open descriptor refuses
 * it without a race between the check and the read. Returns the descriptor and the file's size.
 */
export function openRegularFile(path: string): { fd: number; size: number } {
  const fd = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK);
  let st: Stats;
  try {
    st = fstatSync(fd);
  } catch (e) {
    closeSync(fd);
    throw e;
  }
  if (!st.isFile()) {
    closeSync(fd);
    throw new RefusedFileError(`${path} is ${fileKind(st)}; expected a regular file`);
  }
  return { fd, size: st.size };
}

/** Reads `length` bytes at `position` of `fd`; fewer when the file ends first. */
export function readAt(fd: number, position: number, length: number): Uint8Array {
  const out = new Uint8Array(length);
  let done = 0;
  while (done < length) {
    const n = readSync(fd, out, done, length - done, position + done);
    if (n === 0) break;
    done += n;
  }
  return done === length ? out : out.subarray(0, done);
}

/**
 * The bytes of the regular file `path`, refused when it is not one or is larger than
 * `maxBytes` (checked against its size before anything is read).
 */
export function readRegularFile(path: string, maxBytes = Number.MAX_SAFE_INTEGER): Buffer {
  const { fd, size } = openRegularFile(path);
  try {
    if (size > maxBytes) throw new RefusedFileError(`${path} is ${size} bytes, more than the ${maxBytes} allowed for it`);
    const bytes = readAt(fd, 0, size);
    return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  } finally {
    closeSync(fd);
  }
}
