/**
 * Supervision semantics, against real actor processes: restarts, retries, state restore,
 * deadlines and hangs, crash loops, start errors, strategies, shutdown, health and metrics.
 */
import { afterEach, describe, expect, test } from "bun:test";
import { ActorCallError, ActorDiedError, DeadlineExceededError, RoleStartError, ChildSpecError } from "../../runtime/core/supervisor/errors.ts";
import type { Supervisor } from "../../runtime/core/supervisor/supervisor.ts";
import { killActor, hangActor, corruptActor } from "../../runtime/core/chaos.ts";
import { allPids, makeSupervisor, processRuns, sleep, waitFor } from "../helpers/supervision.ts";
import { caught, harness } from "../helpers/harness.ts";


describe("the reference's acceptance test", () => {
  test("max_restarts 1, max_task_retries -1: SIGKILL with 100 calls queued → all 100 in order, state continues; a second kill → ActorDiedError", async () => {
    const { sup } = harness({ max_restarts: 1, max_task_retries: -1 });
    await sup.start([{ id: "counter", role: "counter" }]);
    const actor = sup.actor("counter");
    for (let i = 0; i < 5; i++) await actor.call("add", [1]);
    const firstPid = await actor.call<number>("pid");
    const calls = Array.from({ length: 100 }, () => actor.call<number>("add", [1]));
    process.kill(firstPid, "SIGKILL");
    const results = await Promise.all(calls);
    expect(results).toEqual(Array.from({ length: 100 }, (_, i) => 6 + i)); // in order, continuing from 5
    expect(await actor.call("value")).toBe(105);
    expect(actor.incarnation).toBe(2);
    expect(await actor.call<number>("pid")).not.toBe(firstPid);

    process.kill(await actor.call<number>("pid"), "SIGKILL");
    const err = await caught(actor.call("add", [1]));
    expect(err).toBeInstanceOf(ActorDiedError);
    const died = err as ActorDiedError;
    expect(died.actor).toBe("counter");
    expect(died.role).toBe("counter");
    expect(died.incarnation).toBe(2);
    expect(died.signal).toBe("SIGKILL");
    expect(died.message).toContain("max_restarts=1 reached");
    expect(sup.failure?.offender).toBe("counter");
    expect(actor.state).toBe("failed");
  });
});

