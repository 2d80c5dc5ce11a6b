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

#define RV_CUDA_CHECK(call, op)                                                                   \
  do {                                                                                            \
    const cudaError_t rv_err_ = (call);                                                           \
    if (rv_err_ != cudaSuccess)                                                                   \
      throw ::revenant::Error((op), __FILE__, __LINE__,                                           \
                              std::string(cudaGetErrorName(rv_err_)) + ": " + cudaGetErrorString(rv_err_)); \
  } while (0)

// After a kernel launch: catches bad launch configurations at the op that caused them.
#define RV_CUDA_LAUNCHED(op) RV_CUDA_CHECK(cudaGetLastError(), op)

namespace revenant::cuda {

inline int blocks_for(long n, int threads) { return static_cast<int>((n + threads - 1) / threads); }

// The launchers, one per entry of core/op_list.h, float only.
using F = float;
#define REVENANT_CUDA_DECLARE(ret, name, params, args) ret name params;
REVENANT_OPS(REVENANT_CUDA_DECLARE)
#undef REVENANT_CUDA_DECLARE

}  // namespace revenant::cuda
