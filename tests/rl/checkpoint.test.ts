/** Checkpoints: atomic, checksummed, pruned; corrupt or torn ones are skipped for the previous. */
import { describe, expect, test } from "bun:test";
import { cpSync, existsSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join, relative } from "node:path";
import { CheckpointError, CheckpointStore } from "../../runtime/core/checkpoint/store.ts";
import { CheckpointWriter } from "../../runtime/core/checkpoint/writer.ts";
import { DISK, WriteError, type DurableSteps } from "../../native/files.ts";
import { tempDir } from "../helpers/tmp.ts";

const fresh = () => tempDir("revenant-ckpt-");
const states = (k: number) => new Map<string, unknown>([
  ["actor_rollout", { weights: new Float32Array([k, k + 0.5, -k]), step: k }],
  ["critic", { weights: new Float64Array([k * 2]), tokens: new Int32Array([1, 2, k]) }],
]);

/** A store in a fresh folder keeping `keep`, its warnings collected, with steps 1..saved saved. */
async function savedStore(keep: number, saved: number): Promise<{ root: string; store: CheckpointStore; warnings: string[] }> {
  const root = fresh();
  const warnings: string[] = [];
  const store = new CheckpointStore(root, keep, (m) => warnings.push(m));
  for (let k = 1; k <= saved; k++) await store.save(k, states(k), { step: k });
  return { root, store, warnings };
}

describe("checkpoint store", () => {
  test("round-trips actor states (typed arrays included) and trainer state", async () => {
    const store = new CheckpointStore(fresh(), 3);
    await store.save(10, states(10), { step: 10, data: { epoch: 1, offset: 7 } });
    const got = store.latest<{ step: number; data: { epoch: number; offset: number } }>()!;
    expect(got.step).toBe(10);
    expect(got.manifest.trainer).toEqual({ step: 10, data: { epoch: 1, offset: 7 } });
    expect(got.states.get("actor_rollout")).toEqual({ weights: new Float32Array([10, 10.5, -10]), step: 10 });
    expect(got.states.get("critic")).toEqual({ weights: new Float64Array([20]), tokens: new Int32Array([1, 2, 10]) });
    expect(got.manifest.files.map((f) => f.sha256.length)).toEqual([64, 64]);
  });

  test("keeps the last K and leaves no temporary folder", async () => {
    const root = fresh();
    const store = new CheckpointStore(root, 2);
    for (const s of [5, 10, 15, 20]) await store.save(s, states(s), { step: s });
    expect(store.steps()).toEqual([20, 15]);
    expect(readdirSync(root).sort()).toEqual(["step-15", "step-20"]);
  });

  test("a corrupted latest checkpoint is detected and the previous one used, with a warning", async () => {
    const { root, store, warnings } = await savedStore(3, 2);
    const file = join(root, "step-2", "critic.state");
    const bytes = readFileSync(file);
    bytes[bytes.length - 3]! ^= 0xff;
    writeFileSync(file, bytes);
    expect(store.latest()!.step).toBe(1);
    expect(warnings[0]).toContain("skipping checkpoint step 2");
    expect(warnings[0]).toContain("critic.state");
    expect(() => store.load(2)).toThrow(CheckpointError);
  });

  test("a torn checkpoint (missing file, truncated manifest) is skipped", async () => {
    const { root, store, warnings } = await savedStore(5, 3);
    rmSync(join(root, "step-3", "actor_rollout.state"));
    writeFileSync(join(root, "step-2", "manifest.json"), '{"format": "revenant-checkpo');
    expect(store.latest()!.step).toBe(1);
    expect(warnings).toHaveLength(2);
    expect(warnings[1]).toContain("manifest unreadable");
  });

  test("a checkpoint under another step's name (a folder copied by hand) is refused, not loaded as that step", async () => {
    const { root, store, warnings } = await savedStore(5, 2);
    rmSync(join(root, "step-2"), { recursive: true });
    cpSync(join(root, "step-1"), join(root, "step-2"), { recursive: true });
    expect(() => store.load(2)).toThrow("manifest says step 1");
    expect(store.latest()!.step).toBe(1);
    expect(warnings[0]).toContain("skipping checkpoint step 2");
  });

  test("no checkpoint at all gives undefined", () => {
    expect(new CheckpointStore(join(fresh(), "none"), 2).latest()).toBeUndefined();
  });

  test("durable order: files synced, then the temporary folder, then the rename, then the parent", async () => {
    // A skipped or early fsync leaves the same files behind until the power fails, so only the
    // order of the steps shows it: the steps go through a recorder, then to the real disk.
    const root = fresh();
    const log: string[] = [];
    const name = (p: string) => relative(root, p).replace(/^\.tmp-step-7-[0-9a-f]{8}/, "TMP") || ".";
    const recorder: DurableSteps = {
      writeSynced: (path, chunks, onChunk) => (log.push(`file ${name(path)}`), DISK.writeSynced(path, chunks, onChunk)),
      fsyncDir: (path) => (log.push(`folder ${name(path)}`), DISK.fsyncDir(path)),
      rename: (from, to) => (log.push(`rename ${name(from)} -> ${name(to)}`), DISK.rename(from, to)),
    };
    await new CheckpointStore(root, 3, () => {}, recorder).save(7, states(7), { step: 7 });
    expect(log).toEqual([
      "file TMP/actor_rollout.state",
      "file TMP/critic.state",
      "file TMP/manifest.json",
      "folder TMP", // the entries of the new folder are on disk before it gets its real name
      "rename TMP -> step-7",
      "folder .", // the rename itself is on disk before save returns
    ]);
    expect(new CheckpointStore(root, 3).latest()!.step).toBe(7);
  });

  test("a failed save leaves the previous checkpoint and no debris", async () => {
    const root = fresh();
    const store = new CheckpointStore(root, 3);
    await store.save(1, states(1), { step: 1 });
    const bad = new Map<string, unknown>([["x", { f: () => 1 }]]);
    await expect(store.save(2, bad, {})).rejects.toThrow();
    expect(readdirSync(root)).toEqual(["step-1"]);
    expect(existsSync(join(root, "step-1", "manifest.json"))).toBe(true);
  });
});

