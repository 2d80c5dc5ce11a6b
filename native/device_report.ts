/** Human-readable device report, as printed by `bun run train`. */
import type { CudaInfo, DeviceInfo } from "./types.ts";

const GiB = 1024 ** 3;

/** "13.0" for 13000: a CUDA version as cudaDriverGetVersion and CUDART_VERSION encode it. */
export function cudaVersionText(encoded: number): string {
  return `${Math.floor(encoded / 1000)}.${Math.floor((encoded % 1000) / 10)}`;
}

/** The driver installed and the one the statically linked runtime needs. */
function driverFacts(cuda: CudaInfo): string {
  const installed = cuda.driverVersion > 0 ? cudaVersionText(cuda.driverVersion) : "none";
  // Addons built before driverRequired was reported leave it undefined.
  const needed = cuda.driverRequired ? `, needs ≥ ${cudaVersionText(cuda.driverRequired)}` : "";
  return `driver ${installed}${needed}`;
}

function cudaLine(cuda: CudaInfo): string {
  if (!cuda.compiled) return `not compiled (${cuda.reason ?? "nvcc not found at build time"})`;
  if (cuda.device) {
    const d = cuda.device;
    return `compiled, device ${d.name} (compute ${d.computeCapability}, ${(d.totalMemory / GiB).toFixed(1)} GiB, ` +
      `${(d.freeMemory / GiB).toFixed(1)} GiB free; ${cuda.deviceCount} device${cuda.deviceCount === 1 ? "" : "s"}; ${driverFacts(cuda)})`;
  }
  const why = cuda.reason?.startsWith("no device") ? cuda.reason : `not usable (${cuda.reason})`;
  return `compiled, ${why} (${driverFacts(cuda)})`;
}

/** One line per fact: backends, CUDA (device or why not, and the driver it needs), BLAS, threads. */
export function formatDeviceInfo(info: DeviceInfo): string {
  const blas = info.blas.linked ? `${info.blas.vendor} (${info.blas.config}; ${info.blas.threads} threads)` : `none (${info.blas.config})`;
  return [
    `backends: ${info.backends.join(", ")}`,
    `cuda:     ${cudaLine(info.cuda)}`,
    `blas:     ${blas}`,
    `threads:  ${info.threads} of ${info.hardwareThreads}`,
  ].join("\n");
}