describe("restarts", () => {
  test("max_restarts 0 never restarts", async () => {
    const { sup } = harness({ max_restarts: 0, max_task_retries: -1 });
    await sup.start([{ id: "c", role: "counter" }]);
    const actor = sup.actor("c");
    killActor(actor);
    const err = await caught(actor.call("value"));
    expect(err).toBeInstanceOf(ActorDiedError);
    expect(actor.incarnation).toBe(1);
    expect(sup.metrics.totals("counter")).toEqual({ failures: 1, restarts: 0, retries: 0 });
  });

  test("max_restarts N allows exactly N restarts", async () => {
    const { sup } = harness({ max_restarts: 3, max_task_retries: -1 });
    await sup.start([{ id: "c", role: "counter" }]);
    const actor = sup.actor("c");
    for (let i = 0; i < 3; i++) {
      process.kill(await actor.call<number>("pid"), "SIGKILL");
      await waitFor(() => actor.state === "alive" && actor.incarnation === i + 2, `restart ${i + 1}`);
    }
    expect(await actor.call("add", [1])).toBe(1);
    killActor(actor);
    expect(await caught(actor.call("value"))).toBeInstanceOf(ActorDiedError);
    expect(actor.restarts).toBe(3);
  });

  test("max_restarts -1 restarts forever (here 12 times)", async () => {
    const { sup } = harness({ max_restarts: -1, max_task_retries: -1 });
    await sup.start([{ id: "c", role: "counter" }]);
    const actor = sup.actor("c");
    for (let i = 0; i < 12; i++) {
      await actor.call("add", [1]);
      killActor(actor);
    }
    expect(await actor.call("value")).toBe(12);
    expect(actor.restarts).toBe(12);
  });

  test("enable_fault_tolerance false fails on the first death, naming actor and cause", async () => {
    const { sup } = harness({ enable_fault_tolerance: false });
    await sup.start([{ id: "c", role: "counter" }]);
    const reports: string[] = [];
    sup.onFailure((r) => reports.push(r.reason));
    const actor = sup.actor("c");
    const pending = actor.call("slow", [5000]);
    await sleep(50);
    killActor(actor);
    const err = await caught(pending);
    expect(err).toBeInstanceOf(ActorDiedError);
    expect(err.message).toContain("fault tolerance is disabled");
    expect(err.message).toContain("SIGKILL");
    expect(reports).toHaveLength(1);
    expect(actor.incarnation).toBe(1);
  });

  test("a crash loop stops at the intensity limit with a clear error; the coordinator stays up", async () => {
    const { sup, output } = harness({ max_restarts: -1, restart_intensity: 3, restart_period_s: 30 });
    const err = await caught(sup.start([{ id: "loop", role: "dies_on_start" }]));
    expect(err).toBeInstanceOf(ActorDiedError);
    expect(err.message).toContain("crash loop: 3 restarts within 30s exceeds restart_intensity=3");
    expect(err.message).toContain("exit code 3");
    expect(err.message).toContain("dying during start");
    expect(output.some((l) => l.includes("[loop#1] stderr: dying during start"))).toBe(true);
    expect(sup.metrics.totals("dies_on_start").failures).toBe(4);
    // The coordinator is fine: another supervisor starts and serves.
    const other = makeSupervisor({}).sup;
    await other.start([{ id: "c", role: "counter" }]);
    expect(await other.actor("c").call("add", [2])).toBe(2);
    await other.shutdown();
  });

  test("a role whose constructor throws fails once with RoleStartError, no restart", async () => {
    const { sup } = harness({ max_restarts: -1 });
    const err = await caught(sup.start([{ id: "bad", role: "bad_constructor" }]));
    expect(err).toBeInstanceOf(RoleStartError);
    expect(err.message).toContain("missing option 'model'");
    expect(sup.events.count("death")).toBe(1);
    expect(sup.events.count("restart")).toBe(0);
  });

  test("restart backoff doubles while restarts make no progress, and resets once a call completes", async () => {
    const { sup } = harness({ max_restarts: -1, restart_backoff_initial_s: 0.05, restart_backoff_max_s: 0.2 });
    await sup.start([{ id: "c", role: "counter" }]);
    const actor = sup.actor("c");
    const gaps: number[] = [];
    // Kill each new incarnation as soon as it is up, before it completes any call.
    for (let i = 0; i < 4; i++) {
      const before = actor.incarnation;
      const t = performance.now();
      killActor(actor);
      await waitFor(() => actor.incarnation === before + 1 && actor.state === "alive", "restart");
      gaps.push(performance.now() - t);
    }
    // Delays 50, 100, 200, 200 (capped) ms come on top of the restart itself.
    expect(gaps[0]!).toBeGreaterThanOrEqual(50);
    expect(gaps[1]!).toBeGreaterThanOrEqual(100);
    expect(gaps[2]!).toBeGreaterThanOrEqual(200);
    expect(gaps[3]!).toBeGreaterThanOrEqual(200);
    expect(actor.consecutiveRestarts).toBe(4);
    await actor.call("value");
    expect(actor.consecutiveRestarts).toBe(0);
  });
});

