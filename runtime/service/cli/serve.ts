/**
 * `bun run serve` / `deno task serve`: the coordinator service (jobs API, /metrics, dashboard).
 * USAGE below lists every flag with its default and range.
 *
 * Binds 127.0.0.1 unless --host says otherwise; any other address needs REVENANT_TOKEN, and
 * then every route but /healthz needs `Authorization: Bearer $REVENANT_TOKEN`. One coordinator
 * per run dir: a second one exits 2 naming the first (`<run-dir>/coordinator.lock`). On start,
 * jobs that were running when the coordinator last stopped resume from their checkpoints.
 * SIGINT or SIGTERM checkpoints running jobs and exits 0; they resume on the next start. If
 * they have not stopped within --grace-s, their actors are killed and it exits 1 (the jobs
 * resume from their previous checkpoints); a second signal does that at once (exit 128+signal).
 */
import { parseArgs } from "node:util";
import { runtime } from "../../core/adapter/index.ts";
import { DEFAULT_IDLE_TIMEOUT_S, internalErrorResponse } from "../../core/adapter/contract.ts";
import { LockedError } from "../../core/checkpoint/lock.ts";
import { createApp, DEFAULT_MAX_EVENT_STREAMS, DEFAULT_SSE_HEARTBEAT_MS } from "../server/app.ts";
import { JOB_MANAGER_DEFAULTS, JobManager } from "../server/job_manager.ts";
import { DEFAULT_MAX_SERIES } from "../server/prometheus.ts";
import { LOOPBACK_HOSTS } from "../server/schemas.ts";

export const DEFAULT_PORT = 8321;
export const DEFAULT_GRACE_S = 30;
const d = JOB_MANAGER_DEFAULTS;

const USAGE = `usage: bun run serve [options]      (deno task serve [options])

  --port N                  TCP port (default ${DEFAULT_PORT}; 0 picks a free one)
  --host ADDR               address to bind (default 127.0.0.1; any other needs REVENANT_TOKEN)
  --run-dir DIR             folder of the jobs' folders (default runs/); one coordinator per run dir
  --max-concurrent-jobs N   jobs training at once, 1-64 (default ${d.maxConcurrentJobs})
  --max-queued-jobs N       jobs waiting to run, 0-100000; POST /jobs beyond answers 503 (default ${d.maxQueuedJobs})
  --keep-finished-jobs N    finished jobs kept in memory, newest first, 0-1000000 (default ${d.keepFinishedJobs})
  --keep-finished-s S       seconds a finished job stays in memory, 0-315360000 (default ${d.keepFinishedS});
                            older ones leave GET /jobs and /metrics but GET /jobs/:id still reads them from disk
  --max-event-streams N     open event streams (GET /jobs/:id/events), 0-10000; one more answers 503 (default ${DEFAULT_MAX_EVENT_STREAMS})
  --max-metric-series N     labelled series in /metrics, 0-10000000; jobs past it are left out and
                            counted in revenant_metrics_omitted_jobs (default ${DEFAULT_MAX_SERIES})
  --idle-timeout-s S        close a connection silent this long, 1-255 (default ${DEFAULT_IDLE_TIMEOUT_S})
  --grace-s S               on SIGINT/SIGTERM, seconds for running jobs to checkpoint and stop, 0-3600;
                            after it their actors are killed and the coordinator exits 1 (default ${DEFAULT_GRACE_S})
  --data-root DIR           a folder requests may name data files in (data.train_files, data.val_files,
                            data.tokenizer); repeatable; without one a request names no data file
  --model-root DIR          a folder requests may name model folders in (worker.*.model.path,
                            data.tokenizer); repeatable; without one a request names no model folder
  --mlflow-tracking-uri URL the MLflow server of jobs that log to mlflow (a request cannot name one)
  --chaos                   allow POST /jobs/:id/actors/:actor/kill
  --quiet, -q               no log lines or actor output
  --debug                   with an error, print its stack trace too
  --help, -h                this text

exit codes: 0 stopped by SIGINT/SIGTERM after checkpointing; 1 an error (one line says which
file or address and why), or the grace period ran out; 2 a bad flag, a missing token, or a run
dir another coordinator holds; 128+N a second signal N`;

const SIGNAL_NUMBERS: Record<string, number> = { SIGINT: 2, SIGTERM: 15 };

class UsageError extends Error {}

