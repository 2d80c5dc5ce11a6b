/**
 * Device names a model (and a role's `device` key) accepts, checked in one place so the
 * configuration, `PolicyModel` and the native constructor refuse the same strings with the same
 * words. Plain strings only: no compute is loaded here.
 *
 * @example
 * ```ts
 * parseDevice("cuda:1"); // { kind: "cuda", index: 1 }
 * deviceProblem("gpu");  // 'expected "auto", "cpu", "cuda", "cuda:N" (N a device index: 0, 1, ...) or "null", got "gpu"'
 * ```
 */

/**
 * "auto": CUDA device 0 when usable, else the CPU (the model reports why in `fallback`); "cpu";
 * "cuda" (device 0) or "cuda:N" (device N), which fail when that device cannot be used; "null": no
 * real compute (native/null_backend.ts), for tests on machines without the addon.
 */
export type Device = "auto" | "cpu" | "cuda" | `cuda:${number}` | "null";

/** The accepted device strings, in words. */
export const DEVICE_ALLOWED = '"auto", "cpu", "cuda", "cuda:N" (N a device index: 0, 1, ...) or "null"';

/** Device indexes past this are typos, not machines (the native side stops at 2^31 too). */
const MAX_INDEX = 999_999_999;

/** A device string taken apart; undefined when it is not one of DEVICE_ALLOWED. */
export function parseDevice(text: unknown): { kind: "auto" | "cpu" | "null" } | { kind: "cuda"; index: number } | undefined {
  if (text === "auto" || text === "cpu" || text === "null") return { kind: text };
  if (text === "cuda") return { kind: "cuda", index: 0 };
  // One spelling per device: no sign, no spaces, no leading zeros ("cuda:01").
  const m = typeof text === "string" ? /^cuda:(0|[1-9][0-9]*)$/.exec(text) : null;
  if (!m) return undefined;
  const index = Number(m[1]);
  return index <= MAX_INDEX ? { kind: "cuda", index } : undefined;
}

/** What is wrong with `text` as a device, or undefined when it is a valid one. */
export function deviceProblem(text: unknown): string | undefined {
  return parseDevice(text) ? undefined : `expected ${DEVICE_ALLOWED}, got ${JSON.stringify(text)}`;
}

/** True for every accepted device string (narrows to Device). */
export function isDevice(text: unknown): text is Device {
  return parseDevice(text) !== undefined;
}