describe("retries", () => {
  test("max_task_retries 0 surfaces the first lost call", async () => {
    const { sup } = harness({ max_restarts: -1, max_task_retries: 0 });
    await sup.start([{ id: "c", role: "counter" }]);
    const actor = sup.actor("c");
    const lost = actor.call("slow", [5000]);
    await sleep(50);
    killActor(actor);
    const err = await caught(lost);
    expect(err).toBeInstanceOf(ActorDiedError);
    expect(err.message).toContain("max_task_retries=0");
    // The actor itself was restarted and serves new calls.
    expect(await actor.call("add", [1])).toBe(1);
  });

  test("max_task_retries N: a call lost N+1 times fails; a call lost N times succeeds", async () => {
    const { sup } = harness({ max_restarts: -1, max_task_retries: 2 });
    await sup.start([{ id: "c", role: "counter" }]);
    const actor = sup.actor("c");
    // Each kill lands while the call is in flight (sent to the live incarnation): a lost attempt.
    const killWhileServing = async (n: number) => {
      for (let i = 0; i < n; i++) {
        const inc = actor.incarnation;
        await waitFor(() => actor.state === "alive" && actor.incarnation === inc && actor.callInFlight?.method === "hold", `hold in flight on incarnation ${inc}`);
        killActor(actor);
        await waitFor(() => actor.incarnation > inc || actor.state === "failed", `incarnation ${inc} to be replaced`);
      }
    };
    // Answered by the third incarnation: lost twice, retried twice, then it succeeds.
    const survivor = actor.call("hold", [3]);
    await killWhileServing(2);
    expect(await survivor).toBe(0);
    // Never answered: lost three times, one more than the retries allow.
    const doomed = caught(actor.call("hold", [1000]));
    await killWhileServing(3);
    expect(await doomed).toBeInstanceOf(ActorDiedError);
  });

  test("a role's own exception is ActorCallError with its remote stack: not retried, not a crash", async () => {
    const { sup } = harness({ max_restarts: -1, max_task_retries: -1 });
    await sup.start([{ id: "c", role: "counter" }]);
    const actor = sup.actor("c");
    const err = await caught(actor.call("fail", ["bad input 42"]));
    expect(err).toBeInstanceOf(ActorCallError);
    const e = err as ActorCallError;
    expect(e.remoteName).toBe("RangeError");
    expect(e.remoteMessage).toBe("bad input 42");
    expect(e.remoteStack).toContain("fail");
    expect(actor.incarnation).toBe(1);
    expect(sup.metrics.totals("counter").failures).toBe(0);
    const unknown = await caught(actor.call("nope"));
    expect(unknown.message).toContain(`has no method "nope"`);
    expect(await actor.call("add", [1])).toBe(1);
  });

  test("completed calls are never re-delivered; replay rebuilds state after a snapshot", async () => {
    const { sup } = harness({ max_restarts: -1, max_task_retries: -1 });
    await sup.start([{ id: "c", role: "counter", options: { start: 100 } }]);
    const actor = sup.actor("c");
    await actor.call("add", [5]);
    expect(await actor.takeSnapshot()).toEqual({ n: 105 });
    await actor.call("add", [10]);
    await actor.call("add", [1]);
    killActor(actor);
    // Restored: loadState({n:105}), then replay add(10), add(1).
    expect(await actor.call("value")).toBe(116);
    expect(actor.latestSnapshot).toEqual({ n: 105 });
  });
});

test("recovery time stays bounded: a snapshot is taken once replay would exceed max_replay_s", async () => {
  const { sup } = harness({ max_restarts: -1, max_task_retries: -1, max_replay_s: 0.05 });
  await sup.start([{ id: "c", role: "counter" }]);
  const actor = sup.actor("c");
  for (let i = 0; i < 4; i++) await actor.call("addSlowly", [1, 30]);
  await actor.call("value"); // the automatic snapshot runs in call order, before this
  // 30 ms calls: the second pushes the replay log past 50 ms, so a snapshot covers it.
  expect((actor.latestSnapshot as { n: number }).n).toBeGreaterThanOrEqual(2);
  killActor(actor);
  expect(await actor.call("value")).toBe(4);
});

