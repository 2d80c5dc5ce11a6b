/**
 * The core supervision scenarios under Deno: Deno coordinator, Deno actor processes.
 * Run with `deno test -A tests/deno/`.
 */
import assert from "node:assert/strict";
import { ActorDiedError, ActorSpawnError, DeadlineExceededError, type Forensics } from "../../runtime/core/supervisor/errors.ts";
import { hangActor, killActor, randomPlan } from "../../runtime/core/chaos.ts";
import { MAX_TIMER_DELAY_MS } from "../../runtime/core/timers.ts";
import { allPids, flakyLauncher, makeSupervisor, processRuns, testFt, waitFor } from "../helpers/supervision.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };

Deno.test("acceptance: SIGKILL with 100 calls queued → all results in order, state continues; restarts spent → ActorDiedError", opts, async () => {
  const { sup } = makeSupervisor({ max_restarts: 1, max_task_retries: -1 });
  try {
    await sup.start([{ id: "counter", role: "counter" }]);
    const actor = sup.actor("counter");
    for (let i = 0; i < 5; i++) await actor.call("add", [1]);
    const pid = await actor.call<number>("pid");
    const calls = Array.from({ length: 100 }, () => actor.call<number>("add", [1]));
    Deno.kill(pid, "SIGKILL");
    assert.deepEqual(await Promise.all(calls), Array.from({ length: 100 }, (_, i) => 6 + i));
    Deno.kill(await actor.call<number>("pid"), "SIGKILL");
    await assert.rejects(actor.call("add", [1]), ActorDiedError);
  } finally {
    await sup.shutdown();
  }
});

Deno.test("hang: a SIGSTOPped actor is killed, restarted and its call retried; deadlines", opts, async () => {
  const { sup } = makeSupervisor({ max_restarts: -1, max_task_retries: 1, ping_timeout_s: 0.5 });
  try {
    await sup.start([{ id: "c", role: "counter" }]);
    const actor = sup.actor("c");
    await actor.call("add", [1]);
    hangActor(actor);
    assert.equal(await actor.call("add", [1]), 2);
    await assert.rejects(actor.call("slow", [10_000], { deadline: 0.2 }), DeadlineExceededError);
    assert.equal(await actor.call("value"), 2);
  } finally {
    await sup.shutdown();
  }
});

Deno.test("fail fast and no restarts: enable_fault_tolerance false, max_restarts 0", opts, async () => {
  for (const ft of [{ enable_fault_tolerance: false }, { max_restarts: 0 }]) {
    const { sup } = makeSupervisor(ft);
    try {
      await sup.start([{ id: "c", role: "counter" }]);
      killActor(sup.actor("c"));
      await assert.rejects(sup.actor("c").call("value"), ActorDiedError);
      assert.equal(sup.actor("c").incarnation, 1);
    } finally {
      await sup.shutdown();
    }
  }
});

Deno.test("seeded chaos (by call number): 4 actors × 200 calls, every call exact, no process left", opts, async () => {
  const seed = Number(Deno.env.get("CHAOS_SEED") ?? 7);
  const { sup } = makeSupervisor({ max_restarts: -1, max_task_retries: -1, ping_timeout_s: 0.5 });
  try {
    await sup.start(Array.from({ length: 4 }, (_, i) => ({ id: `a${i}`, role: "counter" })));
    // Faults at seeded call numbers, never by elapsed time: every machine injects all of them.
    const plan = randomPlan({ seed, steps: [0, 0], calls: Object.fromEntries(sup.actors().map((a) => [a.id, 200])), count: 8 });
    const results = await Promise.all(sup.actors().map(async (a) => {
      const out: number[] = [];
      let n = 0;
      const call = () => {
        const p = a.call<number>("add", [1]);
        plan.afterCall(a, 0, ++n);
        return p;
      };
      for (let k = 0; k < 200; k += 10) out.push(...await Promise.all(Array.from({ length: 10 }, call)));
      return out;
    }));
    await plan.settled();
    assert.equal(plan.injected, 8, `seed ${seed}: planned faults not all injected`);
    for (const r of results) assert.deepEqual(r, Array.from({ length: 200 }, (_, k) => k + 1), `seed ${seed}`);
    await waitFor(() => sup.metrics.totals("counter").failures === plan.injected, "faults detected", 15_000);
    const pids = allPids(sup);
    await sup.shutdown();
    for (const pid of pids) assert.equal(processRuns(pid), false, `pid ${pid} outlived shutdown (seed ${seed})`);
  } finally {
    await sup.shutdown();
  }
});

