/**
 * Actors run in their own process groups: a terminal's Ctrl-C (SIGINT to the foreground process
 * group) reaches the coordinator only, and the coordinator decides what happens to its actors.
 * They still never outlive it: killed with SIGKILL, its actors exit too — even one whose JS
 * thread is blocked and cannot notice the lost connection, and one frozen by SIGSTOP. What actors
 * start (detached or double-forked) ends with them, and the next supervisor of the same mark removes
 * what a SIGKILLed coordinator left: processes and its socket folder.
 */
import { afterEach, expect, test } from "bun:test";
import { existsSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { makeSupervisor, processRuns, waitFor } from "../helpers/supervision.ts";

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

async function launch(env: Record<string, string> = {}): Promise<{ coord: Coordinator; actors: number[]; tmp: string }> {
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

test("a coordinator killed with SIGKILL ends an actor frozen by SIGSTOP within 5 s", async () => {
  const { coord, actors } = await launch();
  process.kill(actors[0]!, "SIGSTOP"); // its watchdog thread cannot run: only the kernel can end it
  process.kill(coord.pid, "SIGKILL");
  await coord.exited;
  await waitFor(() => actors.every((pid) => !processRuns(pid)), "every actor, the frozen one included, to exit", 5_000);
});

const helpers: number[] = [];
afterEach(() => {
  for (const pid of helpers.splice(0)) {
    try {
      process.kill(pid, "SIGKILL");
    } catch {
      // already gone
    }
  }
});

test("what an actor starts, detached or double-forked, ends with its incarnation and with its supervisor", async () => {
  const { sup } = makeSupervisor({ max_restarts: -1, max_task_retries: -1 });
  try {
    await sup.start([{ id: "h", role: "spawner" }]);
    const start = async () => {
      const pids = await Promise.all((["child", "detached", "double_fork"] as const).map((m) => sup.actor("h").call<number>("startHelper", [m])));
      helpers.push(...pids);
      for (const pid of pids) expect(processRuns(pid)).toBe(true);
      return pids;
    };
    const first = await start();
    sup.actor("h").current!.signal("SIGKILL"); // the incarnation dies; its helpers must not stay
    await waitFor(() => first.every((pid) => !processRuns(pid)), "the first incarnation's helpers to be killed");
    const second = await start(); // served by the restarted incarnation
    await sup.shutdown();
    await waitFor(() => second.every((pid) => !processRuns(pid)), "the helpers to be killed at shutdown");
  } finally {
    await sup.shutdown();
  }
});

test("the next supervisor of a SIGKILLed coordinator's mark removes its leftover processes and socket folder", async () => {
  const mark = `test-${process.pid}-${Date.now().toString(16)}`;
  const { coord, actors, tmp } = await launch({ COORDINATOR_MARK: mark, COORDINATOR_HELPER: "1" });
  const helper = actors.at(-1)!; // detached from the actor that started it: the kernel does not end it
  helpers.push(helper);
  process.kill(coord.pid, "SIGKILL");
  await coord.exited;
  await waitFor(() => actors.slice(0, -1).every((pid) => !processRuns(pid)), "the actors to exit");
  expect(processRuns(helper)).toBe(true);
  const leftover = readdirSync(tmp).filter((n) => n.startsWith("revenant-"));
  expect(leftover).toHaveLength(1);

  const savedTmp = process.env.TMPDIR;
  process.env.TMPDIR = tmp; // where the killed coordinator made its socket folder
  const notes: string[] = [];
  const { sup } = makeSupervisor({}, { mark, onSweep: (line) => notes.push(line) });
  try {
    await sup.start([{ id: "c", role: "counter" }]);
    expect(processRuns(helper)).toBe(false);
    expect(existsSync(join(tmp, leftover[0]!))).toBe(false);
    expect(notes).toEqual([expect.stringContaining(`1 process(es) (pid ${helper}), 1 socket folder(s)`)]);
  } finally {
    await sup.shutdown();
    if (savedTmp === undefined) delete process.env.TMPDIR;
    else process.env.TMPDIR = savedTmp;
  }
});