test("read-only calls are not logged for replay: they neither lengthen the log nor bring a snapshot closer", async () => {
  // A log of 3 calls asks for a snapshot. Read-only calls changed nothing, so replaying them on a
  // restart would only cost time: they must not count.
  const { sup } = harness({ max_restarts: -1 }, { autoSnapshotCalls: 3 });
  await sup.start([{ id: "c", role: "counter" }]);
  const actor = sup.actor("c");
  await actor.call("add", [1]);
  for (let i = 0; i < 4; i++) await actor.call("value");
  expect(actor.latestSnapshot).toBeUndefined();
  await actor.call("add", [1]);
  await actor.call("add", [1]); // the third logged call: a snapshot is asked for...
  await actor.call("value"); // ...and runs in call order, before this one
  expect(actor.latestSnapshot).toEqual({ n: 3 });
});

describe("hangs and deadlines", () => {
  test("a SIGSTOPped actor is found by missed pings, killed, restarted and its call retried", async () => {
    const { sup } = harness({ max_restarts: -1, max_task_retries: -1, ping_timeout_s: 0.4 });
    await sup.start([{ id: "c", role: "counter" }]);
    const actor = sup.actor("c");
    await actor.call("add", [1]);
    const stoppedPid = actor.current!.pid!;
    hangActor(actor);
    expect(await actor.call("add", [1])).toBe(2);
    const death = sup.events.events.find((e) => e.type === "death")!;
    expect(death.cause).toBe("hang");
    expect(death.signal).toBe("SIGKILL");
    expect(processRuns(stoppedPid)).toBe(false);
    // Read before the kill: the kernel saw it stopped, and the call it was serving is named.
    const forensics = death.forensics as { process: { state: string }; call: { method: string } };
    if (process.platform === "linux") expect(forensics.process.state).toMatch(/^T/);
    expect(forensics.call.method).toBe("add");
  });

  test("a call past its deadline kills the actor as hung; with retries spent → DeadlineExceededError", async () => {
    const { sup } = harness({ max_restarts: -1, max_task_retries: 1, ping_timeout_s: 30 });
    await sup.start([{ id: "c", role: "counter" }]);
    const actor = sup.actor("c");
    const err = await caught(actor.call("slow", [10_000], { deadline: 0.2 }));
    expect(err).toBeInstanceOf(DeadlineExceededError);
    expect(err.message).toContain("0.2s deadline (2 attempts)");
    const deaths = sup.events.events.filter((e) => e.type === "death");
    expect(deaths.map((e) => e.cause)).toEqual(["deadline", "deadline"]);
    expect(deaths.map((e) => (e.forensics as { call: { method: string } }).call.method)).toEqual(["slow", "slow"]);
    expect(await actor.call("add", [3])).toBe(3);
  });

  test("pings are answered while a long async call runs", async () => {
    const { sup } = harness({ max_restarts: 0, ping_timeout_s: 0.3 });
    await sup.start([{ id: "c", role: "counter" }]);
    expect(await sup.actor("c").call("slow", [1200])).toBe(0);
    expect(sup.events.count("death")).toBe(0);
  });
});

describe("protocol errors", () => {
  test("garbage injected on an actor's channel (coordinator side) is a failure of that actor, repaired by restart", async () => {
    const { sup } = harness({ max_restarts: -1, max_task_retries: -1 });
    await sup.start([{ id: "c", role: "counter" }]);
    const actor = sup.actor("c");
    await actor.call("add", [7]);
    corruptActor(actor);
    await waitFor(() => actor.incarnation === 2 && actor.state === "alive", "restart after corruption");
    expect(await actor.call("value")).toBe(7);
    const death = sup.events.events.find((e) => e.type === "death")!;
    expect(death.cause).toBe("protocol");
    expect(String(death.detail)).toContain("bad magic");
  });

  test("garbage written by the actor process itself is the same failure: the call is lost, the state restored", async () => {
    const { sup } = harness({ max_restarts: -1, max_task_retries: 0 });
    await sup.start([{ id: "c", role: "counter" }]);
    const actor = sup.actor("c");
    await actor.call("add", [7]);
    const err = await caught(actor.call("writeGarbage"));
    expect(err).toBeInstanceOf(ActorDiedError); // lost with its incarnation; max_task_retries=0
    expect(err.message).toContain("protocol: bad magic 0x62726167");
    expect(await actor.call("value")).toBe(7);
    expect(actor.incarnation).toBe(2);
    expect(sup.events.events.filter((e) => e.type === "death").map((e) => e.cause)).toEqual(["protocol"]);
  });
});

