/**
 * The core supervision scenarios under Deno: Deno coordinator, Deno actor processes.
 * Run with `deno test -A tests/deno/`.
 */
import assert from "node:assert/strict";
import { ActorDiedError, DeadlineExceededError } from "../../runtime/supervisor/errors.ts";
import { ChaosMonkey, hangActor, killActor } from "../../runtime/chaos.ts";
import { allPids, makeSupervisor, processRuns, waitFor } from "../helpers/supervision.ts";

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

Deno.test("seeded chaos: 4 actors × 200 calls, every call exact, no process left", opts, async () => {
  const seed = Number(Deno.env.get("CHAOS_SEED") ?? 7);
  const { sup } = makeSupervisor({ max_restarts: -1, max_task_retries: -1, ping_timeout_s: 0.5 });
  try {
    await sup.start(Array.from({ length: 4 }, (_, i) => ({ id: `a${i}`, role: "counter" })));
    const monkey = new ChaosMonkey(sup, { seed, meanIntervalS: 0.05 });
    monkey.start();
    const results = await Promise.all(sup.actors().map(async (a) => {
      const out: number[] = [];
      for (let k = 0; k < 200; k += 10) out.push(...await Promise.all(Array.from({ length: 10 }, () => a.call<number>("add", [1]))));
      return out;
    }));
    monkey.stop();
    assert.ok(monkey.ledger.length > 0, `seed ${seed} injected no fault`);
    for (const r of results) assert.deepEqual(r, Array.from({ length: 200 }, (_, k) => k + 1), `seed ${seed}`);
    await waitFor(() => sup.metrics.totals("counter").failures === monkey.ledger.length, "faults detected", 15_000);
    const pids = allPids(sup);
    await sup.shutdown();
    for (const pid of pids) assert.equal(processRuns(pid), false, `pid ${pid} outlived shutdown (seed ${seed})`);
  } finally {
    await sup.shutdown();
  }
});
