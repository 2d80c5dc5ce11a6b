// Kernels that exist to be caught: the emulator's checkers must fail on each (a removed barrier, an
// off-by-one read, a missing __syncwarp, a read past the dynamic shared size, a collective that
// lanes leave), and its warp collectives must give CUDA's results. Compiled only in the emulated
// build (REVENANT_CUDA_SIM), like the kernels of native/src/cuda; driven by cuda_sim_tests.cc.
#include <cuda_bf16.h>

#include "cuda/ops.cuh"

namespace rvtest::sim {

constexpr int kTree = 64;

// A block sum over 64 values through a shared tree; without_barrier drops the barrier between the
// tree's levels, so a level reads what another thread of the level before may not have written.
__global__ void tree_sum_kernel(const float* x, float* out, bool with_barrier) {
  __shared__ float part[kTree];
  part[threadIdx.x] = x[threadIdx.x];
  __syncthreads();
  for (int half = kTree / 2; half > 0; half >>= 1) {
    if (threadIdx.x < half) part[threadIdx.x] += part[threadIdx.x + half];
    if (with_barrier) __syncthreads();
  }
  if (threadIdx.x == 0) *out = part[0];
}

// Copies n values with one thread too many reading: i <= n instead of i < n.
__global__ void off_by_one_kernel(const float* x, float* out, int n) {
  const int i = blockIdx.x * blockDim.x + threadIdx.x;
  float v = 0;
  if (i <= n) v = x[i];
  if (i < n) out[i] = v;
}

// Lane 0 writes a shared value that lane 1 then reads; ordered only with __syncwarp.
__global__ void warp_handoff_kernel(float* out, bool with_syncwarp) {
  __shared__ float box[32];
  if (threadIdx.x == 0) box[0] = 42.0f;
  if (with_syncwarp) __syncwarp();
  if (threadIdx.x == 1) out[0] = box[0];
}

// Lanes 16 to 31 leave before a shuffle whose mask names them.
__global__ void early_exit_shuffle_kernel(float* out) {
  if (threadIdx.x >= 16) return;
  out[threadIdx.x] = __shfl_xor_sync(0xffffffffu, static_cast<float>(threadIdx.x), 1);
}

// Every collective once, each lane writing its results: out[op * 32 + lane].
__global__ void collectives_kernel(int* out) {
  const int lane = threadIdx.x % 32, v = 100 + lane;
  out[0 * 32 + lane] = __shfl_sync(0xffffffffu, v, 5);
  out[1 * 32 + lane] = __shfl_sync(0xffffffffu, v, lane + 3, 8);
  out[2 * 32 + lane] = __shfl_xor_sync(0xffffffffu, v, 6);
  out[3 * 32 + lane] = __shfl_down_sync(0xffffffffu, v, 3);
  out[4 * 32 + lane] = __shfl_up_sync(0xffffffffu, v, 2, 16);
  out[5 * 32 + lane] = static_cast<int>(__ballot_sync(0xffffffffu, lane % 3 == 0));
  out[6 * 32 + lane] = __any_sync(0xffffffffu, lane == 7) + 2 * __all_sync(0xffffffffu, lane < 31);
  // A half-warp collective: lanes 0-15 and 16-31 reduce separately.
  const unsigned half = lane < 16 ? 0x0000ffffu : 0xffff0000u;
  int s = lane;
  for (int o = 8; o > 0; o >>= 1) s += __shfl_xor_sync(half, s, o, 16);
  out[7 * 32 + lane] = s;
  out[8 * 32 + lane] = __syncthreads_count(lane % 4 == 0);
}

// Every block stores its index to the same outputs (a grid-size bug: the output is not split by block).
__global__ void shared_output_kernel(float* out) { out[threadIdx.x] = static_cast<float>(blockIdx.x); }

// An atomic counter shared by the whole grid.
__global__ void atomic_count_kernel(int* counter) { atomicAdd(counter, 1); }

// The same, declaring that it never runs blocks of more than 64 threads.
__global__ void __launch_bounds__(64) bounded_count_kernel(int* counter) { atomicAdd(counter, 1); }

}  // namespace rvtest::sim

// In the namespace and under the name flash_attention.cu uses, so that it shares that storage
// (cuda_sim/dynamic_shared.cc).
namespace revenant::cuda {
namespace {
// Fills n floats of dynamic shared memory, then reads index `read`.
__global__ void dynamic_read_kernel(float* out, int n, int read) {
  extern __shared__ float smem[];
  for (int i = threadIdx.x; i < n; i += blockDim.x) smem[i] = static_cast<float>(i);
  __syncthreads();
  if (threadIdx.x == 0) out[0] = smem[read];
}
}  // namespace
}  // namespace revenant::cuda

namespace rvtest::sim {
using revenant::cuda::dynamic_read_kernel;

void tree_sum(const float* x, float* out, bool with_barrier) {
  RV_LAUNCH(tree_sum_kernel, 1, kTree)(x, out, with_barrier);
}
void off_by_one(const float* x, float* out, int n) { RV_LAUNCH(off_by_one_kernel, (n + 32) / 32, 32)(x, out, n); }
void warp_handoff(float* out, bool with_syncwarp) { RV_LAUNCH(warp_handoff_kernel, 1, 32)(out, with_syncwarp); }
void dynamic_read(float* out, int n, int read) {
  RV_LAUNCH(dynamic_read_kernel, 1, 64, n * sizeof(float))(out, n, read);
}
void early_exit_shuffle(float* out) { RV_LAUNCH(early_exit_shuffle_kernel, 1, 32)(out); }
void collectives(int* out) { RV_LAUNCH(collectives_kernel, 1, 32)(out); }
void shared_output(float* out, int blocks) { RV_LAUNCH(shared_output_kernel, blocks, 32)(out); }
void atomic_count(int* counter, int blocks, int threads) {
  RV_LAUNCH(atomic_count_kernel, blocks, threads)(counter);
}
// Launches with a given configuration (for the limit checks), returning cudaGetLastError.
int launch_config(dim3 grid, dim3 block, std::size_t shared, int opt_in) {
  if (opt_in > 0) {
    const cudaError_t e = cudaFuncSetAttribute(atomic_count_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, opt_in);
    if (e != cudaSuccess) {
      cudaGetLastError();  // leave no error behind for the next check
      return e;
    }
  }
  int* counter = nullptr;
  cudaMalloc(&counter, sizeof(int));
  ::cuda_sim::Launch("atomic_count_kernel", atomic_count_kernel, grid, block, shared)(counter);
  const cudaError_t e = cudaGetLastError();
  cudaFree(counter);
  return e;
}
// Launches bounded_count_kernel with `threads` threads, returning cudaGetLastError.
int launch_bounded(int threads) {
  int* counter = nullptr;
  cudaMalloc(&counter, sizeof(int));
  RV_LAUNCH(bounded_count_kernel, 1, threads)(counter);
  const cudaError_t e = cudaGetLastError();
  cudaFree(counter);
  return e;
}
unsigned short bf16_bits(float f) { return __float2bfloat16_rn(f).__x; }
float bf16_value(unsigned short bits) { return __bfloat162float(__ushort_as_bfloat16(bits)); }

}  // namespace rvtest::sim