describe("groups", () => {
  test("one_for_one restarts only the dead rank", async () => {
    const { sup } = harness({ max_restarts: -1, restart_strategy: "one_for_one" });
    await sup.start([{ id: "w", role: "counter", ranks: 3 }]);
    const [a, b, c] = sup.group("w");
    const pidsBefore = [a!.current!.pid, b!.current!.pid, c!.current!.pid];
    killActor(b!);
    await waitFor(() => b!.incarnation === 2 && b!.state === "alive", "rank 1 restarted");
    expect([a!.current!.pid, c!.current!.pid]).toEqual([pidsBefore[0]!, pidsBefore[2]!]);
    expect(a!.id).toBe("w/0");
  });

  test("one_for_all restarts every rank of the group, restoring each one's state", async () => {
    const { sup } = harness({ max_restarts: 2, max_task_retries: -1, restart_strategy: "one_for_all" });
    await sup.start([{ id: "w", role: "counter", ranks: 3 }]);
    const ranks = sup.group("w");
    await Promise.all(ranks.map((r, i) => r.call("add", [10 * (i + 1)])));
    killActor(ranks[1]!);
    await waitFor(() => ranks.every((r) => r.incarnation === 2 && r.state === "alive"), "all ranks restarted");
    expect(await Promise.all(ranks.map((r) => r.call("value")))).toEqual([10, 20, 30]);
    // Only the offender counts against max_restarts and as a failure; every rank counts a restart.
    expect(ranks.map((r) => r.restarts)).toEqual([0, 1, 0]);
    expect(sup.metrics.totals("counter")).toMatchObject({ failures: 1, restarts: 3 });
  });

  test("an elastic group drops a rank it gives up on and goes on; losing its last rank fails", async () => {
    const { sup } = harness({ max_restarts: 0 });
    const reports: string[] = [];
    sup.onFailure((r) => reports.push(r.offender));
    await sup.start([{ id: "w", role: "counter", ranks: 3, elastic: true }]);
    const [a, b, c] = sup.group("w");
    expect(sup.metrics.ranksOf("counter")).toBe(3);
    killActor(b!);
    await waitFor(() => sup.isDropped(b!), "rank 1 dropped");
    expect(sup.live("w").map((r) => r.id)).toEqual(["w/0", "w/2"]);
    expect(sup.actors().map((r) => r.id)).toEqual(["w/0", "w/2"]);
    expect(sup.metrics.ranksOf("counter")).toBe(2);
    expect(sup.metrics.step()["actor_ranks/counter"]).toBe(2);
    expect(sup.events.events.filter((e) => e.type === "dropped")).toEqual([
      expect.objectContaining({ actor: "w/1", role: "counter", ranks_left: 2, reason: expect.stringContaining("max_restarts=0") }),
    ]);
    expect(await caught(b!.call("value"))).toBeInstanceOf(ActorDiedError);
    expect(reports).toEqual([]);
    await sup.settled();
    expect([...(await sup.snapshotAll()).keys()]).toEqual(["w/0", "w/2"]);
    expect((await sup.probeHealth()).map((h) => h.actor)).toEqual(["w/0", "w/2"]);
    killActor(a!);
    await waitFor(() => sup.isDropped(a!), "rank 0 dropped");
    killActor(c!);
    await waitFor(() => reports.length === 1, "the group failed");
    expect(reports).toEqual(["w/2"]);
    expect(sup.isDropped(c!)).toBe(false);
    expect(sup.events.events.filter((e) => e.type === "dropped").map((e) => e.actor)).toEqual(["w/1", "w/0"]);
  });

  test("a group that is not elastic fails on its first rank given up on", async () => {
    const { sup } = harness({ max_restarts: 0 });
    const reports: string[] = [];
    sup.onFailure((r) => reports.push(r.offender));
    await sup.start([{ id: "w", role: "counter", ranks: 2 }]);
    killActor(sup.group("w")[1]!);
    await waitFor(() => reports.length === 1, "the group failed");
    expect(reports).toEqual(["w/1"]);
    expect(sup.live("w")).toHaveLength(2);
    expect(sup.metrics.ranksOf("counter")).toBeUndefined();
  });
});

