/**
 * The elastic group gauge: `revenant_actor_ranks` per job and role, written only for roles whose
 * group is elastic (the registry has a rank count for them), and accepted by promtool.
 */
import { expect, test } from "bun:test";
import { MetricsRegistry } from "../../runtime/core/metrics/registry.ts";
import { faultSnapshot, renderPrometheus } from "../../runtime/service/server/prometheus.ts";
import { promtoolCheck } from "./helpers.ts";

test("ranks left in an elastic group are a gauge per job and role; other roles have none", () => {
  const registry = new MetricsRegistry();
  registry.addRole("actor_rollout");
  registry.setRanks("rollout", 4);
  registry.setRanks("rollout", 3);
  const id = "digit_reversal-20261202-100000-0000000a";
  const text = renderPrometheus({
    runtime: "bun", version: "1", counts: {},
    jobs: [{ id, step: 3, totalSteps: 10, latest: undefined, valScore: undefined, faults: faultSnapshot(registry) }],
  });
  expect(text).toContain("# TYPE revenant_actor_ranks gauge");
  expect(text).toContain(`revenant_actor_ranks{job_id="${id}",role="rollout"} 3`);
  expect(text).not.toContain(`revenant_actor_ranks{job_id="${id}",role="actor_rollout"}`);
  const checked = promtoolCheck(text);
  if (checked) {
    expect(checked.output.trim(), checked.output).toBe("");
    expect(checked.code).toBe(0);
  }
});