function numberFlag(name: string, text: string | undefined, dflt: number, min: number, max: number, integer = true): number {
  if (text === undefined) return dflt;
  const n = Number(text);
  if (text.trim() === "" || !Number.isFinite(n) || (integer && !Number.isInteger(n)) || n < min || n > max) {
    throw new UsageError(`--${name} ${JSON.stringify(text)}: expected ${integer ? "an integer" : "a number"} from ${min} to ${max}`);
  }
  return n;
}

function urlFlag(name: string, text: string | undefined): string | undefined {
  if (text === undefined) return undefined;
  if (!/^https?:\/\/[^/]/.test(text)) throw new UsageError(`--${name} ${JSON.stringify(text)}: expected an http(s) address`);
  return text;
}

const OPTIONS = {
  port: { type: "string" },
  host: { type: "string" },
  "run-dir": { type: "string" },
  "max-concurrent-jobs": { type: "string" },
  "max-queued-jobs": { type: "string" },
  "keep-finished-jobs": { type: "string" },
  "keep-finished-s": { type: "string" },
  "max-event-streams": { type: "string" },
  "max-metric-series": { type: "string" },
  "idle-timeout-s": { type: "string" },
  "grace-s": { type: "string" },
  "data-root": { type: "string", multiple: true },
  "model-root": { type: "string", multiple: true },
  "mlflow-tracking-uri": { type: "string" },
  chaos: { type: "boolean" },
  quiet: { type: "boolean", short: "q" },
  help: { type: "boolean", short: "h" },
} as const;

type Values = ReturnType<typeof parseArgs<{ options: typeof OPTIONS }>>["values"];

interface ServeSettings {
  port: number;
  hostname: string;
  runDir: string;
  maxConcurrentJobs: number;
  maxQueuedJobs: number;
  keepFinishedJobs: number;
  keepFinishedS: number;
  maxEventStreams: number;
  maxMetricSeries: number;
  idleTimeoutS: number;
  graceS: number;
  dataRoots: string[];
  modelRoots: string[];
  mlflowTrackingUri: string | undefined;
  chaos: boolean;
  quiet: boolean;
}

/** The flags checked: every bad value names the flag, the value and what is allowed. */
function settings(v: Values): ServeSettings {
  return {
    port: numberFlag("port", v.port, DEFAULT_PORT, 0, 65535),
    hostname: v.host ?? "127.0.0.1",
    runDir: v["run-dir"] ?? "runs/",
    maxConcurrentJobs: numberFlag("max-concurrent-jobs", v["max-concurrent-jobs"], d.maxConcurrentJobs, 1, 64),
    maxQueuedJobs: numberFlag("max-queued-jobs", v["max-queued-jobs"], d.maxQueuedJobs, 0, 100_000),
    keepFinishedJobs: numberFlag("keep-finished-jobs", v["keep-finished-jobs"], d.keepFinishedJobs, 0, 1_000_000),
    keepFinishedS: numberFlag("keep-finished-s", v["keep-finished-s"], d.keepFinishedS, 0, 315_360_000),
    maxEventStreams: numberFlag("max-event-streams", v["max-event-streams"], DEFAULT_MAX_EVENT_STREAMS, 0, 10_000),
    maxMetricSeries: numberFlag("max-metric-series", v["max-metric-series"], DEFAULT_MAX_SERIES, 0, 10_000_000),
    idleTimeoutS: numberFlag("idle-timeout-s", v["idle-timeout-s"], DEFAULT_IDLE_TIMEOUT_S, 1, 255),
    graceS: numberFlag("grace-s", v["grace-s"], DEFAULT_GRACE_S, 0, 3600, false),
    dataRoots: v["data-root"] ?? [],
    modelRoots: v["model-root"] ?? [],
    mlflowTrackingUri: urlFlag("mlflow-tracking-uri", v["mlflow-tracking-uri"]),
    chaos: Boolean(v.chaos),
    quiet: Boolean(v.quiet),
  };
}

