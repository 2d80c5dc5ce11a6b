/**
 * Actors run in their own process groups: a terminal's Ctrl-C (SIGINT to the foreground process
 * group) reaches the coordinator only, and the coordinator decides what happens to its actors.
 * They still never outlive it: killed with SIGKILL, its actors exit too — even one whose JS
 * thread is blocked and cannot notice the lost connection.
 */
import { afterEach, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { processRuns, waitFor } from "../helpers/supervision.ts";

const FIXTURE = join(import.meta.dir, "..", "fixtures", "coordinator.ts");

interface Coordinator {
  pid: number;
  /** The next line it prints (a JSON value). */
  next<T>(): Promise<T>;
  exited: Promise<number>;
}

const started: { coord: Coordinator; actors: number[]; tmp: string }[] = [];
afterEach(() => {
  // Whatever a failed test left behind: the coordinator's group, then its actors' groups; and
  // the coordinator's socket folder, which a SIGKILLed coordinator cannot remove.
  for (const { coord, actors, tmp } of started.splice(0)) {
    for (const pid of [coord.pid, ...actors]) {
      try {
        process.kill(-pid, "SIGKILL");
      } catch {
        // already gone
      }
    }
    rmSync(tmp, { recursive: true, force: true });
  }
});

/** Starts the coordinator fixture as a terminal would: leader of its own process group. */
function startCoordinator(env: Record<string, string> = {}): Coordinator {
  const proc = Bun.spawn([process.execPath, FIXTURE], { stdout: "pipe", stderr: "inherit", detached: true, env: { ...process.env, ...env } });
  const reader = proc.stdout.getReader();
  const decoder = new TextDecoder();
  let buffered = "";
  return {
    pid: proc.pid,
    exited: proc.exited,
    async next<T>(): Promise<T> {
      while (!buffered.includes("\n")) {
        const { value, done } = await reader.read();
        if (done) throw new Error(`the coordinator ended before printing a line (so far: ${JSON.stringify(buffered)})`);
        buffered += decoder.decode(value, { stream: true });
      }
      const at = buffered.indexOf("\n");
      const line = buffered.slice(0, at);
      buffered = buffered.slice(at + 1);
      return JSON.parse(line) as T;
    },
  };
}

async function launch(env: Record<string, string> = {}): Promise<{ coord: Coordinator; actors: number[] }> {
  // The coordinator's temporary files (its socket folder) go in a folder this test removes.
  const tmp = mkdtempSync(join(tmpdir(), "revenant-pg-"));
  const coord = startCoordinator({ ...env, TMPDIR: tmp });
  const entry = { coord, actors: [] as number[], tmp };
  started.push(entry);
  entry.actors = await coord.next<number[]>();
  return entry;
}

test("Ctrl-C (SIGINT to the coordinator's process group) reaches the coordinator only", async () => {
  const { coord, actors } = await launch();
  expect(actors).toHaveLength(3);
  process.kill(-coord.pid, "SIGINT"); // what a terminal does on Ctrl-C
  const after = await coord.next<{ deaths: number; pids: number[] }>();
  expect(after).toEqual({ deaths: 0, pids: actors }); // the same processes answered; none died
  for (const pid of actors) expect(processRuns(pid)).toBe(true);
});

test("a coordinator killed with SIGKILL ends its actors, even one whose JS thread is blocked", async () => {
  const { coord, actors } = await launch({ COORDINATOR_STALL: "1" });
  expect(actors).toHaveLength(4); // three counters, then the stalled actor
  for (const pid of actors) expect(processRuns(pid)).toBe(true);
  process.kill(coord.pid, "SIGKILL");
  await coord.exited;
  await waitFor(() => actors.every((pid) => !processRuns(pid)), "every actor to exit after its coordinator died");
});
