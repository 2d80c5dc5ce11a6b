/** Checkpoints: atomic, checksummed, pruned; corrupt or torn ones are skipped for the previous. */
import { describe, expect, test } from "bun:test";
import { cpSync, existsSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join, relative } from "node:path";
import { CheckpointError, CheckpointStore } from "../../runtime/core/checkpoint/store.ts";
import { DISK, type DurableSteps } from "../../native/files.ts";
import { tempDir } from "../helpers/tmp.ts";

const fresh = () => tempDir("revenant-ckpt-");
const states = (k: number) => new Map<string, unknown>([
  ["actor_rollout", { weights: new Float32Array([k, k + 0.5, -k]), step: k }],
  ["critic", { weights: new Float64Array([k * 2]), tokens: new Int32Array([1, 2, k]) }],
]);

/** A store in a fresh folder keeping `keep`, its warnings collected, with steps 1..saved saved. */
function savedStore(keep: number, saved: number): { root: string; store: CheckpointStore; warnings: string[] } {
  const root = fresh();
  const warnings: string[] = [];
  const store = new CheckpointStore(root, keep, (m) => warnings.push(m));
  for (let k = 1; k <= saved; k++) store.save(k, states(k), { step: k });
  return { root, store, warnings };
}

describe("checkpoint store", () => {
  test("round-trips actor states (typed arrays included) and trainer state", () => {
    const store = new CheckpointStore(fresh(), 3);
    store.save(10, states(10), { step: 10, data: { epoch: 1, offset: 7 } });
    const got = store.latest<{ step: number; data: { epoch: number; offset: number } }>()!;
    expect(got.step).toBe(10);
    expect(got.manifest.trainer).toEqual({ step: 10, data: { epoch: 1, offset: 7 } });
    expect(got.states.get("actor_rollout")).toEqual({ weights: new Float32Array([10, 10.5, -10]), step: 10 });
    expect(got.states.get("critic")).toEqual({ weights: new Float64Array([20]), tokens: new Int32Array([1, 2, 10]) });
    expect(got.manifest.files.map((f) => f.sha256.length)).toEqual([64, 64]);
  });

  test("keeps the last K and leaves no temporary folder", () => {
    const root = fresh();
    const store = new CheckpointStore(root, 2);
    for (const s of [5, 10, 15, 20]) store.save(s, states(s), { step: s });
    expect(store.steps()).toEqual([20, 15]);
    expect(readdirSync(root).sort()).toEqual(["step-15", "step-20"]);
  });

  test("a corrupted latest checkpoint is detected and the previous one used, with a warning", () => {
    const { root, store, warnings } = savedStore(3, 2);
    const file = join(root, "step-2", "critic.state");
    const bytes = readFileSync(file);
    bytes[bytes.length - 3]! ^= 0xff;
    writeFileSync(file, bytes);
    expect(store.latest()!.step).toBe(1);
    expect(warnings[0]).toContain("skipping checkpoint step 2");
    expect(warnings[0]).toContain("critic.state");
    expect(() => store.load(2)).toThrow(CheckpointError);
  });

  test("a torn checkpoint (missing file, truncated manifest) is skipped", () => {
    const { root, store, warnings } = savedStore(5, 3);
    rmSync(join(root, "step-3", "actor_rollout.state"));
    writeFileSync(join(root, "step-2", "manifest.json"), '{"format": "revenant-checkpo');
    expect(store.latest()!.step).toBe(1);
    expect(warnings).toHaveLength(2);
    expect(warnings[1]).toContain("manifest unreadable");
  });

  test("a checkpoint under another step's name (a folder copied by hand) is refused, not loaded as that step", () => {
    const { root, store, warnings } = savedStore(5, 2);
    rmSync(join(root, "step-2"), { recursive: true });
    cpSync(join(root, "step-1"), join(root, "step-2"), { recursive: true });
    expect(() => store.load(2)).toThrow("manifest says step 1");
    expect(store.latest()!.step).toBe(1);
    expect(warnings[0]).toContain("skipping checkpoint step 2");
  });

  test("no checkpoint at all gives undefined", () => {
    expect(new CheckpointStore(join(fresh(), "none"), 2).latest()).toBeUndefined();
  });

  test("durable order: files synced, then the temporary folder, then the rename, then the parent", () => {
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
    new CheckpointStore(root, 3, () => {}, recorder).save(7, states(7), { step: 7 });
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

  test("a failed save leaves the previous checkpoint and no debris", () => {
    const root = fresh();
    const store = new CheckpointStore(root, 3);
    store.save(1, states(1), { step: 1 });
    const bad = new Map<string, unknown>([["x", { f: () => 1 }]]);
    expect(() => store.save(2, bad, {})).toThrow();
    expect(readdirSync(root)).toEqual(["step-1"]);
    expect(existsSync(join(root, "step-1", "manifest.json"))).toBe(true);
  });
});