Deno.test("failed spawns: EAGAIN retried and counted; EMFILE until max_restarts → ActorSpawnError", opts, async () => {
  const flaky = makeSupervisor({ max_restarts: 5, max_task_retries: -1 }, { launcher: flakyLauncher([2, 3], "EAGAIN") }).sup;
  try {
    await flaky.start([{ id: "c", role: "counter" }]);
    killActor(flaky.actor("c"));
    assert.equal(await flaky.actor("c").call("add", [1]), 1);
    assert.equal(flaky.actor("c").restarts, 3);
  } finally {
    await flaky.shutdown();
  }
  const { sup } = makeSupervisor({ max_restarts: 2 }, { launcher: flakyLauncher((n) => n > 1, "EMFILE") });
  try {
    await sup.start([{ id: "c", role: "counter" }]);
    killActor(sup.actor("c"));
    const err = await sup.actor("c").call("value").then(() => undefined, (e: Error) => e);
    assert.ok(err instanceof ActorSpawnError, String(err));
    assert.equal(err.errno, "EMFILE");
    assert.equal(sup.actor("c").state, "failed");
  } finally {
    await sup.shutdown();
  }
});

Deno.test("a hung actor's death event carries its last lines and process state; secrets stay out of actors", opts, async () => {
  Deno.env.set("REVENANT_TOKEN", "server-token");
  const { sup } = makeSupervisor({ max_restarts: -1, max_task_retries: -1, ping_timeout_s: 0.5 });
  try {
    await sup.start([{ id: "s", role: "staller", options: { stall_on_call: 2 } }, { id: "c", role: "counter" }]);
    assert.deepEqual(await Promise.all([1, 2].map((i) => sup.actor("s").call("work", [i]))), [1, 2]);
    const death = sup.events.events.find((e) => e.type === "death")!;
    assert.equal(death.cause, "hang");
    const f = death.forensics as Forensics;
    assert.ok(f.last_lines.includes("stalling on call 2"), JSON.stringify(f.last_lines));
    assert.match(String(f.process.state), /^S/);
    const env = await sup.actor("c").call<Record<string, string>>("env");
    assert.equal(env.REVENANT_TOKEN, undefined);
  } finally {
    Deno.env.delete("REVENANT_TOKEN");
    await sup.shutdown();
  }
});

Deno.test("call_deadline_s=1e300 and other huge durations never hand the runtime an overflowing timer", opts, async () => {
  const delays: number[] = [];
  const original = globalThis.setTimeout;
  globalThis.setTimeout = ((cb: () => void, ms?: number) => (delays.push(ms ?? 0), original(cb, ms))) as typeof setTimeout;
  const huge = { ...testFt({ max_task_retries: 0 }), call_deadline_s: 1e300, health_check_timeout_s: 1e300, shutdown_grace_s: 1e300 };
  const { sup } = makeSupervisor({}, { faultTolerance: huge, startTimeoutS: 1e300 });
  try {
    await sup.start([{ id: "c", role: "counter" }]);
    assert.equal(await sup.actor("c").call("slow", [30]), 0);
    assert.equal((await sup.probeHealth())[0]!.healthy, true);
  } finally {
    await sup.shutdown();
    globalThis.setTimeout = original;
  }
  assert.equal(sup.events.count("death"), 0);
  assert.deepEqual(delays.filter((d) => d > MAX_TIMER_DELAY_MS), []);
});

Deno.test("Ctrl-C to the coordinator's process group does not reach its actors", opts, async () => {
  const fixture = new URL("../fixtures/coordinator.ts", import.meta.url).pathname;
  const tmp = Deno.makeTempDirSync({ prefix: "revenant-pg-" }); // the coordinator's socket folder goes here
  const coord = new Deno.Command(Deno.execPath(), { args: ["run", "-A", fixture], env: { TMPDIR: tmp }, stdout: "piped", stderr: "inherit", stdin: "null", detached: true }).spawn();
  const lines = coord.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let buffered = "";
  const next = async <T>(): Promise<T> => {
    while (!buffered.includes("\n")) {
      const { value, done } = await lines.read();
      if (done) throw new Error(`coordinator ended; printed ${JSON.stringify(buffered)}`);
      buffered += value;
    }
    const [line, ...rest] = buffered.split("\n");
    buffered = rest.join("\n");
    return JSON.parse(line!) as T;
  };
  let actors: number[] = [];
  try {
    actors = await next<number[]>();
    Deno.kill(-coord.pid, "SIGINT");
    assert.deepEqual(await next<{ deaths: number; pids: number[] }>(), { deaths: 0, pids: actors });
    Deno.kill(coord.pid, "SIGKILL");
    await coord.status;
    await waitFor(() => actors.every((pid) => !processRuns(pid)), "actors to exit after their coordinator died");
  } finally {
    for (const pid of [coord.pid, ...actors]) {
      try {
        Deno.kill(-pid, "SIGKILL");
      } catch {
        // gone
      }
    }
    await lines.cancel().catch(() => {});
    Deno.removeSync(tmp, { recursive: true });
  }
});
