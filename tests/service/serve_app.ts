/**
 * Bun test helper: the app served on a free loopback port over a quiet job manager, with chaos
 * routes on; stopped (jobs closed, temporary folders removed) after the file's tests.
 */
import { afterAll } from "bun:test";
import { runtime } from "../../runtime/core/adapter/index.ts";
import { createApp } from "../../runtime/service/server/app.ts";
import { quietManager, removeTempDirs } from "./helpers.ts";

export async function serveTestApp(runDir: string) {
  const jobs = quietManager(runDir).start();
  const server = await runtime.serve({ fetch: createApp({ jobs, chaos: true }).fetch, port: 0 });
  afterAll(async () => {
    await jobs.close();
    await server.stop();
    removeTempDirs();
  });
  return { jobs, server, base: `http://127.0.0.1:${server.port}` };
}
