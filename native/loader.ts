/**
 * Loads the native addon in Bun and Deno. `.node` files are loaded through `createRequire`
 * (never `import`), which both runtimes support for Node-API modules.
 *
 * @example
 * ```ts
 * import { loadNative } from "./native/loader.ts";
 * console.log(loadNative().deviceInfo().backends); // ["cpu", "cuda"]
 * ```
 */
import { createRequire } from "node:module";
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { dirname, join } from "node:path";
import type { NativeAddon } from "./types.ts";

export type * from "./types.ts";

/** The command that builds the addon, quoted in every load error. */
export const BUILD_COMMAND = "bun install   (or: bun run build:native)";
const EXPECTED_ABI = 7;

/** Thrown when the addon is missing, fails to load, or does not have the expected surface. */
export class NativeAddonError extends Error {
  override name = "NativeAddonError";
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}

const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..");

/** Where the addon is looked for, best first. REVENANT_ADDON overrides them all. */
export function addonCandidates(env: Record<string, string | undefined> = process.env): string[] {
  if (env.REVENANT_ADDON) return [env.REVENANT_ADDON];
  return [join(ROOT, "build", "Release", "revenant.node"), join(ROOT, "build", "Debug", "revenant.node")];
}

let cached: NativeAddon | undefined;

/** Loads (once) and returns the addon, or throws a NativeAddonError saying how to build it. */
export function loadNative(candidates?: string[]): NativeAddon {
  if (cached && !candidates) return cached;
  const paths = candidates ?? addonCandidates();
  const path = paths.find((p) => existsSync(p));
  if (!path) {
    throw new NativeAddonError(
      `native addon not found (looked in ${paths.join(", ")}). Build it with: ${BUILD_COMMAND}`,
    );
  }
  let mod: unknown;
  try {
    mod = createRequire(import.meta.url)(path);
  } catch (cause) {
    const why = cause instanceof Error ? cause.message : String(cause);
    throw new NativeAddonError(
      `native addon at ${path} failed to load: ${why}. Rebuild it with: ${BUILD_COMMAND}`,
      { cause },
    );
  }
  const addon = mod as Partial<NativeAddon>;
  if (
    typeof addon.deviceInfo !== "function" ||
    typeof addon.PolicyModelNative !== "function" ||
    addon.abiVersion !== EXPECTED_ABI
  ) {
    throw new NativeAddonError(
      `native addon at ${path} is stale (abiVersion ${String(addon.abiVersion)}, expected ${EXPECTED_ABI}). ` +
        `Rebuild it with: ${BUILD_COMMAND}`,
    );
  }
  if (!candidates) cached = addon as NativeAddon;
  return addon as NativeAddon;
}
