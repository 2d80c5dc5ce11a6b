/** Configuration: defaults, precedence, every kind of bad input and its message. */
import { afterAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  ConfigError, DURATION_S, FaultToleranceConfig, FaultToleranceSchema, LIMITS, MAX_COUNT, PPOConfig, configJsonSchema, resolveConfig,
  DEFAULT_CONFIG_FILE,
} from "../../config/index.ts";
import { leafKeys } from "../../config/reference.ts";
import { MODEL_LIMITS } from "../../native/model_limits.ts";

const dir = mkdtempSync(join(tmpdir(), "revenant-config-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
function yamlFile(name: string, text: string): string {
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
}
/** Resolves with no file and no environment unless given, so the host's variables never leak in. */
const resolve = (o: Parameters<typeof resolveConfig>[0] = {}) => resolveConfig({ file: null, env: {}, ...o });
function problemsOf(fn: () => unknown) {
  try {
    fn();
  } catch (e) {
    if (e instanceof ConfigError) return e;
    throw e;
  }
  throw new Error("expected a ConfigError");
}

describe("defaults", () => {
  test("fault_tolerance defaults equal the reference", () => {
    const ft = resolve().config.fault_tolerance;
    expect({
      enable_fault_tolerance: ft.enable_fault_tolerance,
      max_restarts: ft.max_restarts,
      max_task_retries: ft.max_task_retries,
      enable_health_monitoring: ft.enable_health_monitoring,
      health_check_interval: ft.health_check_interval,
    }).toEqual({
      enable_fault_tolerance: true, max_restarts: 3, max_task_retries: 2, enable_health_monitoring: true, health_check_interval: 30.0,
    });
    expect(ft.restart_strategy).toBe("one_for_one");
  });

  test("the shipped ppo.yaml resolves and agrees with the built-in defaults", () => {
    const shipped = resolveConfig({ env: {} });
    expect(shipped.sources.get("fault_tolerance.max_restarts")).toMatch(/ppo\.yaml:\d+:\d+$/);
    expect(shipped.config).toEqual(resolve().config);
    expect(DEFAULT_CONFIG_FILE.endsWith("config/ppo.yaml")).toBe(true);
  });

  test("run_dir defaults to runs/ and adv_estimator to gae", () => {
    const c = resolve().config;
    expect(c.trainer.run_dir).toBe("runs/");
    expect(c.algorithm.adv_estimator).toBe("gae");
  });
});

describe("precedence: defaults < YAML < environment < arguments", () => {
  const file = yamlFile("p.yaml", "fault_tolerance:\n  max_restarts: 4\n  max_task_retries: 4\n  health_check_interval: 4\ntrainer:\n  total_steps: 4\n");

  test("each layer overrides the one below it, and only the keys it sets", () => {
    const { config, sources } = resolve({
      file,
      env: { VERL_MAX_TASK_RETRIES: "5", VERL_HEALTH_CHECK_INTERVAL: "5", REVENANT_TRAINER__TOTAL_STEPS: "5" },
      args: ["fault_tolerance.health_check_interval=6.5"],
    });
    expect(config.fault_tolerance.max_restarts).toBe(4); // YAML
    expect(config.fault_tolerance.max_task_retries).toBe(5); // env over YAML
    expect(config.trainer.total_steps).toBe(5); // REVENANT_ env over YAML
    expect(config.fault_tolerance.health_check_interval).toBe(6.5); // argument over env over YAML
    expect(config.fault_tolerance.enable_health_monitoring).toBe(true); // default
    expect(sources.get("fault_tolerance.max_restarts")).toBe(`${file}:2:3`);
    expect(sources.get("fault_tolerance.max_task_retries")).toBe("env VERL_MAX_TASK_RETRIES");
    expect(sources.get("fault_tolerance.health_check_interval")).toBe("argument fault_tolerance.health_check_interval=6.5");
  });

  test("all five VERL_* variables map to their keys, booleans in the usual spellings", () => {
    const { config } = resolve({
      env: {
        VERL_FAULT_TOLERANCE_ENABLED: "false", VERL_MAX_RESTARTS: "-1", VERL_MAX_TASK_RETRIES: "0",
        VERL_HEALTH_MONITORING_ENABLED: "0", VERL_HEALTH_CHECK_INTERVAL: "0.5",
      },
    });
    expect(config.fault_tolerance).toMatchObject({
      enable_fault_tolerance: false, max_restarts: -1, max_task_retries: 0, enable_health_monitoring: false, health_check_interval: 0.5,
    });
    for (const [text, want] of [["TRUE", true], ["yes", true], ["on", true], ["No", false], ["off", false]] as const) {
      expect(resolve({ env: { VERL_FAULT_TOLERANCE_ENABLED: text } }).config.fault_tolerance.enable_fault_tolerance).toBe(want);
    }
  });

  test("REVENANT_ variables reach nested keys in any case; others are not config", () => {
    const { config } = resolve({
      env: { revenant_worker__actor__model__width: "128", REVENANT_WORKER__ACTOR__MODEL__HEADS: "8", REVENANT_NUM_THREADS: "1", REVENANT_TOKEN: "x" },
    });
    expect(config.worker.actor.model.width).toBe(128);
    expect(config.worker.actor.model.heads).toBe(8);
  });

  test("lists from the command line: comma-separated or YAML flow", () => {
    expect(resolve({ args: ["trainer.logger=jsonl"] }).config.trainer.logger).toEqual(["jsonl"]);
    expect(resolve({ args: ["trainer.logger=[console, jsonl]"] }).config.trainer.logger).toEqual(["console", "jsonl"]);
  });

  test("a later argument for the same key wins", () => {
    expect(resolve({ args: ["checkpoint.keep=2", "checkpoint.keep=7"] }).config.checkpoint.keep).toBe(7);
  });
});

describe("bad input is rejected with path, source, value and what is allowed", () => {
  test("unparsable env value VERL_MAX_RESTARTS=abc", () => {
    const e = problemsOf(() => resolve({ env: { VERL_MAX_RESTARTS: "abc" } }));
    expect(e.problems).toEqual([{
      path: "fault_tolerance.max_restarts", source: "env VERL_MAX_RESTARTS", value: "abc", message: "expected an integer ≥ -1 and ≤ 1000000",
    }]);
    expect(e.message).toContain(`fault_tolerance.max_restarts = "abc" (env VERL_MAX_RESTARTS): expected an integer ≥ -1 and ≤ 1000000`);
  });

  test("an empty env value is an error, not a silent default", () => {
    const e = problemsOf(() => resolve({ env: { VERL_HEALTH_CHECK_INTERVAL: "" } }));
    expect(e.problems[0]).toMatchObject({ path: "fault_tolerance.health_check_interval", value: "", message: "expected a number > 0 and ≤ 1000000" });
  });

  test("a non-integer where an integer is wanted", () => {
    const e = problemsOf(() => resolve({ args: ["fault_tolerance.max_task_retries=1.5"] }));
    expect(e.problems[0]).toMatchObject({ path: "fault_tolerance.max_task_retries", value: 1.5, message: "expected an integer ≥ -1 and ≤ 1000000" });
  });

  test("out-of-range numbers", () => {
    expect(problemsOf(() => resolve({ args: ["fault_tolerance.max_restarts=-2"] })).problems[0]!.message).toBe("expected an integer ≥ -1 and ≤ 1000000");
    expect(problemsOf(() => resolve({ args: ["fault_tolerance.health_check_interval=0"] })).problems[0]!.message).toBe("expected a number > 0 and ≤ 1000000");
    expect(problemsOf(() => resolve({ args: ["algorithm.gamma=1.5"] })).problems[0]!.message).toBe("expected a number ≥ 0 and ≤ 1");
  });

  test("wrong type in YAML, with file:line:col", () => {
    const file = yamlFile("t.yaml", "fault_tolerance:\n  enable_fault_tolerance: maybe\n");
    const e = problemsOf(() => resolve({ file }));
    expect(e.problems).toEqual([{
      path: "fault_tolerance.enable_fault_tolerance", source: `${file}:2:3`, value: "maybe", message: "expected a boolean (true or false)",
    }]);
  });

  test("unknown keys from every source, with the allowed keys", () => {
    const file = yamlFile("u.yaml", "fault_tolerance:\n  max_restart: 3\nbogus_section: {}\n");
    const e = problemsOf(() => resolve({ file, env: { REVENANT_TRAINER__STEPS: "9" }, args: ["checkpoint.every=2"] }));
    const byPath = Object.fromEntries(e.problems.map((p) => [p.path, p]));
    expect(byPath["fault_tolerance.max_restart"]!.source).toBe(`${file}:2:3`);
    expect(byPath["fault_tolerance.max_restart"]!.message).toContain("unknown key; allowed keys here: enable_fault_tolerance, max_restarts,");
    expect(byPath["bogus_section"]!.source).toBe(`${file}:3:1`);
    expect(byPath["trainer.steps"]!.source).toBe("env REVENANT_TRAINER__STEPS");
    expect(byPath["checkpoint.every"]!.message).toBe("unknown key; allowed keys here: interval, keep, save_hf_model, hf_dtype");
  });

  test("bad enum values list the allowed ones", () => {
    const e = problemsOf(() => resolve({ args: ["fault_tolerance.restart_strategy=rest_for_one", "worker.actor.device=gpu"] }));
    expect(e.problems.map((p) => p.message).sort()).toEqual(['expected "auto", "cpu", "cuda", "cuda:N" (N a device index: 0, 1, ...) or "null", got "gpu"', "expected one of: one_for_one, one_for_all"]);
  });

  test("malformed YAML names file, line and column", () => {
    const file = yamlFile("m.yaml", "fault_tolerance:\n  max_restarts: [2\n  x: 1\n");
    const e = problemsOf(() => resolve({ file }));
    expect(e.problems[0]!.path).toBe("(file)");
    expect(e.problems[0]!.source).toMatch(new RegExp(`^${file.replace(/[.]/g, "\\.")}:\\d+:\\d+$`));
    expect(e.problems[0]!.message).toStartWith("malformed YAML: ");
  });

  test("duplicate YAML keys are malformed, not last-one-wins", () => {
    const file = yamlFile("d.yaml", "checkpoint:\n  keep: 1\n  keep: 2\n");
    expect(problemsOf(() => resolve({ file })).problems[0]!.message).toContain("malformed YAML");
  });

  test("a YAML file that is not a mapping", () => {
    const file = yamlFile("l.yaml", "- a\n- b\n");
    expect(problemsOf(() => resolve({ file })).problems[0]!.message).toContain("top level must be a mapping");
  });

  test("a missing config file", () => {
    const e = problemsOf(() => resolve({ file: join(dir, "nope.yaml") }));
    expect(e.problems[0]).toMatchObject({ path: "(file)", message: "cannot read config file: file not found" });
  });

  test("malformed command-line arguments", () => {
    const e = problemsOf(() => resolve({ args: ["max_restarts", "=3", "a..b=1"] }));
    expect(e.problems).toHaveLength(3);
    for (const p of e.problems) expect(p.message).toBe("expected key.sub=value, e.g. fault_tolerance.max_restarts=5");
  });

  test("conflicting VERL_ and REVENANT_ forms of one key", () => {
    const e = problemsOf(() => resolve({ env: { VERL_MAX_RESTARTS: "1", REVENANT_FAULT_TOLERANCE__MAX_RESTARTS: "2" } }));
    expect(e.problems[0]!.message).toContain("conflicts with");
    // Equal values are not a conflict.
    expect(resolve({ env: { VERL_MAX_RESTARTS: "2", REVENANT_FAULT_TOLERANCE__MAX_RESTARTS: "2" } }).config.fault_tolerance.max_restarts).toBe(2);
  });

  test("a value and a section at the same key", () => {
    const e = problemsOf(() => resolve({ args: ["trainer=1", "trainer.seed=2"] }));
    expect(e.problems[0]!.message).toContain("cannot be both a value and a section");
  });

  test("cross-field rules: heads must divide width", () => {
    const e = problemsOf(() => resolve({ args: ["worker.critic.model.heads=3"] }));
    expect(e.problems[0]).toMatchObject({ path: "worker.critic.model.heads", message: "heads must divide width" });
  });

  test("every problem in every source is reported at once", () => {
    const file = yamlFile("many.yaml", "checkpoint:\n  keep: 0\n");
    const e = problemsOf(() => resolve({ file, env: { VERL_MAX_RESTARTS: "x" }, args: ["trainer.seed=-1", "oops"] }));
    expect(e.problems.map((p) => p.path).sort()).toEqual(["(arguments)", "checkpoint.keep", "fault_tolerance.max_restarts", "trainer.seed"]);
  });
});

describe("programmatic API mirrors the reference", () => {
  test("new PPOConfig() with a FaultToleranceConfig, defaults included", () => {
    const config = new PPOConfig();
    config.fault_tolerance = new FaultToleranceConfig({ max_restarts: 5 });
    expect(config.fault_tolerance.max_restarts).toBe(5);
    expect(config.fault_tolerance.max_task_retries).toBe(2);
    expect(config.fault_tolerance.health_check_interval).toBe(30);
    expect(config.validate().fault_tolerance.max_restarts).toBe(5);
    expect(config.trainer.total_steps).toBe(resolve().config.trainer.total_steps);
  });

  test("bad values in code are rejected with the key path", () => {
    const e = problemsOf(() => new FaultToleranceConfig({ max_restarts: -5 }));
    expect(e.problems[0]).toMatchObject({ path: "fault_tolerance.max_restarts", source: "code", value: -5, message: "expected an integer ≥ -1 and ≤ 1000000" });
    const c = new PPOConfig();
    (c.checkpoint as { keep: unknown }).keep = "three";
    expect(problemsOf(() => c.validate()).problems[0]).toMatchObject({ path: "checkpoint.keep", value: "three" });
    expect(problemsOf(() => new PPOConfig({ trainer: { bogus: 1 } as never })).problems[0]!.path).toBe("trainer.bogus");
  });
});

describe("JSON Schema export", () => {
  test("describes every fault_tolerance key with type, default and meaning", () => {
    const schema = configJsonSchema() as { properties: Record<string, { properties: Record<string, Record<string, unknown>> }> };
    const ft = schema.properties.fault_tolerance!.properties;
    expect(ft.max_restarts).toMatchObject({ type: "integer", minimum: -1, maximum: 1_000_000, default: 3 });
    expect(ft.health_check_interval).toMatchObject({ type: "number", exclusiveMinimum: 0, maximum: 1_000_000, default: 30 });
    for (const node of Object.values(ft)) expect(typeof node.description).toBe("string");
  });
});

describe("keys that name JavaScript internals", () => {
  test("__proto__, constructor and prototype are unknown keys, never a way into Object.prototype", () => {
    const file = join(dir, "proto.yaml");
    writeFileSync(file, "__proto__:\n  polluted_yaml: 1\n");
    const attempts: Array<() => unknown> = [
      () => resolve({ values: JSON.parse('{"__proto__": {"polluted_values": 1}}') }),
      () => resolve({ values: JSON.parse('{"trainer": {"__proto__": {"polluted_nested": 1}}}') }),
      () => resolve({ args: ["__proto__.polluted_arg=1"] }),
      () => resolve({ args: ["trainer.constructor.prototype.polluted_ctor=1"] }),
      () => resolve({ env: { REVENANT___PROTO____POLLUTED_ENV: "1" } }),
      () => resolve({ file }),
    ];
    for (const attempt of attempts) {
      const e = problemsOf(attempt);
      expect(e.problems.some((p) => p.message.startsWith("unknown key"))).toBe(true);
    }
    const probe = {} as Record<string, unknown>;
    for (const k of ["polluted_values", "polluted_nested", "polluted_arg", "polluted_ctor", "polluted_env", "polluted_yaml"]) expect(probe[k]).toBeUndefined();
  });
});

describe("ping_timeout_s must exceed ping_interval_s", () => {
  const rule = "an actor answers one ping per interval, so a shorter timeout kills healthy actors; raise ping_timeout_s or lower ping_interval_s";

  test("from the command line: both keys, both values, both sources", () => {
    const e = problemsOf(() => resolve({ args: ["fault_tolerance.ping_interval_s=2", "fault_tolerance.ping_timeout_s=1.5"] }));
    expect(e.problems).toEqual([{
      path: "fault_tolerance.ping_timeout_s",
      source: "argument fault_tolerance.ping_timeout_s=1.5",
      value: 1.5,
      message: `must be greater than fault_tolerance.ping_interval_s = 2 (argument fault_tolerance.ping_interval_s=2): ${rule}`,
    }]);
    expect(e.message).toContain("fault_tolerance.ping_timeout_s = 1.5 (argument fault_tolerance.ping_timeout_s=1.5): must be greater than");
  });

  test("from a YAML file, with file:line:col; equal values are refused too", () => {
    const file = yamlFile("ping.yaml", "fault_tolerance:\n  ping_interval_s: 3\n  ping_timeout_s: 3\n");
    const e = problemsOf(() => resolve({ file }));
    expect(e.problems[0]).toMatchObject({ path: "fault_tolerance.ping_timeout_s", source: `${file}:3:3`, value: 3 });
    expect(e.problems[0]!.message).toStartWith(`must be greater than fault_tolerance.ping_interval_s = 3 (${file}:2:3)`);
  });

  test("from the environment, against a default: the default's value is shown and named as such", () => {
    const e = problemsOf(() => resolve({ env: { REVENANT_FAULT_TOLERANCE__PING_INTERVAL_S: "20" } }));
    expect(e.problems).toEqual([{
      path: "fault_tolerance.ping_timeout_s",
      source: "default",
      value: 10,
      message: `must be greater than fault_tolerance.ping_interval_s = 20 (env REVENANT_FAULT_TOLERANCE__PING_INTERVAL_S): ${rule}`,
    }]);
    expect(e.message).toContain("fault_tolerance.ping_timeout_s = 10 (default): must be greater than fault_tolerance.ping_interval_s = 20 (env");
  });

  test("sources mixed: timeout from a file, interval from an argument", () => {
    const file = yamlFile("ping2.yaml", "fault_tolerance:\n  ping_timeout_s: 0.5\n");
    const e = problemsOf(() => resolve({ file, args: ["fault_tolerance.ping_interval_s=0.5"] }));
    expect(e.problems[0]).toMatchObject({ source: `${file}:2:3`, value: 0.5 });
    expect(e.problems[0]!.message).toStartWith("must be greater than fault_tolerance.ping_interval_s = 0.5 (argument fault_tolerance.ping_interval_s=0.5)");
  });

  test("in code, and in the section schema alone", () => {
    const e = problemsOf(() => new FaultToleranceConfig({ ping_interval_s: 5, ping_timeout_s: 4 }));
    expect(e.problems[0]).toMatchObject({ path: "fault_tolerance.ping_timeout_s", source: "code", value: 4 });
    expect(e.problems[0]!.message).toStartWith("must be greater than fault_tolerance.ping_interval_s = 5 (code)");
    const direct = FaultToleranceSchema.safeParse({ ping_timeout_s: 0.5 });
    expect(direct.success).toBe(false);
    expect(direct.error!.issues[0]!.message).toStartWith("must be greater than ping_interval_s = 1: ");
  });

  test("a timeout above the interval is accepted", () => {
    const ft = resolve({ args: ["fault_tolerance.ping_interval_s=0.1", "fault_tolerance.ping_timeout_s=0.2"] }).config.fault_tolerance;
    expect([ft.ping_interval_s, ft.ping_timeout_s]).toEqual([0.1, 0.2]);
  });
});

describe("bounds", () => {
  const schema = configJsonSchema();
  const durations = leafKeys(schema).filter(([path]) => path.endsWith("_s"));

  test("every duration runs from 1 ms to one week, far below the 2^31-1 ms at which a timer overflows", () => {
    expect(durations.map(([p]) => p)).toEqual(expect.arrayContaining(["fault_tolerance.call_deadline_s", "reward.call_deadline_s"]));
    expect(durations.length).toBe(10);
    for (const [path, node] of durations) {
      expect({ path, min: node.minimum, max: node.maximum }).toEqual({ path, min: DURATION_S.min, max: DURATION_S.max });
    }
    expect(DURATION_S.max * 1000).toBeLessThan(2 ** 31 - 1);
  });

  test("call_deadline_s=1e300 is refused with the allowed range in seconds", () => {
    const e = problemsOf(() => resolve({ args: ["fault_tolerance.call_deadline_s=1e300"] }));
    expect(e.problems).toEqual([{
      path: "fault_tolerance.call_deadline_s", source: "argument fault_tolerance.call_deadline_s=1e300", value: 1e300,
      message: "expected a number of seconds ≥ 0.001 and ≤ 604800",
    }]);
  });

  test("too short durations are refused; the bounds themselves are allowed", () => {
    const e = problemsOf(() => resolve({ env: { REVENANT_FAULT_TOLERANCE__SHUTDOWN_GRACE_S: "0.0001" } }));
    expect(e.problems[0]).toMatchObject({ path: "fault_tolerance.shutdown_grace_s", source: "env REVENANT_FAULT_TOLERANCE__SHUTDOWN_GRACE_S" });
    const ft = resolve({ args: ["fault_tolerance.restart_backoff_initial_s=0.001", "fault_tolerance.call_deadline_s=604800"] }).config.fault_tolerance;
    expect([ft.restart_backoff_initial_s, ft.call_deadline_s]).toEqual([0.001, 604800]);
  });

  test("every number in the configuration has an upper bound", () => {
    for (const [path, node] of leafKeys(schema)) {
      if (node.type !== "number" && node.type !== "integer") continue;
      const max = node.maximum ?? node.exclusiveMaximum;
      expect({ path, bounded: max !== undefined && Number.isFinite(max) }).toEqual({ path, bounded: true });
    }
  });

  test("sizes of work stop at their documented limits", () => {
    const cases: Array<[string, number]> = [
      ["data.train_size", LIMITS.train_size], ["data.val_size", LIMITS.val_size], ["data.min_digits", LIMITS.digits],
      ["data.max_digits", LIMITS.digits], ["data.train_batch_size", LIMITS.batch], ["worker.actor.ppo_mini_batch_size", LIMITS.mini_batch],
      ["worker.critic.ppo_mini_batch_size", LIMITS.mini_batch], ["worker.actor.rollout_n", LIMITS.rollout_n],
      ["worker.actor.max_new_tokens", MODEL_LIMITS.context.max], ["worker.actor.model.layers", MODEL_LIMITS.layers.max],
      ["worker.critic.model.heads", MODEL_LIMITS.heads.max], ["worker.actor.model.width", MODEL_LIMITS.width.max],
      ["worker.critic.model.context", MODEL_LIMITS.context.max], ["trainer.total_steps", MAX_COUNT],
      ["checkpoint.keep", LIMITS.keep],
    ];
    for (const [key, limit] of cases) {
      const e = problemsOf(() => resolve({ args: [`${key}=${limit + 1}`] }));
      expect(e.problems[0]).toMatchObject({ path: key, value: limit + 1 });
      expect(e.problems[0]!.message).toEndWith(`≤ ${limit}`);
    }
  });

  test("the largest data set and the longest run allowed resolve", () => {
    const { config } = resolve({
      args: [`data.train_size=${LIMITS.train_size}`, `data.val_size=${LIMITS.val_size}`, `data.max_digits=${LIMITS.digits}`, `trainer.total_steps=${MAX_COUNT}`],
    });
    expect(config.data.train_size).toBe(LIMITS.train_size);
    expect(config.trainer.total_steps).toBe(MAX_COUNT);
  });

  test("a huge value written in YAML is refused with its line", () => {
    const file = yamlFile("huge.yaml", "data:\n  train_size: 1e12\n");
    const e = problemsOf(() => resolve({ file }));
    expect(e.problems[0]).toMatchObject({ path: "data.train_size", source: `${file}:2:3`, message: `expected an integer ≥ 1 and ≤ ${LIMITS.train_size}` });
  });
});
