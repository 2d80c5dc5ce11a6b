/**
 * Fault plans and the JSON-lines reader: pure functions, no processes.
 */
import { describe, expect, test } from "bun:test";
import { FaultPlan, FaultPlanError, randomPlan } from "../../runtime/core/chaos.ts";
import { JsonLinesError, parseJsonLines } from "../../runtime/core/metrics/jsonl.ts";

describe("fault plan", () => {
  test("parses entries and names a bad one with the allowed form", () => {
    const plan = FaultPlan.parse("critic@5:2=kill, actor_rollout@7:1=hang");
    expect(plan.remaining).toEqual([
      { actor: "critic", step: 5, call: 2, action: "kill" },
      { actor: "actor_rollout", step: 7, call: 1, action: "hang" },
    ]);
    expect(() => FaultPlan.parse("critic@5=kill")).toThrow('fault plan entry "critic@5=kill": expected <actor>@<step>:<call>=<kill|hang|corrupt>');
    expect(() => FaultPlan.parse("critic@5:0=kill")).toThrow("call an integer ≥ 1");
    expect(() => FaultPlan.parse("critic@5:1=explode")).toThrow("action must be one of kill, hang, corrupt");
    expect(() => FaultPlan.parse("critic@5:1=kill,critic@5:1=hang")).toThrow("strikes critic at step 5, call 1 twice");
    expect(() => FaultPlan.parse(" ")).toThrow(FaultPlanError);
  });

  test("a random plan is a function of its seed", () => {
    const o = { steps: [1, 20] as const, calls: { a: 3, b: 1 }, count: 7 };
    const one = randomPlan({ seed: 4, ...o }).remaining;
    expect(randomPlan({ seed: 4, ...o }).remaining).toEqual(one);
    expect(randomPlan({ seed: 5, ...o }).remaining).not.toEqual(one);
    expect(one).toHaveLength(7);
    for (const f of one) {
      expect(f.step).toBeGreaterThanOrEqual(1);
      expect(f.step).toBeLessThanOrEqual(20);
      expect(f.call).toBeLessThanOrEqual(f.actor === "a" ? 3 : 1);
    }
    expect(() => randomPlan({ seed: 1, steps: [1, 1], calls: { a: 2 }, count: 3 })).toThrow("cannot place 3 faults");
  });
});

describe("JSON lines", () => {
  test("a torn last line is dropped and reported; a bad middle line is corruption", () => {
    let torn: string | undefined;
    expect(parseJsonLines('{"a":1}\n{"a":2}\n{"a":', "m.jsonl", (l) => (torn = l))).toEqual([{ a: 1 }, { a: 2 }]);
    expect(torn).toBe('{"a":');
    expect(parseJsonLines('{"a":1}\n\n{"a":2}\n\n')).toEqual([{ a: 1 }, { a: 2 }]);
    expect(() => parseJsonLines('{"a":1}\n{"a"\n{"a":2}\n', "m.jsonl")).toThrow(JsonLinesError);
    expect(() => parseJsonLines('{"a":1}\n{"a"\n{"a":2}\n', "m.jsonl")).toThrow("m.jsonl:2: not a JSON line");
  });
});
