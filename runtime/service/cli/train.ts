/**
 * `bun run train` / `deno task train`: resolves the configuration and runs a training job.
 * `--help` lists every option; every hint it prints names the command of the runtime in use.
 */
import { existsSync } from "node:fs";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { stringify } from "yaml";
import { FaultPlan, FaultPlanError } from "../../core/chaos.ts";
import { LockedError } from "../../core/checkpoint/lock.ts";
import { runtime } from "../../core/adapter/index.ts";
import { ConfigError, configJsonSchema, resolveConfig } from "../../../config/index.ts";
import type { Config } from "../../../config/schema.ts";
import type { RuntimeEvent } from "../../core/metrics/events.ts";
import { loadNative, NativeAddonError } from "../../../native/loader.ts";
import { formatDeviceInfo } from "../../../native/device_report.ts";
import type { DeviceInfo } from "../../../native/types.ts";
import { createJob, dataName, JobError, JobExistsError, openJob, type JobPaths } from "../../rl/trainer/job.ts";
import { Progress } from "../../rl/trainer/progress.ts";
import { checkJobConfig, type JobPlan } from "../../rl/trainer/plan.ts";
import { fit, TrainingCancelledError, TrainingFailedError, type FitResult } from "../../rl/trainer/trainer.ts";
import { RewardFailedError } from "../../rl/trainer/phases.ts";
import { WriteError } from "../../core/files.ts";

/** How to run this CLI under the current runtime. */
export const TRAIN_COMMAND = runtime.name === "deno" ? "deno task train" : "bun run train";

const USAGE = `usage: ${TRAIN_COMMAND} [--config file.yaml] [--job name] [--chaos rate] [--fault-plan plan] [--quiet] [--debug] [key.sub=value ...]
       ${TRAIN_COMMAND} --resume runs/<job> [--chaos rate] [--fault-plan plan] [--quiet] [--debug]
       ${TRAIN_COMMAND} --print-config [--config file.yaml] [key.sub=value ...] | --print-schema | --help`;

/** Every option, explained (`--help`). */
function help(): string {
  return `${USAGE}

Runs a PPO/GRPO training job with supervised actors (runtime: ${runtime.name} ${runtime.version}).

options:
  --config FILE        YAML configuration; precedence: defaults < FILE < REVENANT_* environment < key.sub=value
  key.sub=value        set one configuration key, e.g. trainer.total_steps=100 algorithm.adv_estimator=grpo
  --job NAME           name of the job folder under trainer.run_dir (default <task>-<UTC time>-<random>);
                       1-128 characters from A-Z a-z 0-9 . _ -; an existing folder is refused
  --resume DIR         continue the job in DIR (runs/<job>) from its last good checkpoint, with its saved config
  --chaos RATE         inject about RATE faults per second (kill, hang, corrupt) at random, seeded times,
                       to watch recovery happen: 0 (off) or ${CHAOS_RATE.min} to ${CHAOS_RATE.max}
  --fault-plan PLAN    inject exactly these faults, by step and call: "critic@5:2=kill,actor_rollout@7:1=hang"
                       strikes the critic on its 2nd call of step 5 (kill, hang or corrupt); same on every machine
  --print-config       print the resolved configuration as YAML and exit
  --print-schema       print the configuration's JSON Schema and exit
  -q, --quiet          no progress line or per-step output (notes and the summary still print)
  --debug              with an error, print its stack trace too
  -h, --help           this text

Ctrl-C (or SIGTERM) stops after the current step with a checkpoint and prints how to resume;
a second Ctrl-C quits at once. Every key is documented in README.md ("Configuration reference").

exit codes:
  ${EXIT.ok}    the job finished
  ${EXIT.failed}    the job failed while running (an actor that could not be kept alive, a reward that failed on
       every row, a disk full or read-only): one line says why, and how to resume where that applies
  ${EXIT.refused}    refused before anything ran: a bad option, configuration, data, model or reward module, a job
       folder that exists, a job another process runs
  ${EXIT.cancelled}  stopped by Ctrl-C or SIGTERM after a checkpoint; resume it with --resume`;
}

/** The exit codes, documented in --help and README.md. */
export const EXIT = { ok: 0, failed: 1, refused: 2, cancelled: 130 } as const;

/** Errors refused before anything runs: the message is the whole story (exit 2). */
function isRefusal(e: unknown): boolean {
  return e instanceof ConfigError || e instanceof NativeAddonError || e instanceof JobError || e instanceof LockedError || e instanceof RangeError;
}

/**
 * One line for an error a user can meet (a refusal, a failed job, a full disk): what and why,
 * naming the file or actor, then how to resume the job when its folder holds one. Anything else
 * is unexpected and says so. The stack trace is printed with --debug only.
 */