describe("child specs", () => {
  test("are validated up front, with index, id and reason", async () => {
    const { sup } = harness();
    const err = await caught(sup.start([
      { id: "ok", role: "counter" },
      { id: "Bad Id", role: "counter" },
      { id: "x", role: "no_such_role" },
      { id: "ok", role: "counter", ranks: 0 },
    ]));
    expect(err).toBeInstanceOf(ChildSpecError);
    expect(err.message).toContain("child spec 1 (Bad Id): id: lowercase letters");
    expect(err.message).toContain(`child spec 2 (x): unknown role "no_such_role"; registered roles: accumulator, bad_constructor, counter`);
    expect(err.message).toContain("child spec 3 (ok): ranks");
    expect(sup.actors()).toHaveLength(0);
  });

  test("temporary children are never restarted; transient ones not after a normal exit", async () => {
    const { sup } = harness({ max_restarts: -1 });
    await sup.start([{ id: "t", role: "counter", restart: "temporary" }, { id: "tr", role: "counter", restart: "transient" }]);
    killActor(sup.actor("t"));
    expect(await caught(sup.actor("t").call("value"))).toBeInstanceOf(ActorDiedError);
    const tr = sup.actor("tr");
    await caught(tr.call("exit", [0]));
    expect(tr.state).toBe("failed");
    expect(tr.incarnation).toBe(1);
  });
});

describe("state", () => {
  test("state with tens of MB of typed arrays is snapshotted and restored exactly", async () => {
    // Loading 32 MiB keeps the actor's JS thread busy; on a loaded machine that can outlast the
    // suite's 0.5 s ping timeout and count as a hang. Hang detection is tested elsewhere.
    const { sup } = harness({ max_restarts: -1, max_task_retries: -1, ping_timeout_s: 60 });
    const size = 8 * 1024 * 1024; // 32 MiB of float32
    await sup.start([{ id: "acc", role: "accumulator", options: { size } }]);
    const actor = sup.actor("acc");
    const x = new Float32Array(size);
    for (let i = 0; i < size; i++) x[i] = (i % 1000) * 0.5;
    await actor.call("add", [x]);
    await actor.takeSnapshot();
    await actor.call("add", [x]);
    killActor(actor);
    const expected = 2 * x.reduce((s, v) => s + v, 0);
    expect(await actor.call<number>("sum")).toBeCloseTo(expected, -3);
    expect(actor.incarnation).toBe(2);
  });
});

