/**
 * Supervision hardening: failed spawns (through the launcher seam), forensics of hung actors,
 * secrets kept out of actors' environments, and timers that never overflow. Faults are
 * scheduled by count (launch attempts, call numbers), never by time. A failed spawn that escaped
 * as an unhandled rejection would fail these tests by itself: bun test fails the running test on one.
 */
import { afterEach, beforeEach, describe, expect, test } from "bun:test";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { runtime } from "../../runtime/core/adapter/index.ts";
import { EventLog } from "../../runtime/core/metrics/events.ts";
import { isSecretName } from "../../runtime/core/supervisor/env.ts";
import { ActorDiedError, ActorSpawnError, type Forensics } from "../../runtime/core/supervisor/errors.ts";
import type { Launcher } from "../../runtime/core/supervisor/launcher.ts";
import type { Supervisor } from "../../runtime/core/supervisor/supervisor.ts";
import { killActor } from "../../runtime/core/chaos.ts";
import { after, every, MAX_TIMER_DELAY_MS } from "../../runtime/core/timers.ts";
import { flakyLauncher, makeSupervisor, testFt } from "../helpers/supervision.ts";
import { caught, harness } from "../helpers/harness.ts";

const deathCauses = (sup: Supervisor) => sup.events.events.filter((e) => e.type === "death").map((e) => e.cause);

describe("a failed spawn is a failed start: retried with backoff, counted, never stuck", () => {
  test("EAGAIN on two restart attempts: retried, then the actor comes back and its calls complete", async () => {
    const launcher = flakyLauncher([2, 3], "EAGAIN");
    const { sup } = harness({ max_restarts: 5, max_task_retries: -1 }, { launcher });
    await sup.start([{ id: "c", role: "counter" }]);
    const actor = sup.actor("c");
    await actor.call("add", [2]);
    // The backoff exponent at each death: failed spawns make no progress, so the delay grows.
    const exponents: number[] = [];
    sup.events.subscribe((e) => e.type === "death" && exponents.push(actor.consecutiveRestarts));
    killActor(actor);
    expect(await actor.call("add", [1])).toBe(3);
    expect(exponents).toEqual([0, 1, 2]);
    expect(launcher.attempts).toBe(4);
    expect(actor.incarnation).toBe(4);
    expect(actor.restarts).toBe(3); // each failed spawn counts against max_restarts
    expect(deathCauses(sup)).toEqual(["exit", "spawn", "spawn"]);
    const spawnDeath = sup.events.events.find((e) => e.cause === "spawn")!;
    expect(String(spawnDeath.detail)).toContain("EAGAIN");
    expect(spawnDeath.pid).toBeUndefined();
  });

  test("max_restarts runs out on EMFILE: the actor is failed and callers get an ActorSpawnError naming it", async () => {
    const launcher = flakyLauncher((n) => n > 1, "EMFILE");
    const { sup } = harness({ max_restarts: 2, max_task_retries: -1 }, { launcher });
    await sup.start([{ id: "c", role: "counter" }]);
    const actor = sup.actor("c");
    const pending = actor.call("slow", [60_000]);
    await actor.whenAlive();
    killActor(actor);
    const err = await caught(pending);
    expect(err).toBeInstanceOf(ActorSpawnError);
    expect(err).toBeInstanceOf(ActorDiedError); // callers that catch ActorDiedError still do
    expect((err as ActorSpawnError).errno).toBe("EMFILE");
    expect(err.message).toContain("EMFILE: too many open files");
    expect(err.message).toContain("max_restarts=2 reached");
    expect(actor.state).toBe("failed");
    expect(sup.failure?.error).toBe(err);
    expect(deathCauses(sup)).toEqual(["exit", "spawn", "spawn"]);
  });

  test("failed spawns count toward the restart intensity: a spawn loop is escalated, not spun", async () => {
    const launcher = flakyLauncher((n) => n > 1, "EAGAIN");
    const { sup } = harness({ max_restarts: -1, restart_intensity: 3, restart_period_s: 3600 }, { launcher });
    await sup.start([{ id: "c", role: "counter" }]);
    const actor = sup.actor("c");
    killActor(actor);
    const err = await caught(actor.call("value"));
    expect(err).toBeInstanceOf(ActorSpawnError);
    expect(err.message).toContain("crash loop: 3 restarts within 3600s exceeds restart_intensity=3");
    expect(launcher.attempts).toBe(4);
    expect(actor.state).toBe("failed");
  });

  test("the first start: a failed spawn is retried like a restart; with no restarts allowed, start() rejects with ActorSpawnError", async () => {
    const retried = harness({ max_restarts: 3 }, { launcher: flakyLauncher([1], "EMFILE") }).sup;
    await retried.start([{ id: "c", role: "counter" }]);
    expect(await retried.actor("c").call("add", [1])).toBe(1);
    expect(retried.actor("c").incarnation).toBe(2);
    await retried.shutdown();

    for (const ft of [{ max_restarts: 0 }, { enable_fault_tolerance: false }]) {
      const { sup } = harness(ft, { launcher: flakyLauncher([1], "EMFILE") });
      const err = await caught(sup.start([{ id: "c", role: "counter" }]));
      expect(err).toBeInstanceOf(ActorSpawnError);
      expect(err.message).toContain("could not start the process: EMFILE");
      expect(sup.actor("c").state).toBe("failed");
    }
  });

  test("a real spawn error from the runtime adapter takes the same path", async () => {
    // A working directory that does not exist: the runtime's own spawn throws (ENOENT).
    const broken: Launcher = { name: "broken", launch: (r) => runtime.spawn({ module: r.module, env: r.env, cwd: "/nonexistent/revenant" }) };
    const { sup } = harness({ max_restarts: 1 }, { launcher: broken });
    const err = await caught(sup.start([{ id: "c", role: "counter" }]));
    expect(err).toBeInstanceOf(ActorSpawnError);
    expect(deathCauses(sup)).toEqual(["spawn", "spawn"]);
  });
});

