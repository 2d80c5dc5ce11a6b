/**
 * Durable checkpoints: `<dir>/step-<n>/` holds one file per actor state plus `manifest.json`
 * with each file's size and SHA-256 and the trainer's own state (step, data position, seeds).
 *
 * Writing is crash-safe: everything goes into a temporary folder, each file is fsynced, the
 * folder is renamed into place and its parent fsynced. A crash mid-write leaves the previous
 * checkpoint whole. Loading verifies every checksum; a corrupt or torn checkpoint is skipped
 * with a warning and the one before it is used. Only the last `keep` are kept.
 *
 * An actor state file is one IPC frame (magic, version, length, msgpack body, aligned typed
 * array payloads), so large tensors are written and read without re-encoding.
 */
import { createHash, randomBytes } from "node:crypto";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { mkdir, readdir, rm } from "node:fs/promises";
import { join } from "node:path";
import { DISK, writingAsync, type DurableSteps } from "../../../native/files.ts";
import { FrameDecoder, FrameEncoder } from "../ipc/frame.ts";

export const MANIFEST = "manifest.json";
const FORMAT = "revenant-checkpoint/1";

export interface ManifestFile {
  actor: string;
  file: string;
  bytes: number;
  sha256: string;
}

export interface Manifest<T = unknown> {
  format: typeof FORMAT;
  step: number;
  created: string;
  files: ManifestFile[];
  /** The trainer's own state: step, data position, seeds, metrics history, ... */
  trainer: T;
}

export interface LoadedCheckpoint<T = unknown> {
  step: number;
  dir: string;
  manifest: Manifest<T>;
  states: Map<string, unknown>;
}

/** A checkpoint that cannot be used, and why. */
export class CheckpointError extends Error {
  override name = "CheckpointError";
}

const stepDir = (root: string, step: number) => join(root, `step-${step}`);
const fileName = (actor: string) => `${actor.replace(/[^a-zA-Z0-9_-]/g, "_")}.state`;

export class CheckpointStore {
  /** `disk` is the real disk unless a test records the order of the durable steps. */
  constructor(
    readonly root: string,
    private readonly keep: number,
    private readonly warn: (msg: string) => void = (m) => console.warn(m),
    private readonly disk: DurableSteps = DISK,
  ) {}

  /** Steps present on disk (complete or not), newest first. */
  steps(): number[] {
    if (!existsSync(this.root)) return [];
    return readdirSync(this.root)
      .map((name) => /^step-(\d+)$/.exec(name))
      .filter((m): m is RegExpExecArray => m !== null)
      .map((m) => Number(m[1]))
      .sort((a, b) => b - a);
  }

  /**
   * Writes a checkpoint atomically and prunes old ones; resolves with its folder once it is on
   * disk. The writes, fsyncs and renames run off the event loop. The states are encoded and the
   * trainer state copied before the first of them, so the caller's objects may change meanwhile.
   * One save at a time per store (CheckpointWriter keeps them in order): pruning removes any
   * temporary folder it finds.
   */
  async save<T>(step: number, states: Map<string, unknown>, trainer: T): Promise<string> {
    const encoder = new FrameEncoder();
    const encoded = [...states].map(([actor, state]) => ({ actor, file: fileName(actor), chunks: encoder.encode({ actor, state }) }));
    const created = new Date().toISOString();
    const trainerCopy = structuredClone(trainer);
    const tmp = join(this.root, `.tmp-step-${step}-${randomBytes(4).toString("hex")}`);
    await writingAsync(tmp, async () => {
      await mkdir(this.root, { recursive: true });
      await mkdir(tmp);
    });
    try {
      const files: ManifestFile[] = [];
      for (const { actor, file, chunks } of encoded) {
        const { bytes, sha256 } = await this.writeHashed(join(tmp, file), chunks);
        files.push({ actor, file, bytes, sha256 });
      }
      const manifest: Manifest<T> = { format: FORMAT, step, created, files, trainer: trainerCopy };
      await this.writeHashed(join(tmp, MANIFEST), [new TextEncoder().encode(JSON.stringify(manifest, null, 1))]);
      await this.disk.fsyncDir(tmp);
      const final = stepDir(this.root, step);
      await writingAsync(final, async () => {
        await rm(final, { recursive: true, force: true });
        await this.disk.rename(tmp, final);
      });
      await this.disk.fsyncDir(this.root);
      await writingAsync(this.root, () => this.prune());
      return final;
    } catch (e) {
      await rm(tmp, { recursive: true, force: true }).catch(() => {}); // the write error is the one to report
      throw e;
    }
  }

