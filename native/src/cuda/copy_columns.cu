// copy_columns: a [N, cols] block into columns 0..cols of a wider row-major matrix (CUDA mirror of
// cpu/copy_columns.cc), one thread per entry.
#include "cuda/ops.cuh"

namespace revenant::cuda {

__global__ void copy_columns_kernel(float* dst, int ld, const float* src, int N, int cols) {
  const long i = static_cast<long>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= static_cast<long>(N) * cols) return;
  const long n = i / cols, j = i % cols;
  dst[n * ld + j] = src[i];
}

void copy_columns(float* dst, int ld, const float* src, int N, int cols) {
  RV_LAUNCH(copy_columns_kernel, blocks_for(static_cast<long>(N) * cols, 256), 256)(dst, ld, src, N, cols);
  RV_CUDA_LAUNCHED("copy_columns");
}

}  // namespace revenant::cuda