describe("forensics of a hung actor", () => {
  let dir: string;
  beforeEach(() => (dir = mkdtempSync(join(tmpdir(), "revenant-forensics-"))));
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  test("blocked on its 3rd call: the death event in events.jsonl has its last lines, process state and the call", async () => {
    const path = join(dir, "events.jsonl");
    const { sup } = harness({ max_restarts: -1, max_task_retries: -1, ping_timeout_s: 0.5 }, { events: new EventLog(path) });
    await sup.start([{ id: "s", role: "staller", options: { stall_on_call: 3 } }]);
    const actor = sup.actor("s");
    expect(await Promise.all([1, 2, 3].map((i) => actor.call("work", [i])))).toEqual([1, 2, 3]); // the 3rd retried
    const deaths = readFileSync(path, "utf8").trim().split("\n").map((l) => JSON.parse(l)).filter((e) => e.type === "death");
    expect(deaths).toHaveLength(1);
    expect(deaths[0].cause).toBe("hang");
    const f = deaths[0].forensics as Forensics & { call: { method: string } };
    // stdout and stderr are separate pipes: their lines interleave in no fixed order.
    expect(f.last_lines).toContain("work 3 (call 3)");
    expect(f.last_lines).toContain("stalling on call 3");
    expect(f.call.method).toBe("work");
    if (process.platform === "linux") {
      expect(String(f.process.state)).toMatch(/^S/); // asleep in a blocking wait, not spinning
      expect((f.process.threads as unknown[]).length).toBeGreaterThan(0);
      expect(f.process.wchan).toBeTypeOf("string");
    }
  });

  test("only hangs and deadlines carry forensics; a crash does not", async () => {
    const { sup } = harness({ max_restarts: -1 });
    await sup.start([{ id: "c", role: "counter" }]);
    killActor(sup.actor("c"));
    await sup.actor("c").call("value");
    expect(sup.events.events.find((e) => e.type === "death")!.forensics).toBeUndefined();
  });
});