  /** Writes and fsyncs one file, hashing it on the way. */
  private async writeHashed(path: string, chunks: Uint8Array[]): Promise<{ bytes: number; sha256: string }> {
    const hash = createHash("sha256");
    const bytes = await this.disk.writeSynced(path, chunks, (c) => hash.update(c));
    return { bytes, sha256: hash.digest("hex") };
  }

  private async prune(): Promise<void> {
    for (const step of this.steps().slice(this.keep)) await rm(stepDir(this.root, step), { recursive: true, force: true });
    for (const name of await readdir(this.root)) if (name.startsWith(".tmp-")) await rm(join(this.root, name), { recursive: true, force: true });
  }

  /** Reads and verifies one checkpoint; throws CheckpointError naming what is wrong. */
  load<T>(step: number): LoadedCheckpoint<T> {
    const dir = stepDir(this.root, step);
    let manifest: Manifest<T>;
    try {
      manifest = JSON.parse(readFileSync(join(dir, MANIFEST), "utf8")) as Manifest<T>;
    } catch (e) {
      throw new CheckpointError(`${dir}: manifest unreadable (${(e as Error).message})`);
    }
    if (manifest.format !== FORMAT) throw new CheckpointError(`${dir}: format ${JSON.stringify(manifest.format)}, expected ${FORMAT}`);
    if (manifest.step !== step) throw new CheckpointError(`${dir}: manifest says step ${manifest.step}`);
    if (!Array.isArray(manifest.files)) throw new CheckpointError(`${dir}: manifest has no file list`);
    const states = new Map<string, unknown>();
    for (const f of manifest.files) {
      let bytes: Uint8Array;
      try {
        bytes = readFileSync(join(dir, f.file));
      } catch (e) {
        throw new CheckpointError(`${dir}/${f.file}: unreadable (${(e as Error).message})`);
      }
      const sha256 = createHash("sha256").update(bytes).digest("hex");
      if (bytes.byteLength !== f.bytes || sha256 !== f.sha256) {
        throw new CheckpointError(`${dir}/${f.file}: ${bytes.byteLength} bytes with sha256 ${sha256.slice(0, 12)}…, manifest says ${f.bytes} bytes, ${String(f.sha256).slice(0, 12)}…`);
      }
      let decoded: unknown[];
      try {
        decoded = new FrameDecoder().push(bytes);
      } catch (e) {
        throw new CheckpointError(`${dir}/${f.file}: not a state file (${(e as Error).message})`);
      }
      const record = decoded[0] as { actor?: unknown; state?: unknown } | undefined;
      if (decoded.length !== 1 || record?.actor !== f.actor) throw new CheckpointError(`${dir}/${f.file}: does not hold the state of ${f.actor}`);
      states.set(f.actor, record.state);
    }
    return { step, dir, manifest, states };
  }

  /** The newest checkpoint that verifies; corrupt ones are skipped with a warning. */
  latest<T>(): LoadedCheckpoint<T> | undefined {
    for (const step of this.steps()) {
      try {
        return this.load<T>(step);
      } catch (e) {
        this.warn(`warning: skipping checkpoint step ${step}: ${(e as Error).message}; trying the one before`);
      }
    }
    return undefined;
  }
}
