/**
 * Rollout worker groups (worker.rollout.ranks): data-parallel generation over several rollout
 * actors, the policy's weights pushed to them after every update. A group of one samples exactly
 * what actor_rollout does alone; seeded kills and hangs of ranks, on either weight transfer, end
 * with the calm run's weights and metrics; an elastic group that loses a rank for good goes on
 * with the ranks left, says so, and still ends where the calm run did; without elastic the job
 * fails. Seeded: CHAOS_SEED=<n> reproduces a run.
 */
import { describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { resolveConfig } from "../../config/index.ts";
import type { Config } from "../../config/schema.ts";
import type { GenerateResult } from "../../native/policy_model.ts";
import { FaultPlan, randomPlan } from "../../runtime/core/chaos.ts";
import { createJob, MetricsFile } from "../../runtime/rl/trainer/job.ts";
import { checkTaskJobConfig, JobConfigError } from "../../runtime/rl/trainer/plan.ts";
import { concatResults, shardRows } from "../../runtime/rl/trainer/rollout_group.ts";
import { fit, TrainingFailedError, type FitResult } from "../../runtime/rl/trainer/trainer.ts";
import { tempDir } from "../helpers/tmp.ts";

const SEED = Number(process.env.CHAOS_SEED ?? 23);
const quiet = () => {};
const STEPS = 8;

/** A short GRPO job (policy and reference; no critic) whose rollouts go to `ranks` rollout actors. */
function groupConfig(runDir: string, ranks: number, overrides: string[] = []): Config {
  return resolveConfig({
    file: null,
    env: {},
    args: [
      `trainer.run_dir=${runDir}`, `trainer.total_steps=${STEPS}`, "trainer.val_interval=4", "trainer.seed=9",
      "checkpoint.interval=4", "data.train_size=128", "data.val_size=16", "data.train_batch_size=6",
      "algorithm.adv_estimator=grpo", "worker.actor.rollout_n=2", "worker.actor.ppo_mini_batch_size=6",
      `worker.rollout.ranks=${ranks}`,
      "fault_tolerance.max_restarts=-1", "fault_tolerance.max_task_retries=-1",
      // Hangs are found after 2 s of missed pings: long enough that a healthy actor on a loaded
      // machine never misses that many, so the fault counts below are exact on any machine.
      "fault_tolerance.ping_interval_s=0.1", "fault_tolerance.ping_timeout_s=2",
      "fault_tolerance.restart_backoff_initial_s=0.005", "fault_tolerance.restart_intensity=1000",
      ...overrides,
    ],
  }).config;
}

/** Metrics that must match exactly: everything but timings, throughput, fault counters, rank counts and device fallbacks (rollout ranks have one of their own). */
function trainingMetrics(rows: Array<Record<string, number>>): Array<Record<string, number>> {
  return rows.map((r) => Object.fromEntries(Object.entries(r).filter(([k]) =>
    !/^(timing_s|perf|actor_failures|actor_restarts|actor_retries|actor_health|actor_ranks|device_fallback)\//.test(k))));
}

interface Run {
  result: FitResult;
  metrics: Array<Record<string, number>>;
  events: Array<Record<string, unknown>>;
}

async function run(config: Config, id: string, faultPlan?: FaultPlan): Promise<Run> {
  const job = createJob(config, id);
  const result = await fit({ config, job, output: quiet, onNote: quiet, ...(faultPlan ? { faultPlan } : {}) });
  const events = readFileSync(job.events, "utf8").trim().split("\n").map((l) => JSON.parse(l));
  return { result, metrics: new MetricsFile(job.metrics).read(), events };
}

describe("shards", () => {
  test("rows split into contiguous shards, the first ones one longer; empty shards left out", () => {
    expect(shardRows(12, 3)).toEqual([[0, 4], [4, 8], [8, 12]]);
    expect(shardRows(7, 3)).toEqual([[0, 3], [3, 5], [5, 7]]);
    expect(shardRows(2, 4)).toEqual([[0, 1], [1, 2]]);
    expect(shardRows(0, 2)).toEqual([]);
  });

  test("shard results join in row order", () => {
    const part = (rows: number, base: number, values: boolean): GenerateResult => ({
      batch: rows, maxNewTokens: 2,
      tokens: Int32Array.from({ length: rows * 2 }, (_, i) => base + i),
      logprobs: Float32Array.from({ length: rows * 2 }, (_, i) => -(base + i)),
      values: values ? new Float32Array(rows * 2).fill(base) : null,
      lengths: Int32Array.from({ length: rows }, (_, i) => base + i),
    });
    const joined = concatResults([part(2, 0, true), part(1, 100, true)], 2);
    expect(joined.batch).toBe(3);
    expect([...joined.tokens]).toEqual([0, 1, 2, 3, 100, 101]);
    expect([...joined.lengths]).toEqual([0, 1, 100]);
    expect([...joined.values!]).toEqual([0, 0, 0, 0, 100, 100]);
    expect(concatResults([part(1, 0, true), part(1, 5, false)], 2).values).toBeNull();
  });
});

describe("rollout group configuration", () => {
  const runDir = tempDir("revenant-rollout-config-");

  test("elastic without ranks, and shared memory off this host, are refused with the key named", () => {
    const bad = (args: string[]) => {
      try {
        checkTaskJobConfig(groupConfig(runDir, 0, args));
      } catch (e) {
        return e as JobConfigError;
      }
      throw new Error(`expected ${args.join(" ")} to be refused`);
    };
    const elastic = bad(["worker.rollout.elastic=true"]);
    expect(elastic).toBeInstanceOf(JobConfigError);
    expect(elastic.path).toBe("worker.rollout.elastic");
    expect(elastic.message).toContain("worker.rollout.ranks");
    const shm = bad(["worker.rollout.ranks=2", "worker.rollout.weight_transfer=shared_memory", "cluster.launcher=slurm", "cluster.transport=tcp"]);
    expect(shm.path).toBe("worker.rollout.weight_transfer");
    expect(shm.message).toContain("allowed otherwise: socket or auto");
  });

  test("the group's child spec: ranks, elastic, and a thread share per rank", () => {
    const plan = checkTaskJobConfig(groupConfig(runDir, 3, ["worker.rollout.elastic=true"]));
    const spec = plan.childSpecs().find((s) => s.id === "rollout") as { ranks: number; elastic: boolean; role: string } | undefined;
    expect(spec).toMatchObject({ role: "rollout", ranks: 3, elastic: true });
    expect(plan.rolloutThreads(6)).toBe(2);
    expect(plan.rolloutThreads(2)).toBe(1);
    expect(checkTaskJobConfig(groupConfig(runDir, 0)).childSpecs().some((s) => s.id === "rollout")).toBe(false);
  });
});

describe("rollout worker groups", () => {
  const runDir = tempDir("revenant-rollout-");
  let colocated: Run;
  let calm: Run;

  test("one rollout rank samples exactly what actor_rollout samples alone", async () => {
    colocated = await run(groupConfig(runDir, 0), "colocated");
    const single = await run(groupConfig(runDir, 1), "single");
    expect(single.result.weightsSha256).toBe(colocated.result.weightsSha256);
    expect(trainingMetrics(single.metrics)).toEqual(trainingMetrics(colocated.metrics));
    expect(single.metrics[0]!["timing_s/weight_sync"]).toBeGreaterThanOrEqual(0);
  }, 180_000);

  test("three ranks: the calm run", async () => {
    calm = await run(groupConfig(runDir, 3), "calm");
    expect(calm.result.failures).toBe(0);
    expect(calm.metrics).toHaveLength(STEPS);
  }, 180_000);

  test(`seeded kills and hangs of rollout ranks change nothing but the fault counters (seed ${SEED})`, async () => {
    // Calls per step to each rank: generate, then syncWeights after the update.
    const plan = randomPlan({ seed: SEED, steps: [1, STEPS], calls: { "rollout/0": 2, "rollout/1": 2, "rollout/2": 2 }, count: 5, actions: ["kill", "hang"] });
    const faulty = await run(groupConfig(runDir, 3), "faulty", plan);
    expect(plan.remaining).toEqual([]);
    expect(faulty.result.chaosFaults).toBe(5);
    expect(faulty.result.failures).toBe(5);
    expect(faulty.result.weightsSha256).toBe(calm.result.weightsSha256);
    expect(trainingMetrics(faulty.metrics)).toEqual(trainingMetrics(calm.metrics));
    expect(faulty.metrics.at(-1)!["actor_restarts/rollout_cumulative"]).toBe(5);
  }, 240_000);

  test("weights sent over the sockets give the same run as the shared segment, through a kill", async () => {
    const plan = new FaultPlan([{ actor: "rollout/2", step: 3, call: 1, action: "kill" }]);
    const socket = await run(groupConfig(runDir, 3, ["worker.rollout.weight_transfer=socket"]), "socket", plan);
    expect(socket.result.failures).toBe(1);
    expect(socket.result.weightsSha256).toBe(calm.result.weightsSha256);
    expect(trainingMetrics(socket.metrics)).toEqual(trainingMetrics(calm.metrics));
  }, 180_000);

  test("elastic: a rank lost for good is dropped, said so in events and metrics, and the run ends where the calm one did", async () => {
    const plan = new FaultPlan([{ actor: "rollout/1", step: 3, call: 1, action: "kill" }]);
    const elastic = await run(groupConfig(runDir, 3, ["worker.rollout.elastic=true", "fault_tolerance.max_restarts=0"]), "elastic", plan);
    const dropped = elastic.events.filter((e) => e.type === "dropped");
    expect(dropped).toHaveLength(1);
    expect(dropped[0]).toMatchObject({ actor: "rollout/1", role: "rollout", ranks_left: 2 });
    expect(String(dropped[0]!.reason)).toContain("max_restarts=0");
    expect(elastic.metrics[1]!["actor_ranks/rollout"]).toBe(3);
    expect(elastic.metrics[2]!["actor_ranks/rollout"]).toBe(2);
    expect(elastic.metrics.at(-1)!["actor_ranks/rollout"]).toBe(2);
    expect(elastic.result.weightsSha256).toBe(calm.result.weightsSha256);
    expect(trainingMetrics(elastic.metrics)).toEqual(trainingMetrics(calm.metrics));
  }, 180_000);

  test("not elastic: the same loss fails the job, naming the rank", async () => {
    const plan = new FaultPlan([{ actor: "rollout/1", step: 3, call: 1, action: "kill" }]);
    const config = groupConfig(runDir, 3, ["fault_tolerance.max_restarts=0"]);
    const err = await fit({ config, job: createJob(config, "strict"), output: quiet, onNote: quiet, faultPlan: plan }).then(
      () => undefined, (e: unknown) => e);
    expect(err).toBeInstanceOf(TrainingFailedError);
    expect((err as TrainingFailedError).report.offender).toBe("rollout/1");
    expect((err as TrainingFailedError).step).toBe(3);
  }, 180_000);
});
