/**
 * The current runtime, detected by feature (never by parsing version strings or argv).
 *
 * @example
 * ```ts
 * import { runtime } from "../../adapter/runtime/adapter/index.ts";
 * const child = runtime.spawn({ module: "runtime/core/host/host.ts" });
 * ```
 */
import type { Runtime } from "./contract.ts";

export type * from "./contract.ts";

async function detect(): Promise<Runtime> {
  const g = globalThis as { Bun?: { spawn?: unknown; listen?: unknown }; Deno?: { Command?: unknown; listen?: unknown } };
  if (typeof g.Bun?.spawn === "function" && typeof g.Bun.listen === "function") return (await import("./bun.ts")).bunRuntime;
  if (typeof g.Deno?.Command === "function" && typeof g.Deno.listen === "function") return (await import("./deno.ts")).denoRuntime;
  throw new Error("Revenant runs on Bun or Deno; this runtime has neither Bun.spawn nor Deno.Command");
}

/** The adapter for the runtime this process runs on. */
export const runtime: Runtime = await detect();