describe("health, metrics and events", () => {
  test("health probes set actor_health per role", async () => {
    const { sup } = harness({});
    await sup.start([{ id: "c", role: "counter", ranks: 2 }, { id: "u", role: "unhealthy" }]);
    const results = await sup.probeHealth();
    expect(results.map((r) => [r.actor, r.healthy])).toEqual([["c/0", true], ["c/1", true], ["u", false]]);
    expect(results[0]!.report).toMatchObject({ ok: true, n: 0 });
    const m = sup.metrics.step();
    expect(m["actor_health/counter"]).toBe(1);
    expect(m["actor_health/unhealthy"]).toBe(0);
  });

  test("a hung actor fails its probe within the timeout", async () => {
    const { sup } = harness({ ping_timeout_s: 30, health_check_timeout_s: 0.3 });
    await sup.start([{ id: "c", role: "counter" }]);
    hangActor(sup.actor("c"));
    const [r] = await sup.probeHealth();
    expect(r!.healthy).toBe(false);
    expect(r!.error).toContain("no health report within 300 ms");
    expect(sup.metrics.step()["actor_health/counter"]).toBe(0);
  });

  test("per-step failure and restart metrics carry the reference names", async () => {
    const { sup } = harness({ max_restarts: -1, max_task_retries: -1 });
    await sup.start([{ id: "a", role: "counter" }, { id: "b", role: "accumulator" }]);
    expect(sup.metrics.step()).toMatchObject({ "actor_failures/total": 0, "actor_failures/counter": 0, "actor_restarts/accumulator_cumulative": 0 });
    killActor(sup.actor("a"));
    await sup.actor("a").call("value");
    killActor(sup.actor("b"));
    await sup.actor("b").call("sum");
    const step1 = sup.metrics.step();
    expect(step1).toMatchObject({
      "actor_failures/counter": 1, "actor_failures/accumulator": 1, "actor_failures/total": 2,
      "actor_failures/counter_cumulative": 1, "actor_restarts/counter": 1, "actor_restarts/total": 2,
    });
    const step2 = sup.metrics.step();
    expect(step2).toMatchObject({ "actor_failures/counter": 0, "actor_failures/total": 0, "actor_failures/counter_cumulative": 1, "actor_restarts/accumulator_cumulative": 1 });
    const restart = sup.events.events.find((e) => e.type === "restart")!;
    expect(typeof restart.latency_ms).toBe("number");
  });

  test("actor output reaches the coordinator prefixed with actor and incarnation", async () => {
    const { sup, output } = harness({}, { env: { COUNTER_SAY_HELLO: "1" } });
    await sup.start([{ id: "talker", role: "counter" }]);
    await waitFor(() => output.some((l) => l === "[talker#1] stdout: counter talker up"), "prefixed output");
  });
});

describe("shutdown", () => {
  test("stops actors in reverse start order and restarts none; no process is left", async () => {
    const { sup } = harness({ max_restarts: -1 });
    await sup.start([{ id: "first", role: "counter" }, { id: "second", role: "counter" }, { id: "third", role: "counter", ranks: 2 }]);
    const pids = allPids(sup);
    await sup.shutdown();
    const stops = sup.events.events.filter((e) => e.type === "stopped").map((e) => e.actor);
    expect(stops).toEqual(["third/1", "third/0", "second", "first"]);
    expect(sup.events.count("death")).toBe(0);
    expect(sup.events.count("restart")).toBe(0);
    expect(sup.metrics.totals("counter").failures).toBe(0);
    for (const pid of pids) expect(processRuns(pid)).toBe(false);
  });

  test("an actor stopped in the middle of its restart does not come back, and leaves no process", async () => {
    for (const waitMs of [0, 5, 15, 30]) {
      const { sup } = makeSupervisor({ max_restarts: -1, restart_backoff_initial_s: 0.001 });
      await sup.start([{ id: "c", role: "counter" }]);
      killActor(sup.actor("c"));
      await sleep(waitMs);
      await sup.shutdown();
      for (const pid of allPids(sup)) expect(processRuns(pid)).toBe(false);
      expect(sup.actor("c").state).toBe("stopped");
    }
  });

  test("a SIGSTOPped actor is still stopped within its grace", async () => {
    const { sup } = harness({ ping_timeout_s: 30 });
    await sup.start([{ id: "c", role: "counter", shutdown_grace_s: 0.3 }]);
    const pid = sup.actor("c").current!.pid!;
    hangActor(sup.actor("c"));
    await sup.shutdown();
    expect(processRuns(pid)).toBe(false);
  });
});