describe("actor environment", () => {
  const saved: Record<string, string | undefined> = {};
  const set = (vars: Record<string, string>) => {
    for (const [k, v] of Object.entries(vars)) {
      saved[k] = process.env[k];
      process.env[k] = v;
    }
  };
  afterEach(() => {
    for (const [k, v] of Object.entries(saved)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  });

  test("REVENANT_TOKEN and secret-looking variables are not inherited; explicit env is passed", async () => {
    set({ REVENANT_TOKEN: "server-token", HF_TOKEN: "hf", AWS_SECRET_ACCESS_KEY: "aws", REVENANT_TEST_PLAIN: "plain" });
    const { sup } = harness({}, { env: { ROLE_API_KEY: "given on purpose", REVENANT_TOKEN: "never" } });
    await sup.start([{ id: "c", role: "counter" }]);
    const env = await sup.actor("c").call<Record<string, string>>("env");
    expect(env.REVENANT_TOKEN).toBeUndefined();
    expect(env.HF_TOKEN).toBeUndefined();
    expect(env.AWS_SECRET_ACCESS_KEY).toBeUndefined();
    expect(env.REVENANT_TEST_PLAIN).toBe("plain");
    expect(env.ROLE_API_KEY).toBe("given on purpose");
    expect(env.PATH).toBe(process.env.PATH!);
  });

  test("which names count as secrets", () => {
    for (const name of ["REVENANT_TOKEN", "HF_TOKEN", "GITHUB_TOKEN", "AWS_SECRET_ACCESS_KEY", "AWS_ACCESS_KEY_ID", "OPENAI_API_KEY", "DB_PASSWORD", "gpg_passphrase", "GOOGLE_APPLICATION_CREDENTIALS", "SSH_PRIVATE_KEY"]) {
      expect([name, isSecretName(name)]).toEqual([name, true]);
    }
    for (const name of ["PATH", "HOME", "CUDA_VISIBLE_DEVICES", "REVENANT_PORT", "TOKENIZERS_PARALLELISM", "KEYBOARD", "LANG"]) {
      expect([name, isSecretName(name)]).toEqual([name, false]);
    }
  });
});

describe("timers never overflow", () => {
  /** Records every delay handed to the runtime's timers while `fn` runs. */
  async function recordDelays(fn: () => Promise<void>): Promise<number[]> {
    const delays: number[] = [];
    const g = globalThis as unknown as Record<"setTimeout" | "setInterval", (cb: () => void, ms?: number) => unknown>;
    const original = { setTimeout: g.setTimeout, setInterval: g.setInterval };
    for (const name of ["setTimeout", "setInterval"] as const) {
      g[name] = (cb, ms) => {
        delays.push(ms ?? 0);
        return original[name](cb, ms);
      };
    }
    try {
      await fn();
    } finally {
      Object.assign(g, original);
    }
    return delays;
  }

  test("after() schedules long delays in hops no longer than the limit, and fires once, at the end", async () => {
    let fired = 0;
    let done!: () => void;
    const finished = new Promise<void>((r) => (done = r));
    const delays = await recordDelays(async () => {
      after(23, () => {
        fired++;
        done();
      }, 5);
      await finished;
    });
    expect(delays).toEqual([5, 5, 5, 5, 3]);
    expect(fired).toBe(1);
  });

  test("a delay past 2^31−1 ms (1e300 s) does not fire early; cancel stops it", async () => {
    let fired = false;
    const delays = await recordDelays(async () => {
      const t = after(1e303, () => (fired = true));
      const interval = every(1e303, () => (fired = true));
      // A 1 ms runtime timer: an overflowing delay would have fired before it.
      await new Promise((r) => setTimeout(r, 20));
      t.cancel();
      interval.cancel();
    });
    expect(fired).toBe(false);
    expect(Math.max(...delays)).toBe(MAX_TIMER_DELAY_MS);
  });

  test("call_deadline_s=1e300 and other huge durations: calls, probes and shutdown work, no overflowing timer is set", async () => {
    // Built past the schema (which bounds these): this is the defense in depth.
    const huge = { ...testFt({ max_task_retries: 0 }), call_deadline_s: 1e300, ping_interval_s: 1e300, ping_timeout_s: 1e300, health_check_timeout_s: 1e300, shutdown_grace_s: 1e300 };
    let sup: Supervisor | undefined;
    const delays = await recordDelays(async () => {
      sup = harness({}, { faultTolerance: huge, startTimeoutS: 1e300 }).sup;
      await sup.start([{ id: "c", role: "counter" }]);
      expect(await sup.actor("c").call("slow", [30])).toBe(0);
      expect((await sup.probeHealth())[0]!.healthy).toBe(true);
      await sup.shutdown();
    });
    expect(sup!.events.count("death")).toBe(0);
    expect(delays.filter((d) => d > MAX_TIMER_DELAY_MS)).toEqual([]);
  });
});
