// CUDA ops: the same op names and signatures as native/src/cpu/ops.h, float only, device pointers.
// Each launcher checks its launch and throws revenant::Error with the op, file and line.
// Reductions use a fixed thread-to-data mapping, so results are run-to-run deterministic.
#pragma once
#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>
#include <string>

#include "core/error.h"
#include "core/op_list.h"

namespace revenant::cuda {

// Errors that leave the CUDA context unusable: the runtime returns them from every later call of
// this process (its documentation: "the process must be terminated and relaunched"). Codes that
// older headers may lack are compared by number.
inline bool is_sticky(cudaError_t e) {
  switch (static_cast<int>(e)) {
    case cudaErrorECCUncorrectable:     // 214: uncorrectable ECC error in device memory
    case cudaErrorNvlinkUncorrectable:  // 220
    case 226:                           // cudaErrorContained: a contained device error (CUDA 12.4+)
    case cudaErrorIllegalAddress:       // 700: a kernel touched memory it does not own
    case cudaErrorLaunchTimeout:        // 702: a kernel ran past the watchdog
    case cudaErrorAssert:               // 710: device-side assert
    case cudaErrorHardwareStackError:   // 714
    case cudaErrorIllegalInstruction:   // 715
    case cudaErrorMisalignedAddress:    // 716
    case cudaErrorInvalidAddressSpace:  // 717
    case cudaErrorInvalidPc:            // 718
    case cudaErrorLaunchFailure:        // 719: a kernel faulted
    case 721:                           // cudaErrorTensorMemoryLeak (CUDA 12.8+)
    case 810:                           // cudaErrorMpsClientTerminated: the MPS server dropped us
    case 911:                           // cudaErrorExternalDevice (CUDA 12.0+)
      return true;
    default:
      return false;
  }
}

// Throws the error a failed CUDA call stands for: DeviceLostError when the context is gone (the
// addon then ends the process so that it is restarted), revenant::Error otherwise.
[[noreturn]] inline void throw_cuda_error(cudaError_t e, const char* op, const char* file, int line,
                                          const std::string& hint = "") {
  const std::string what = std::string(cudaGetErrorName(e)) + ": " + cudaGetErrorString(e);
  if (is_sticky(e))
    throw ::revenant::DeviceLostError(op, file, line, what + " (sticky: the CUDA context is unusable until the process restarts)");
  cudaGetLastError();  // an ordinary error: clear it so the next call starts clean
  throw ::revenant::Error(op, file, line, hint.empty() ? what : what + " (" + hint + ")");
}

}  // namespace revenant::cuda

#define RV_CUDA_CHECK(call, op)                                                              \
  do {                                                                                       \
    const cudaError_t rv_err_ = (call);                                                      \
    if (rv_err_ != cudaSuccess) ::revenant::cuda::throw_cuda_error(rv_err_, (op), __FILE__, __LINE__); \
  } while (0)

// After a kernel launch: catches bad launch configurations at the op that caused them.
#define RV_CUDA_LAUNCHED(op) RV_CUDA_CHECK(cudaGetLastError(), op)

namespace revenant::cuda {

inline int blocks_for(long n, int threads) { return static_cast<int>((n + threads - 1) / threads); }

// A grid without blocks is an op on zero elements: CUDA refuses such a launch
// (cudaErrorInvalidConfiguration), while the CPU reference does nothing, so nothing is launched.
inline bool empty_grid(dim3 grid) { return grid.x == 0 || grid.y == 0 || grid.z == 0; }

}  // namespace revenant::cuda

// Every kernel launch: RV_LAUNCH(kernel, grid, block[, dynamic shared bytes])(args...). One
// spelling that nvcc and the host compiler of the CUDA emulator (native/src/cuda_sim, where
// REVENANT_CUDA_SIM is defined) both build; the emulator runs the kernel's blocks and threads on
// the host. Used as a statement.
#ifdef REVENANT_CUDA_SIM
#define RV_LAUNCH(kernel, grid, ...) \
  if (::revenant::cuda::empty_grid(grid)) {} else ::cuda_sim::Launch(#kernel, kernel, grid, __VA_ARGS__)
#else
#define RV_LAUNCH(kernel, grid, ...) \
  if (::revenant::cuda::empty_grid(grid)) {} else kernel<<<grid, __VA_ARGS__>>>
#endif

namespace revenant::cuda {

// Device memory of at least `bytes` for the calling host thread on the current device, kept for
// the next call (scratch.cu, from the stream-ordered pool); valid until the next scratch() of this
// thread.
void* scratch(std::size_t bytes, const char* op);
// The release threshold scratch() gives the device's default pool: freed pool memory kept for
// reuse across synchronisations, up to this many bytes.
constexpr uint64_t kPoolKeep = uint64_t{256} << 20;
// The largest copy the backend stages through pinned host memory (host_staging.cu); larger ones go
// direct.
constexpr std::size_t kHostStagingMax = std::size_t{4} << 20;

// Deterministic two-stage column sums (slice_sum.cu): stage 1 (in each op's file) sums slice k of
// kSliceRows rows into partial row k; slice_sum adds rows 0..slices-1 of partial (stride floats
// apart) into out[0..width) in slice order. A fixed slicing, not the grid's, decides the order.
constexpr int kSliceRows = 32, kSliceThreads = 64;
inline int slices_for(long rows) { return static_cast<int>((rows + kSliceRows - 1) / kSliceRows); }
void slice_sum(float* out, const float* partial, int slices, long stride, int width, const char* op);

// The launchers, one per entry of core/op_list.h, float only.
using F = float;
#define REVENANT_CUDA_DECLARE(ret, name, params, args) ret name params;
REVENANT_OPS(REVENANT_CUDA_DECLARE)
#undef REVENANT_CUDA_DECLARE

}  // namespace revenant::cuda
