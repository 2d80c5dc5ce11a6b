/**
 * Seeded chaos: random SIGKILLs, SIGSTOPs and corrupted frames against 8 actors serving 500
 * calls each, struck at seeded call numbers (never by elapsed time, so every machine injects
 * the same faults). Every call must resolve exactly once with the right value, in order; metrics must
 * equal the faults injected; no process may be left behind. A failure prints the seed:
 * rerun with CHAOS_SEED=<seed> bun test tests/core/chaos.test.ts
 */
import { expect, test } from "bun:test";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { CHAOS_ACTIONS, randomPlan } from "../../runtime/core/chaos.ts";
import { allPids, makeSupervisor, processRuns, waitFor } from "../helpers/supervision.ts";
import { tempDir } from "../helpers/tmp.ts";

const SEED = Number(process.env.CHAOS_SEED ?? 20261121);
const ACTORS = 8;
const CALLS = 500;
const WINDOW = 16; // calls in flight per actor
const FAULTS = 24;

/**
 * Actor host processes of this test's supervisor (the address in their spawn spec is its
 * listener's), among the children of this test process: other suites' actors are not its concern.
 */
function childHosts(address: unknown): number[] {
  const out: number[] = [];
  const own = JSON.stringify(address);
  for (const name of readdirSync("/proc")) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(join("/proc", name, "stat"), "utf8");
      const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
      const cmd = readFileSync(join("/proc", name, "cmdline"), "utf8");
      if (ppid !== process.pid || !cmd.includes("runtime/core/host/host.ts") || !processRuns(Number(name))) continue;
      const spec = readFileSync(join("/proc", name, "environ"), "utf8").split("\0").find((l) => l.startsWith("REVENANT_ACTOR_SPEC="));
      if (spec && JSON.stringify(JSON.parse(spec.slice(spec.indexOf("=") + 1)).address) === own) out.push(Number(name));
    } catch {
      // exited while we looked
    }
  }
  return out;
}

test(`chaos: ${ACTORS} actors × ${CALLS} calls under random kill/hang/corrupt (seed ${SEED})`, async () => {
  const { sup } = makeSupervisor({ max_restarts: -1, max_task_retries: -1, ping_timeout_s: 0.4 });
  try {
    await sup.start(Array.from({ length: ACTORS }, (_, i) => ({ id: `a${i}`, role: "counter" })));
    const calls = Object.fromEntries(sup.actors().map((a) => [a.id, CALLS]));
    const plan = randomPlan({ seed: SEED, steps: [0, 0], calls, count: FAULTS });

    const results: number[][] = Array.from({ length: ACTORS }, () => []);
    const settled: number[][] = Array.from({ length: ACTORS }, () => new Array(CALLS).fill(0));
    const errors: string[] = [];
    await Promise.all(sup.actors().map(async (actor, i) => {
      let next = 0;
      const worker = async () => {
        while (next < CALLS) {
          const k = next++;
          try {
            const pending = actor.call<number>("add", [1]);
            plan.afterCall(actor, 0, k + 1);
            const v = await pending;
            results[i]![k] = v;
          } catch (e) {
            errors.push(`${actor.id} call ${k}: ${(e as Error).message}`);
          }
          settled[i]![k]!++;
        }
      };
      await Promise.all(Array.from({ length: WINDOW }, worker));
    }));
    await plan.settled();
    expect(plan.injected).toBe(FAULTS);

    // Faults injected late are found after the calls finish (a hang needs its ping timeout).
    await waitFor(() => sup.metrics.totals("counter").failures === plan.injected &&
      sup.actors().every((a) => a.state === "alive"), "every injected fault to be detected and repaired", 15_000);

    expect(errors).toEqual([]);
    for (let i = 0; i < ACTORS; i++) {
      expect(settled[i]!.every((n) => n === 1)).toBe(true); // exactly once
      expect(results[i]).toEqual(Array.from({ length: CALLS }, (_, k) => k + 1)); // right value, in order
      expect(await sup.actors()[i]!.call("value")).toBe(CALLS);
    }
    const totals = sup.metrics.totals("counter");
    expect(totals.failures).toBe(plan.injected);
    expect(totals.restarts).toBe(plan.injected);
    for (const actor of sup.actors()) {
      const injected = plan.ledger.filter((r) => r.actor === actor.id).length;
      expect(sup.events.events.filter((e) => e.type === "death" && e.actor === actor.id).length).toBe(injected);
      expect(actor.restarts).toBe(injected);
    }
    const causes = new Set(sup.events.events.filter((e) => e.type === "death").map((e) => String(e.cause)));
    for (const c of causes) expect(["exit", "hang", "protocol"]).toContain(c);
    const pids = allPids(sup);
    const address = sup.actorAddress;
    expect(childHosts(address)).toHaveLength(ACTORS); // the check below sees this test's actors
    await sup.shutdown();
    for (const pid of pids) expect(processRuns(pid)).toBe(false);
    expect(childHosts(address)).toEqual([]);
    const counts = CHAOS_ACTIONS.map((a) => `${plan.ledger.filter((r) => r.action === a).length} ${a}`).join(", ");
    console.log(`chaos seed ${SEED}: ${counts}; all ${ACTORS * CALLS} calls exact`);
  } catch (e) {
    console.error(`chaos test failed; reproduce with CHAOS_SEED=${SEED}`);
    await sup.shutdown();
    throw e;
  }
}, 120_000);

test("no actor outlives a coordinator killed with SIGKILL", async () => {
  // A coordinator killed with SIGKILL cannot remove its socket folder: give it one we remove.
  const env = { ...process.env, TMPDIR: tempDir("revenant-orphan-") };
  const coord = Bun.spawn([process.execPath, join(import.meta.dir, "..", "fixtures", "coordinator.ts")], { stdout: "pipe", stderr: "inherit", env });
  const reader = coord.stdout.getReader();
  let text = "";
  while (!text.includes("\n")) {
    const { value, done } = await reader.read();
    if (done) break;
    text += new TextDecoder().decode(value);
  }
  const pids = JSON.parse(text.split("\n")[0]!) as number[];
  expect(pids).toHaveLength(3);
  for (const pid of pids) expect(processRuns(pid)).toBe(true);
  coord.kill("SIGKILL");
  await coord.exited;
  await waitFor(() => pids.every((pid) => !processRuns(pid)), "actors to exit after their coordinator died", 5000);
});
