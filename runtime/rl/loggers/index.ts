/**
 * The job's metric sinks beyond `metrics.jsonl` and the console, chosen by `trainer.logger`:
 * `tensorboard` (event files under `<job>/tensorboard/`) and `mlflow` (a run on the tracking
 * server at `trainer.mlflow_tracking_uri`, experiment `trainer.project_name`, run name
 * `trainer.experiment_name` or the job id). A TensorBoard write error fails the job like any
 * other write; an MLflow server that stays unreachable after its retries is reported once and
 * dropped, so an outage of a tracking server never stops training.
 */
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import type { Config } from "../../../config/schema.ts";
import { writeFileDurably } from "../../../native/files.ts";
import type { JobPaths } from "../trainer/job.ts";
import { MlflowLogger, type RunEndStatus } from "./mlflow.ts";
import { TensorBoardLogger } from "./tensorboard.ts";

/** One held-out generation, shown in TensorBoard's text tab. */
export interface Sample {
  prompt: string;
  response: string;
  /** null: the reward failed on this response. */
  reward: number | null;
}

/** `{ a: { b: 1 } }` → `{ "a.b": "1" }`: a config as MLflow params. */
export function flatten(value: unknown, prefix = "", out: Record<string, string> = {}): Record<string, string> {
  if (value !== null && typeof value === "object" && !Array.isArray(value)) {
    for (const [k, v] of Object.entries(value)) flatten(v, prefix ? `${prefix}.${k}` : k, out);
  } else {
    out[prefix] = Array.isArray(value) ? value.join(",") : String(value);
  }
  return out;
}

/** Samples as a markdown table (cells escaped so a `|` in a response cannot break the table). */
export function samplesMarkdown(samples: readonly Sample[]): string {
  const cell = (s: string) => (s === "" ? "(empty)" : s.replace(/\\/g, "\\\\").replace(/\|/g, "\\|").replace(/\n/g, " "));
  return ["| prompt | response | reward |", "|---|---|---|", ...samples.map((s) => `| ${cell(s.prompt)} | ${cell(s.response)} | ${s.reward === null ? "failed" : s.reward.toFixed(3)} |`)].join("\n");
}

export class JobLoggers {
  private constructor(
    private tb: TensorBoardLogger | undefined,
    private mlflow: MlflowLogger | undefined,
    private readonly note: (line: string) => void,
  ) {}

  /** Opens the configured sinks; a resumed job reattaches to its MLflow run. */
  static async open(config: Config, job: JobPaths, note: (line: string) => void): Promise<JobLoggers> {
    const sinks = config.trainer.logger;
    const tb = sinks.includes("tensorboard") ? new TensorBoardLogger(join(job.dir, "tensorboard")) : undefined;
    let mlflow: MlflowLogger | undefined;
    if (sinks.includes("mlflow")) {
      const idFile = join(job.dir, "mlflow_run_id");
      const runId = existsSync(idFile) ? readFileSync(idFile, "utf8").trim() || undefined : undefined;
      mlflow = await MlflowLogger.open({
        trackingUri: config.trainer.mlflow_tracking_uri,
        experimentName: config.trainer.project_name,
        runName: config.trainer.experiment_name || job.id,
        params: flatten(config),
        tags: { "revenant.job_id": job.id },
        ...(runId ? { runId } : {}),
        ...(process.env.MLFLOW_TRACKING_TOKEN ? { token: process.env.MLFLOW_TRACKING_TOKEN } : {}),
      });
      writeFileDurably(idFile, mlflow.runId + "\n");
    }
    return new JobLoggers(tb, mlflow, note);
  }

  async step(step: number, metrics: Record<string, number>): Promise<void> {
    this.tb?.scalars(step, metrics);
    if (!this.mlflow) return;
    try {
      await this.mlflow.scalars(step, metrics);
    } catch (e) {
      this.note(`mlflow logging stopped at step ${step}: ${(e as Error).message}`);
      this.mlflow = undefined;
    }
  }

  /** A few held-out generations at a validation step (TensorBoard's text tab). */
  samples(step: number, samples: readonly Sample[]): void {
    if (samples.length) this.tb?.text(step, "val/generations", samplesMarkdown(samples));
  }

  async close(status: RunEndStatus): Promise<void> {
    const [tb, mlflow] = [this.tb, this.mlflow];
    this.tb = this.mlflow = undefined;
    tb?.close();
    await mlflow?.close(status).catch((e: Error) => this.note(`mlflow: could not end the run: ${e.message}`));
  }
}
