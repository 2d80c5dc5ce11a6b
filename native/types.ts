/**
 * The TypeScript mirror of the native addon's surface. Every function the addon exports is
 * declared here with exactly the shape it returns; `native/loader.ts` checks the shape on load.
 */

/** CUDA availability as the addon sees it right now. */
export interface CudaInfo {
  /** CUDA sources were compiled into this addon (nvcc was present at build time). */
  compiled: boolean;
  /** A device can be used now. */
  usable: boolean;
  /** Why not, when `usable` is false; null otherwise. */
  reason: string | null;
  deviceCount: number;
  /** Driver version as CUDA encodes it (13000 = 13.0); 0 when no driver is installed. */
  driverVersion: number;
  /** Version of the statically linked CUDA runtime; 0 when CUDA is not compiled in. */
  runtimeVersion: number;
  /** Device 0, when usable. */
  device: { name: string; totalMemory: number; freeMemory: number; computeCapability: string } | null;
}

/** The BLAS the CPU backend multiplies matrices with. */
export interface BlasInfo {
  linked: boolean;
  /** "OpenBLAS", or "none" when the built-in kernels are used. */
  vendor: string;
  /** The library's own build description. */
  config: string;
  threads: number;
}

/** What `deviceInfo()` returns. */
export interface DeviceInfo {
  /** Compiled backends; "cpu" is always first. */
  backends: Array<"cpu" | "cuda">;
  cuda: CudaInfo;
  blas: BlasInfo;
  /** Threads the CPU kernels use (REVENANT_NUM_THREADS, or the hardware's). */
  threads: number;
  hardwareThreads: number;
}

/** The raw addon module. */
export interface NativeAddon {
  deviceInfo(): DeviceInfo;
  abiVersion: number;
}
