// swiglu: out = silu(gate) * up over rows [gate (I) | up (I)], elementwise (CUDA mirror of
// cpu/swiglu.cc).
#include "cuda/ops.cuh"

namespace revenant::cuda {

__device__ static float sigmoidf(float x) { return 1.0f / (1.0f + expf(-x)); }

__global__ void swiglu_forward_kernel(float* out, const float* inp, int N, int I) {
  const long idx = blockIdx.x * static_cast<long>(blockDim.x) + threadIdx.x;
  if (idx >= static_cast<long>(N) * I) return;
  const long n = idx / I;
  const int i = idx % I;
  const float g = inp[n * 2 * I + i], u = inp[n * 2 * I + I + i];
  out[idx] = g * sigmoidf(g) * u;
}

__global__ void swiglu_backward_kernel(float* dinp, const float* inp, const float* dout, int N, int I) {
  const long idx = blockIdx.x * static_cast<long>(blockDim.x) + threadIdx.x;
  if (idx >= static_cast<long>(N) * I) return;
  const long n = idx / I;
  const int i = idx % I;
  const float g = inp[n * 2 * I + i], u = inp[n * 2 * I + I + i], s = sigmoidf(g), d = dout[idx];
  dinp[n * 2 * I + i] += d * u * s * (1.0f + g * (1.0f - s));
  dinp[n * 2 * I + I + i] += d * g * s;
}

void swiglu_forward(float* out, const float* inp, int N, int I) {
  RV_LAUNCH(swiglu_forward_kernel, blocks_for(static_cast<long>(N) * I, 256), 256)(out, inp, N, I);
  RV_CUDA_LAUNCHED("swiglu_forward");
}

void swiglu_backward(float* dinp, const float* inp, const float* dout, int N, int I) {
  RV_LAUNCH(swiglu_backward_kernel, blocks_for(static_cast<long>(N) * I, 256), 256)(dinp, inp, dout, N, I);
  RV_CUDA_LAUNCHED("swiglu_backward");
}

}  // namespace revenant::cuda
