/** Small pieces: health schedule, backoff, intensity window, seeded RNG, event log, chaos ledger. */
import { describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { HealthSchedule } from "../../runtime/core/supervisor/health.ts";
import { backoffMs, restartsInWindow } from "../../runtime/core/supervisor/backoff.ts";
import { Rng } from "../../runtime/core/rng.ts";
import { EventLog } from "../../runtime/core/metrics/events.ts";
import { MetricsRegistry } from "../../runtime/core/metrics/registry.ts";
import { tempDir } from "../helpers/tmp.ts";

describe("health schedule", () => {
  const steps = (s: HealthSchedule, n: number) => Array.from({ length: n }, (_, i) => i + 1).filter((k) => s.due(k));
  test("every N steps", () => {
    expect(steps(new HealthSchedule({ enable_health_monitoring: true, health_check_interval: 30 }), 100)).toEqual([30, 60, 90]);
    expect(steps(new HealthSchedule({ enable_health_monitoring: true, health_check_interval: 3 }), 10)).toEqual([3, 6, 9]);
  });
  test("below 1 means every step", () => {
    expect(steps(new HealthSchedule({ enable_health_monitoring: true, health_check_interval: 0.25 }), 4)).toEqual([1, 2, 3, 4]);
  });
  test("fractional intervals accumulate", () => {
    expect(steps(new HealthSchedule({ enable_health_monitoring: true, health_check_interval: 2.5 }), 10)).toEqual([3, 5, 8, 10]);
  });
  test("disabled monitoring never probes", () => {
    expect(steps(new HealthSchedule({ enable_health_monitoring: false, health_check_interval: 1 }), 10)).toEqual([]);
  });
});

describe("restart pacing", () => {
  test("exponential backoff, capped", () => {
    expect([1, 2, 3, 4, 5].map((n) => backoffMs(n, 0.01, 0.05))).toEqual([10, 20, 40, 50, 50]);
  });
  test("intensity window counts recent restarts only", () => {
    const now = 100_000;
    expect(restartsInWindow([now - 70_000, now - 50_000, now - 1_000], 60, now)).toBe(2);
  });
});

describe("seeded RNG", () => {
  test("same seed, same sequence; different seeds differ", () => {
    const a = new Rng(42), b = new Rng(42), c = new Rng(43);
    const sa = Array.from({ length: 8 }, () => a.nextU32());
    expect(Array.from({ length: 8 }, () => b.nextU32())).toEqual(sa);
    expect(Array.from({ length: 8 }, () => c.nextU32())).not.toEqual(sa);
  });
  test("uniform in [0,1) with a plausible mean", () => {
    const r = new Rng(1);
    let sum = 0;
    for (let i = 0; i < 20000; i++) {
      const x = r.next();
      expect(x >= 0 && x < 1).toBe(true);
      sum += x;
    }
    expect(Math.abs(sum / 20000 - 0.5)).toBeLessThan(0.02);
  });
});

describe("event log and metrics registry", () => {
  test("events go to events.jsonl as they happen", () => {
    const path = join(tempDir("revenant-events-"), "job", "events.jsonl");
    const log = new EventLog(path);
    const seen: string[] = [];
    log.subscribe((e) => seen.push(e.type));
    log.emit({ type: "death", actor: "critic", role: "critic", cause: "exit", signal: "SIGKILL" });
    log.emit({ type: "restart", actor: "critic", role: "critic", latency_ms: 41.5 });
    const lines = readFileSync(path, "utf8").trim().split("\n").map((l) => JSON.parse(l));
    expect(lines.map((l) => l.type)).toEqual(["death", "restart"]);
    expect(lines[1].latency_ms).toBe(41.5);
    expect(typeof lines[0].ts).toBe("number");
    expect(seen).toEqual(["death", "restart"]);
  });

  test("per-step counts reset each step, cumulative ones do not; total sums roles", () => {
    const m = new MetricsRegistry();
    m.addRole("critic");
    m.addRole("actor_rollout");
    m.recordFailure("critic");
    m.recordFailure("critic");
    m.recordRestart("critic", 30);
    m.recordFailure("actor_rollout");
    m.setHealth("critic", false);
    const s1 = m.step();
    expect(s1).toMatchObject({
      "actor_failures/critic": 2, "actor_failures/actor_rollout": 1, "actor_failures/total": 3,
      "actor_failures/critic_cumulative": 2, "actor_restarts/critic": 1, "actor_restarts/total": 1, "actor_health/critic": 0,
    });
    expect(s1["actor_health/actor_rollout"]).toBeUndefined();
    const s2 = m.step();
    expect(s2).toMatchObject({ "actor_failures/critic": 0, "actor_failures/total": 0, "actor_failures/critic_cumulative": 2 });
    expect(m.restartLatenciesMs).toEqual([30]);
  });
});
