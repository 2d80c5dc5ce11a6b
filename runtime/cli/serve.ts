/**
 * `bun run serve` / `deno task serve`: the coordinator service (jobs API, /metrics, dashboard).
 *
 *   bun run serve [--port 8321] [--host 127.0.0.1] [--run-dir runs/] [--max-concurrent-jobs 1] [--chaos] [--quiet]
 *
 * Binds 127.0.0.1 unless --host says otherwise; any other address needs REVENANT_TOKEN, and
 * then every route but /healthz needs `Authorization: Bearer $REVENANT_TOKEN`. On start, jobs
 * that were running when the coordinator last stopped resume from their checkpoints. SIGINT or
 * SIGTERM checkpoints running jobs and exits; they resume on the next start.
 */
import { parseArgs } from "node:util";
import { runtime } from "../adapter/index.ts";
import { createApp } from "../server/app.ts";
import { JobManager } from "../server/job_manager.ts";

const USAGE = "usage: bun run serve [--port 8321] [--host 127.0.0.1] [--run-dir runs/] [--max-concurrent-jobs 1] [--chaos] [--quiet]";
export const DEFAULT_PORT = 8321;
const LOOPBACK = new Set(["127.0.0.1", "localhost", "::1", "[::1]"]);

class UsageError extends Error {}

function intFlag(name: string, text: string | undefined, dflt: number, min: number, max: number): number {
  if (text === undefined) return dflt;
  const n = Number(text);
  if (!Number.isInteger(n) || n < min || n > max || text.trim() === "") throw new UsageError(`--${name} ${JSON.stringify(text)}: expected an integer from ${min} to ${max}`);
  return n;
}

export async function main(argv: string[]): Promise<number> {
  let values;
  try {
    ({ values } = parseArgs({
      args: argv,
      strict: true,
      options: {
        port: { type: "string" },
        host: { type: "string" },
        "run-dir": { type: "string" },
        "max-concurrent-jobs": { type: "string" },
        chaos: { type: "boolean" },
        quiet: { type: "boolean", short: "q" },
        help: { type: "boolean", short: "h" },
      },
    }));
  } catch (e) {
    console.error(`${(e as Error).message}\n${USAGE}`);
    return 2;
  }
  if (values.help) {
    console.log(USAGE);
    return 0;
  }
  let port: number;
  let maxConcurrentJobs: number;
  try {
    port = intFlag("port", values.port, DEFAULT_PORT, 0, 65535);
    maxConcurrentJobs = intFlag("max-concurrent-jobs", values["max-concurrent-jobs"], 1, 1, 64);
  } catch (e) {
    console.error(`${(e as Error).message}\n${USAGE}`);
    return 2;
  }
  const hostname = values.host ?? "127.0.0.1";
  const token = process.env.REVENANT_TOKEN || undefined;
  if (!LOOPBACK.has(hostname) && !token) {
    console.error(`refusing to bind ${hostname} without a token: set REVENANT_TOKEN (clients then send Authorization: Bearer <token>), or bind 127.0.0.1`);
    return 2;
  }
  const quiet = Boolean(values.quiet);
  const log = (line: string) => void (quiet || process.stderr.write(`${new Date().toISOString()} ${line}\n`));
  const jobs = new JobManager({
    runDir: values["run-dir"] ?? "runs/", maxConcurrentJobs, log,
    actorOutput: quiet ? () => {} : undefined,
  });
  jobs.start();
  const app = createApp({ jobs, token, chaos: Boolean(values.chaos) });
  const server = await runtime.serve({ fetch: app.fetch, hostname, port });
  const shown = server.hostname.includes(":") ? `[${server.hostname}]` : server.hostname;
  console.log(`revenant coordinator (${runtime.name}) listening on http://${shown}:${server.port} · run dir ${jobs.store.root}` +
    `${values.chaos ? " · chaos enabled" : ""}${token ? " · token required" : ""}`);

  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    log(`${signal}: checkpointing running jobs and stopping`);
    await jobs.close();
    await server.stop();
    process.exit(0);
  };
  process.on("SIGINT", () => void stop("SIGINT"));
  process.on("SIGTERM", () => void stop("SIGTERM"));
  return await new Promise<number>(() => {});
}

if (import.meta.main) process.exit(await main(process.argv.slice(2)));
