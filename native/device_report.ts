/** Human-readable device report, as printed by `bun run train`. */
import type { DeviceInfo } from "./types.ts";

const GiB = 1024 ** 3;

/** One line per fact: backends, CUDA (device or why not), BLAS, threads. */
export function formatDeviceInfo(info: DeviceInfo): string {
  const cuda = !info.cuda.compiled
    ? `not compiled (${info.cuda.reason ?? "nvcc not found at build time"})`
    : info.cuda.device
      ? `compiled, device ${info.cuda.device.name} (compute ${info.cuda.device.computeCapability}, ` +
        `${(info.cuda.device.totalMemory / GiB).toFixed(1)} GiB, ${(info.cuda.device.freeMemory / GiB).toFixed(1)} GiB free)`
      : `compiled, ${info.cuda.reason?.startsWith("no device") ? info.cuda.reason : `no device (${info.cuda.reason})`}`;
  const blas = info.blas.linked ? `${info.blas.vendor} (${info.blas.config}; ${info.blas.threads} threads)` : `none (${info.blas.config})`;
  return [
    `backends: ${info.backends.join(", ")}`,
    `cuda:     ${cuda}`,
    `blas:     ${blas}`,
    `threads:  ${info.threads} of ${info.hardwareThreads}`,
  ].join("\n");
}
