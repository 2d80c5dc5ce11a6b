/**
 * The one place Revenant writes files it must not lose: durable whole-file writes (temporary
 * file, fsync, rename, fsync of the folder, so a crash leaves the old file or the new one, never
 * a mix) and synchronous line appends. Every failure is a `WriteError` naming the path and the
 * system error code (ENOSPC, EACCES, EROFS, ...), so a job that cannot write says why.
 */
import { appendFileSync, closeSync, fsyncSync, openSync, renameSync, rmSync, writeSync } from "node:fs";
import { open, rename, rm } from "node:fs/promises";
import { dirname } from "node:path";

/** A file could not be written; `code` is the system error code when there is one. */
export class WriteError extends Error {
  override name = "WriteError";
  readonly code: string | undefined;
  constructor(readonly path: string, cause: unknown) {
    const code = (cause as NodeJS.ErrnoException | undefined)?.code;
    super(`cannot write ${path}: ${code ?? "error"} (${(cause as Error)?.message ?? String(cause)})`, { cause });
    this.code = code;
  }
}

/** Runs `write`, turning any failure into a WriteError for `path` (one already named passes through). */
export function writing<T>(path: string, write: () => T): T {
  try {
    return write();
  } catch (e) {
    throw e instanceof WriteError ? e : new WriteError(path, e);
  }
}

/** Writes every byte of `chunks` to a new file and fsyncs it; `onChunk` sees each chunk (hashing). */
export function writeSynced(path: string, chunks: readonly Uint8Array[], onChunk?: (c: Uint8Array) => void): number {
  return writing(path, () => {
    const fd = openSync(path, "w", 0o600);
    let bytes = 0;
    try {
      for (const chunk of chunks) {
        let off = 0;
        while (off < chunk.byteLength) off += writeSync(fd, chunk, off, chunk.byteLength - off);
        onChunk?.(chunk);
        bytes += chunk.byteLength;
      }
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    return bytes;
  });
}

/** Flushes a folder's entries (a rename into it) to disk. */
export function fsyncDir(path: string): void {
  writing(path, () => {
    const fd = openSync(path, "r");
    try {
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
  });
}

/** `writing` for an asynchronous write. */
export async function writingAsync<T>(path: string, write: () => Promise<T>): Promise<T> {
  try {
    return await write();
  } catch (e) {
    throw e instanceof WriteError ? e : new WriteError(path, e);
  }
}

/** `writeSynced` off the event loop: the writes and the fsync run on the runtime's I/O threads. */
export function writeSyncedAsync(path: string, chunks: readonly Uint8Array[], onChunk?: (c: Uint8Array) => void): Promise<number> {
  return writingAsync(path, async () => {
    const file = await open(path, "w", 0o600);
    let bytes = 0;
    try {
      for (const chunk of chunks) {
        let off = 0;
        while (off < chunk.byteLength) off += (await file.write(chunk, off, chunk.byteLength - off)).bytesWritten;
        onChunk?.(chunk);
        bytes += chunk.byteLength;
      }
      await file.sync();
    } finally {
      await file.close();
    }
    return bytes;
  });
}

/** `fsyncDir` off the event loop. */
export function fsyncDirAsync(path: string): Promise<void> {
  return writingAsync(path, async () => {
    const dir = await open(path, "r");
    try {
      await dir.sync();
    } finally {
      await dir.close();
    }
  });
}

/**
 * The steps a durable folder write is made of, as one object so a caller can be handed a recorder
 * in place of the disk: the order of these calls is the whole crash-safety argument, and only a
 * recorder can see it (a skipped fsync leaves the same files behind until the machine loses power).
 */
export interface DurableSteps {
  writeSynced(path: string, chunks: readonly Uint8Array[], onChunk?: (c: Uint8Array) => void): Promise<number>;
  fsyncDir(path: string): Promise<void>;
  rename(from: string, to: string): Promise<void>;
}

/** The real steps, on the disk, off the event loop. */
export const DISK: DurableSteps = { writeSynced: writeSyncedAsync, fsyncDir: fsyncDirAsync, rename };

/** Replaces `path` atomically and durably with `data`. */
export function writeFileDurably(path: string, data: string | Uint8Array): void {
  const tmp = `${path}.tmp`;
  try {
    writeSynced(tmp, [typeof data === "string" ? new TextEncoder().encode(data) : data]);
    writing(path, () => renameSync(tmp, path));
  } catch (e) {
    rmSync(tmp, { force: true });
    throw e;
  }
  fsyncDir(dirname(path));
}

/**
 * `writeFileDurably` off the event loop: the same steps and guarantee (the old file or the new
 * one, on disk when the promise resolves), with the writes and fsyncs on the runtime's I/O
 * threads, so a server answering other requests is not held up by the disk.
 */
export async function writeFileDurablyAsync(path: string, data: string | Uint8Array): Promise<void> {
  const tmp = `${path}.tmp`;
  const bytes = typeof data === "string" ? new TextEncoder().encode(data) : data;
  try {
    const file = await open(tmp, "w", 0o600);
    try {
      await file.writeFile(bytes);
      await file.sync();
    } finally {
      await file.close();
    }
    await rename(tmp, path);
  } catch (e) {
    await rm(tmp, { force: true });
    throw e instanceof WriteError ? e : new WriteError(path, e);
  }
  const dir = await open(dirname(path), "r").catch((e) => {
    throw new WriteError(dirname(path), e);
  });
  try {
    await dir.sync();
  } catch (e) {
    throw new WriteError(dirname(path), e);
  } finally {
    await dir.close();
  }
}

/** Appends one line (a newline is added) synchronously: on disk before the caller goes on. */
export function appendLine(path: string, line: string): void {
  writing(path, () => appendFileSync(path, line + "\n"));
}
