/**
 * `bun run train` / `deno task train`: resolves the configuration and runs a training job.
 *
 *   bun run train [--config file.yaml] [key.sub=value ...]
 *   bun run train --resume runs/<job>          continue a stopped or killed job
 *   bun run train --chaos 0.5 [...]            inject ~0.5 faults per second (seeded; 0 or 0.0001 to 1000)
 *   bun run train --print-config [...]         the resolved configuration as YAML, then exit
 *   bun run train --print-schema               the configuration's JSON Schema, then exit
 */
import { existsSync } from "node:fs";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { stringify } from "yaml";
import { ConfigError, configJsonSchema, resolveConfig } from "../../config/index.ts";
import type { Config } from "../../config/schema.ts";
import { loadNative, NativeAddonError } from "../../native/loader.ts";
import { formatDeviceInfo } from "../../native/device_report.ts";
import { createJob, JobError, JobExistsError, openJob, type JobPaths } from "../trainer/job.ts";
import { Progress } from "../trainer/progress.ts";
import { fit, TrainingCancelledError, TrainingFailedError, type FitResult } from "../trainer/trainer.ts";

const USAGE = `usage: bun run train [--config file.yaml] [--resume runs/<job>] [--chaos rate] [--job name]
                      [--print-config] [--print-schema] [--quiet] [key.sub=value ...]`;

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
        "print-config": { type: "boolean" },
        "print-schema": { type: "boolean" },
        quiet: { type: "boolean", short: "q" },
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

/** A job folder that exists: continue it with --resume when it is a job, else pick another name. */
function existsHint(e: JobExistsError): string {
  const resumable = existsSync(join(e.dir, "config.json"));
  return resumable
    ? `${e.dir} already exists; continue it with bun run train --resume ${e.dir} or choose another --job`
    : `${e.dir} already exists and is not a job folder; choose another --job`;
}

function summary(r: FitResult, job: JobPaths): string {
  const before = r.initialValScore === undefined ? "?" : r.initialValScore.toFixed(3);
  return [
    `done: ${job.dir}`,
    `  steps            ${r.startStep} → ${r.steps}`,
    `  val reward       ${before} → ${r.finalValScore.toFixed(3)}`,
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
      console.log(USAGE);
      return 0;
    }
    if (values["print-schema"]) {
      console.log(JSON.stringify(configJsonSchema(), null, 2));
      return 0;
    }
    const chaosRate = parseChaos(values.chaos);
    let config: Config;
    let job: JobPaths;
    if (values.resume) {
      if (values.config || positionals.length) throw new UsageError("--resume takes the job's saved configuration; drop --config and key=value arguments");
      if (values.job !== undefined) throw new UsageError("--resume continues the job in its own folder; drop --job");
      ({ config, paths: job } = openJob(values.resume));
    } else {
      config = resolveConfig({ file: values.config, args: positionals }).config;
      if (values["print-config"]) {
        process.stdout.write(stringify(config));
        return 0;
      }
      job = createJob(config, values.job);
    }
    resumeHint = job.dir;
    const progress = new Progress(process.stdout, !values.quiet);
    const devices = [config.worker.actor.device, config.worker.critic.device, config.worker.ref.device];
    // The null backend needs no addon: a machine without the build can still run (and test) the runtime.
    progress.note(devices.every((d) => d === "null") ? "device: null (no real compute; nothing is learned)" : formatDeviceInfo(loadNative().deviceInfo()));
    progress.note(`job ${job.id} (${config.data.task}, ${config.algorithm.adv_estimator}, ${config.trainer.total_steps} steps) → ${job.dir}`);
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
      config, job, resume: Boolean(values.resume), chaosRate, signal: cancel.signal,
      onStep: (step, m) => {
        if (config.trainer.logger.includes("console") && !values.quiet) progress.step({ step, total: config.trainer.total_steps, metrics: m });
      },
      onNote: (line) => progress.note(line),
    });
    console.log(summary(result, job));
    return 0;
  } catch (e) {
    if (e instanceof TrainingCancelledError) {
      console.error(`${e.message}; continue with: bun run train --resume ${resumeHint ?? "runs/<job>"}`);
      return 130;
    }
    if (e instanceof JobExistsError) {
      console.error(existsHint(e));
      return 2;
    }
    if (e instanceof ConfigError || e instanceof NativeAddonError || e instanceof TrainingFailedError || e instanceof JobError) {
      console.error(e.message);
      return e instanceof TrainingFailedError ? 1 : 2;
    }
    if (e instanceof UsageError) {
      console.error(`${e.message}\n${USAGE}`);
      return 2;
    }
    if (e instanceof RangeError) {
      console.error(`invalid configuration: ${e.message}`);
      return 2;
    }
    throw e;
  }
}

if (import.meta.main) process.exit(await main(process.argv.slice(2)));
