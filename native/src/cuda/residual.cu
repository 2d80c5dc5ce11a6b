// residual: elementwise sum of two streams (CUDA mirror of cpu/residual.cc).
#include "cuda/ops.cuh"

namespace revenant::cuda {

__global__ void residual_forward_kernel(float* out, const float* a, const float* b, int N) {
  const int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < N) out[i] = a[i] + b[i];
}

__global__ void residual_backward_kernel(float* da, float* db, const float* dout, int N) {
  const int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i >= N) return;
  da[i] += dout[i];
  db[i] += dout[i];
}

void residual_forward(float* out, const float* a, const float* b, int N) {
  RV_LAUNCH(residual_forward_kernel, blocks_for(N, 256), 256)(out, a, b, N);
  RV_CUDA_LAUNCHED("residual_forward");
}

void residual_backward(float* da, float* db, const float* dout, int N) {
  RV_LAUNCH(residual_backward_kernel, blocks_for(N, 256), 256)(da, db, dout, N);
  RV_CUDA_LAUNCHED("residual_backward");
}

}  // namespace revenant::cuda