export function errorReport(e: unknown, resumeDir: string | undefined, debug: boolean): { code: number; text: string } {
  const message = e instanceof Error ? e.message : String(e);
  const resumable = resumeDir !== undefined && existsSync(join(resumeDir, "config.json"));
  const resume = resumable ? `; after fixing that, continue with: ${TRAIN_COMMAND} --resume ${resumeDir}` : "";
  const stack = debug && e instanceof Error && e.stack ? `\n${e.stack}` : "";
  if (isRefusal(e)) {
    const text = e instanceof RangeError && !(e instanceof ConfigError) ? `invalid configuration: ${message}` : message;
    return { code: EXIT.refused, text: text + stack };
  }
  if (e instanceof TrainingFailedError || e instanceof RewardFailedError || e instanceof WriteError) {
    return { code: EXIT.failed, text: `${firstLine(message)}${resume}${stack}` };
  }
  const hint = debug ? "" : " (run again with --debug for the stack trace)";
  return { code: EXIT.failed, text: `error: ${firstLine(message)}${resume}${hint}${stack}` };
}

function firstLine(text: string): string {
  return text.split("\n")[0]!;
}

class UsageError extends Error {}

function parseCommandLine(argv: string[]) {
  try {
    return parseArgs({
      args: argv,
      allowPositionals: true,
      strict: true,
      options: {
        config: { type: "string" },
        resume: { type: "string" },
        chaos: { type: "string" },
        job: { type: "string" },
        "fault-plan": { type: "string" },
        "print-config": { type: "boolean" },
        "print-schema": { type: "boolean" },
        quiet: { type: "boolean", short: "q" },
        debug: { type: "boolean" },
        help: { type: "boolean", short: "h" },
      },
    });
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
}

/**
 * Chaos rates, in faults per second; 0 is off. The chaos monkey waits an exponential interval
 * of mean 1/rate drawn from a 32-bit uniform, so its longest wait is about 22.2 × the mean: at
 * the lowest rate (one fault per 10 000 s on average) that is 2.6 days, safely under the
 * 24.8 days (2^31−1 ms) past which a timer overflows and fires at once. The highest rate puts
 * faults 1 ms apart on average, a timer's resolution.
 */
export const CHAOS_RATE = { min: 1e-4, max: 1000 } as const;

function parseChaos(text: string | undefined): number {
  if (text === undefined) return 0;
  const rate = Number(text);
  const ok = text.trim() !== "" && (rate === 0 || (rate >= CHAOS_RATE.min && rate <= CHAOS_RATE.max));
  if (!ok) {
    throw new UsageError(`--chaos ${JSON.stringify(text)}: expected 0 (off) or a rate from ${CHAOS_RATE.min} to ${CHAOS_RATE.max} faults per second`);
  }
  return rate;
}

function parseFaultPlan(text: string): FaultPlan {
  try {
    return FaultPlan.parse(text);
  } catch (e) {
    throw new UsageError(`--fault-plan: ${(e as Error).message}`);
  }
}

/**
 * Which device each role computes on, and why: auto picks CUDA device 0 only when it is usable,
 * and a role that falls back to the CPU gets a line saying so, with deviceInfo's reason, so a slow
 * run on a GPU machine explains itself. (The actors decide for themselves; their `info()` and
 * `health()` report `device` and `fallback` as they found them.)
 */
export function deviceBanner(config: Config, info?: DeviceInfo): string {
  const roles: Record<string, string> = { actor_rollout: config.worker.actor.device, critic: config.worker.critic.device, ref_policy: config.worker.ref.device };
  if (config.worker.rollout.ranks > 0) roles.rollout = config.worker.rollout.device;
  const wanted = new Set(Object.values(roles));
  // The null backend needs no addon: a machine without the build can still run (and test) the runtime.
  if (wanted.size === 1 && wanted.has("null")) return "device: null for every role (no real compute; nothing is learned)";
  const device = info ?? loadNative().deviceInfo();
  const resolve = (d: string) => (d === "auto" ? (device.cuda.usable ? "cuda" : "cpu") : d);
  const used = Object.entries(roles).map(([role, d]) => `${role} ${resolve(d)}${d === "auto" ? " (auto)" : ""}`).join(", ");
  const fellBack = Object.entries(roles).filter(([, d]) => d === "auto" && !device.cuda.usable).map(([role]) => role);
  const fallback = fellBack.length ? [`device fallback: ${fellBack.join(", ")} on the CPU (auto): ${device.cuda.reason ?? "no usable CUDA device"}`] : [];
  return [`device: ${used}`, ...fallback, formatDeviceInfo(device)].join("\n");
}

/** The console line for an actor event (deaths and restarts; other events stay in events.jsonl). */
export function actorEventLine(e: RuntimeEvent): string | undefined {
  if (e.type === "death") {
    const how = e.signal ? `signal ${String(e.signal)}` : e.code !== undefined && e.code !== null ? `exit code ${String(e.code)}` : String(e.cause);
    return `actor ${e.actor} (incarnation ${String(e.incarnation)}) died: ${String(e.cause)}, ${how}${e.detail ? ` (${String(e.detail)})` : ""}`;
  }
  if (e.type === "restart") return `actor ${e.actor} restarted as incarnation ${String(e.incarnation)} (${String(e.latency_ms)} ms, state restored)`;
  if (e.type === "failed") return `actor ${e.actor} failed permanently: ${String(e.reason ?? e.cause ?? "")}`;
  if (e.type === "dropped") return `actor ${e.actor} dropped from its elastic group (${String(e.ranks_left)} ranks left take its shards): ${String(e.reason)}`;
  return undefined;
}

/** A job folder that exists: continue it with --resume when it is a job, else pick another name. */
function existsHint(e: JobExistsError): string {
  const resumable = existsSync(join(e.dir, "config.json"));
  return resumable
    ? `${e.dir} already exists; continue it with ${TRAIN_COMMAND} --resume ${e.dir} or choose another --job`
    : `${e.dir} already exists and is not a job folder; choose another --job`;
}

function summary(r: FitResult, job: JobPaths): string {
  const before = r.initialValScore === undefined ? "?" : r.initialValScore.toFixed(3);
  return [
    `done: ${job.dir}`,
    `  steps            ${r.startStep} → ${r.steps}`,
    `  val reward       ${before} → ${r.finalValScore === null ? "? (trainer.val_interval=0: no validation)" : r.finalValScore.toFixed(3)}`,
    `  faults survived  ${r.failures} failures, ${r.restarts} restarts${r.chaosFaults ? ` (${r.chaosFaults} injected)` : ""}`,
    `  wall time        ${r.wallS.toFixed(1)} s`,
    `  throughput       ${Math.round(r.tokensPerS)} tokens/s`,
    `  weights sha256   ${r.weightsSha256.slice(0, 16)}…`,
  ].join("\n");
}

export async function main(argv: string[]): Promise<number> {
  let resumeHint: string | undefined;
  try {
    const { values, positionals } = parseCommandLine(argv);
    if (values.help) {
      console.log(help());
      return 0;
    }
    if (values["print-schema"]) {
      console.log(JSON.stringify(configJsonSchema(), null, 2));
      return 0;
    }
    const chaosRate = parseChaos(values.chaos);
    const faultPlan = values["fault-plan"] === undefined ? undefined : parseFaultPlan(values["fault-plan"]);
    let config: Config;
    let job: JobPaths;
    let plan: JobPlan;
    const progress = new Progress(process.stdout, !values.quiet);
    if (values.resume) {
      if (values.config || positionals.length) throw new UsageError("--resume takes the job's saved configuration; drop --config and key=value arguments");
      if (values.job !== undefined) throw new UsageError("--resume continues the job in its own folder; drop --job");
      ({ config, paths: job } = openJob(values.resume));
      plan = await checkJobConfig(config);
    } else {
      const resolved = resolveConfig({ file: values.config, args: positionals });
      config = resolved.config;
      if (values["print-config"]) {
        process.stdout.write(stringify(config));
        return 0;
      }
      // Once each: which of verl's key names were read as which of ours.
      for (const line of resolved.notes) progress.note(line);
      // A config that cannot run as a whole fails here, before its job folder exists.
      plan = await checkJobConfig(config);
      job = createJob(config, values.job);
    }
    // trainer.total_steps as run: set from trainer.total_epochs when that is given.
    config = plan.config;
    resumeHint = job.dir;
    progress.note(deviceBanner(config));
    progress.note(plan.modelBanner);
    progress.note(`job ${job.id} (${dataName(config)}, ${config.algorithm.adv_estimator}, ${config.trainer.total_steps} steps) → ${job.dir}`);
    // Ctrl-C or SIGTERM: finish the step, checkpoint, stop the actors, say how to resume. A second
    // signal exits at once (the actors notice the lost connection and exit too).
    const cancel = new AbortController();
    const onSignal = (signal: string) => {
      if (cancel.signal.aborted) process.exit(130);
      progress.note(`${signal}: stopping after this step (again to quit at once)`);
      cancel.abort(signal);
    };
    process.on("SIGINT", () => onSignal("SIGINT"));
    process.on("SIGTERM", () => onSignal("SIGTERM"));
    const result = await fit({
      config, job, plan, resume: Boolean(values.resume), chaosRate, faultPlan, signal: cancel.signal,
      onStep: (step, m) => {
        if (config.trainer.logger.includes("console") && !values.quiet) progress.step({ step, total: config.trainer.total_steps, metrics: m });
      },
      onNote: (line) => progress.note(line),
      // One console line per actor death and restart, above the progress line.
      onSupervisor: (sup) => void sup.events.subscribe((e) => {
        const line = actorEventLine(e);
        if (line) progress.note(line);
      }),
    });
    console.log(summary(result, job));
    return 0;
  } catch (e) {
    if (e instanceof TrainingCancelledError) {
      console.error(`${e.message}; continue with: ${TRAIN_COMMAND} --resume ${resumeHint ?? "runs/<job>"}`);
      return EXIT.cancelled;
    }
    if (e instanceof JobExistsError) {
      console.error(existsHint(e));
      return EXIT.refused;
    }
    if (e instanceof UsageError || e instanceof FaultPlanError) {
      console.error(`${e.message}\n${USAGE}`);
      return EXIT.refused;
    }
    const { code, text } = errorReport(e, resumeHint, argv.includes("--debug"));
    console.error(text);
    return code;
  }
}

if (import.meta.main) process.exit(await main(process.argv.slice(2)));
