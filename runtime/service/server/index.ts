/**
 * The coordinator app exported edge-style (`export default { fetch }`), configured from the
 * environment, for hosts that serve a module's default export:
 *
 *   bun runtime/server/index.ts                      (Bun serves it on 127.0.0.1:$REVENANT_PORT or 3000)
 *   deno serve -A --host 127.0.0.1 runtime/server/index.ts
 *
 * Environment: REVENANT_RUN_DIR (default runs/), REVENANT_MAX_CONCURRENT_JOBS (default 1),
 * REVENANT_CHAOS=1 (allow the kill route), REVENANT_TOKEN (bearer token); the other limits keep
 * their defaults. `bun run serve` / `deno task serve` (runtime/service/cli/serve.ts) serve the same app
 * with flags, and more: the idle timeout and descriptor-exhaustion handling of the runtime
 * adapter (`deno serve` uses Deno.serve directly, which has neither), and a bounded shutdown on
 * SIGINT/SIGTERM. Either way the first request locks the run dir (`coordinator.lock`).
 */
import { createApp, type AppType } from "./app.ts";
import { JobManager } from "./job_manager.ts";

let app: AppType | undefined;

function build(): AppType {
  const env = process.env;
  const jobs = new JobManager({
    runDir: env.REVENANT_RUN_DIR ?? "runs/",
    maxConcurrentJobs: Number(env.REVENANT_MAX_CONCURRENT_JOBS ?? 1),
  }).start();
  return createApp({ jobs, token: env.REVENANT_TOKEN || undefined, chaos: env.REVENANT_CHAOS === "1" });
}

export default {
  /** Bun's default-export server reads these two; Deno's `deno serve` takes --host and --port. */
  hostname: "127.0.0.1",
  port: Number(process.env.REVENANT_PORT ?? 3000),
  fetch(request: Request): Response | Promise<Response> {
    app ??= build();
    return app.fetch(request);
  },
};