describe("checkpoint writer", () => {
  /** Disk steps that log their order and hold each file write until `release()`. */
  function gatedDisk(root: string) {
    const log: string[] = [];
    const gates: (() => void)[] = [];
    const name = (p: string) => relative(root, p).replace(/^\.tmp-(step-\d+)-[0-9a-f]{8}/, "TMP-$1") || ".";
    const disk: DurableSteps = {
      writeSynced: async (path, chunks, onChunk) => {
        await new Promise<void>((resolve) => gates.push(resolve));
        log.push(`file ${name(path)}`);
        return DISK.writeSynced(path, chunks, onChunk);
      },
      fsyncDir: (path) => (log.push(`folder ${name(path)}`), DISK.fsyncDir(path)),
      rename: (from, to) => (log.push(`rename ${name(from)} -> ${name(to)}`), DISK.rename(from, to)),
    };
    /** Lets held writes through until `until` resolves. */
    const drain = async (until: Promise<unknown>) => {
      let done = false;
      void until.finally(() => (done = true));
      while (!done) {
        gates.splice(0).forEach((open) => open());
        await new Promise((r) => setImmediate(r));
      }
    };
    return { log, disk, gates, drain };
  }

  test("a write goes on after write() returns, with the trainer state as handed over; the next waits for it, so writes never overlap and stay in order", async () => {
    const root = fresh();
    const { log, disk, gates, drain } = gatedDisk(root);
    const writer = new CheckpointWriter(new CheckpointStore(root, 3, () => {}, disk));
    const trainer = { step: 1, data: { offset: 8 } };
    // The actors' states are still on their way when write() returns; the trainer state is copied.
    let arrive!: (s: Map<string, unknown>) => void;
    await writer.write(1, new Promise((resolve) => (arrive = resolve)), trainer);
    trainer.data.offset = 99;
    arrive(states(1));
    // Under way, not on disk: its first file waits at the gate; the step is not listed yet.
    while (gates.length === 0) await new Promise((r) => setImmediate(r));
    expect(writer.store.steps()).toEqual([]);
    const second = writer.write(2, Promise.resolve(states(2)), { step: 2 });
    await drain(second);
    await drain(writer.settled());
    expect(log.indexOf("folder .")).toBeLessThan(log.indexOf("file TMP-step-2/actor_rollout.state"));
    expect(log.filter((l) => l.startsWith("rename"))).toEqual(["rename TMP-step-1 -> step-1", "rename TMP-step-2 -> step-2"]);
    expect(await writer.durableSteps()).toEqual([2, 1]);
    expect(writer.store.load<typeof trainer>(1).manifest.trainer.data.offset).toBe(8);
    expect(readdirSync(root).sort()).toEqual(["step-1", "step-2"]);
  });

  test("a failed write is raised by check() once it has failed, by settled(), and by the next write, as the store's WriteError", async () => {
    const root = join(fresh(), "checkpoints");
    writeFileSync(root, "a file where the checkpoint folder should be");
    const writer = new CheckpointWriter(new CheckpointStore(root, 3));
    await writer.write(1, Promise.resolve(states(1)), { step: 1 });
    const err = await writer.settled().then(() => undefined, (e: unknown) => e);
    expect(err).toBeInstanceOf(WriteError);
    expect((err as WriteError).code).toBe("EEXIST");
    expect((err as Error).message).toContain(`cannot write ${join(root, ".tmp-step-1-")}`);
    expect(() => writer.check()).toThrow(err as Error);
    await expect(writer.write(2, Promise.resolve(states(2)), { step: 2 })).rejects.toBe(err);
  });

  test("snapshots that never come (an actor given up on) fail the write with their error, leaving nothing behind", async () => {
    const root = fresh();
    const writer = new CheckpointWriter(new CheckpointStore(root, 3));
    const lost = new Error("actor critic died (SIGKILL); restarts exhausted");
    await writer.write(1, Promise.reject(lost), { step: 1 });
    await expect(writer.settled()).rejects.toBe(lost);
    expect(readdirSync(root)).toEqual([]);
  });
});