export async function main(argv: string[]): Promise<number> {
  let s: ServeSettings;
  try {
    const { values } = parseArgs({ args: argv, strict: true, options: OPTIONS });
    if (values.help) {
      console.log(USAGE);
      return 0;
    }
    s = settings(values);
  } catch (e) {
    console.error(`${(e as Error).message}\n${USAGE}`);
    return 2;
  }
  const token = process.env.REVENANT_TOKEN || undefined;
  if (!LOOPBACK_HOSTS.has(s.hostname) && !token) {
    console.error(`refusing to bind ${s.hostname} without a token: set REVENANT_TOKEN (clients then send Authorization: Bearer <token>), or bind 127.0.0.1`);
    return 2;
  }
  const log = (line: string) => void (s.quiet || process.stderr.write(`${new Date().toISOString()} ${line}\n`));
  let jobs: JobManager;
  try {
    jobs = new JobManager({
      runDir: s.runDir, maxConcurrentJobs: s.maxConcurrentJobs, maxQueuedJobs: s.maxQueuedJobs,
      keepFinishedJobs: s.keepFinishedJobs, keepFinishedS: s.keepFinishedS, log, actorOutput: s.quiet ? () => {} : undefined,
      dataRoots: s.dataRoots, modelRoots: s.modelRoots, mlflowTrackingUri: s.mlflowTrackingUri,
    }).start();
  } catch (e) {
    if (!(e instanceof LockedError) && !(e instanceof RangeError)) throw e;
    console.error(`revenant serve: ${e.message}`);
    return 2;
  }
  const app = createApp({
    jobs, token, chaos: s.chaos, maxEventStreams: s.maxEventStreams, maxMetricSeries: s.maxMetricSeries,
    // The keep-alive comment must come well within the idle timeout, or the stream is cut.
    sseHeartbeatMs: Math.min(DEFAULT_SSE_HEARTBEAT_MS, (s.idleTimeoutS * 1000) / 2),
  });
  const onError = (e: unknown) => {
    log(`internal error serving a request: ${(e as Error)?.stack ?? String(e)}`);
    return internalErrorResponse();
  };
  const server = await runtime.serve({ fetch: app.fetch, hostname: s.hostname, port: s.port, idleTimeoutS: s.idleTimeoutS, onError });
  const shown = server.hostname.includes(":") ? `[${server.hostname}]` : server.hostname;
  console.log(`revenant coordinator (${runtime.name}) listening on http://${shown}:${server.port} · run dir ${jobs.store.root}` +
    `${s.chaos ? " · chaos enabled" : ""}${token ? " · token required" : ""}`);
  handleSignals(jobs, server, s.graceS, log);
  return await new Promise<number>(() => {});
}

/**
 * SIGINT/SIGTERM: checkpoint running jobs and exit 0, within `graceS`; past it, or on a second
 * signal, kill the actors and exit non-zero. Either way the jobs' records stay "running", so the
 * next start resumes them (from the checkpoint just written, or the one before).
 */
function handleSignals(jobs: JobManager, server: { stop(): Promise<void> }, graceS: number, log: (line: string) => void): void {
  let stopping = false;
  const now = (code: number, why: string) => {
    log(`${why}: killed the actors of ${jobs.runningCount} running job(s) and exiting; they resume from their last checkpoints on the next start`);
    jobs.killActors();
    process.exit(code);
  };
  const stop = async (signal: string) => {
    log(`${signal}: checkpointing running jobs and stopping (at most ${graceS} s; a second signal stops at once)`);
    const grace = setTimeout(() => now(1, `grace period of ${graceS} s over, still stopping`), graceS * 1000);
    await jobs.close();
    await server.stop();
    clearTimeout(grace);
    process.exit(0);
  };
  const onSignal = (signal: string) => {
    if (stopping) now(128 + (SIGNAL_NUMBERS[signal] ?? 0), `${signal} again`);
    stopping = true;
    void stop(signal);
  };
  process.on("SIGINT", () => onSignal("SIGINT"));
  process.on("SIGTERM", () => onSignal("SIGTERM"));
}

/**
 * `main` with the errors it does not turn into a usage message (a run dir that cannot be made or
 * written, a port in use) said in one line, `revenant serve: <cause>`, exit 1; `--debug` adds the
 * stack trace.
 */
export async function serveCommand(argv: string[]): Promise<number> {
  const debug = argv.includes("--debug");
  try {
    return await main(argv.filter((a) => a !== "--debug"));
  } catch (e) {
    const message = (e instanceof Error ? e.message : String(e)).split("\n")[0];
    const more = debug ? `\n${(e as Error)?.stack ?? ""}` : " (run again with --debug for the stack trace)";
    console.error(`revenant serve: ${message}${more}`);
    return 1;
  }
}

if (import.meta.main) process.exit(await serveCommand(process.argv.slice(2)));
