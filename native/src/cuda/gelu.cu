// gelu: tanh approximation, elementwise (CUDA mirror of cpu/gelu.cc).
#include "cuda/ops.cuh"

namespace revenant::cuda {

constexpr float kGeluScale = 0.7978845608028654f;  // sqrt(2 / pi)

__global__ void gelu_forward_kernel(float* out, const float* inp, int N) {
  const int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i >= N) return;
  const float x = inp[i];
  out[i] = 0.5f * x * (1.0f + tanhf(kGeluScale * (x + 0.044715f * x * x * x)));
}

__global__ void gelu_backward_kernel(float* dinp, const float* inp, const float* dout, int N) {
  const int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i >= N) return;
  const float x = inp[i];
  const float th = tanhf(kGeluScale * (x + 0.044715f * x * x * x));
  const float local = 0.5f * (1.0f + th) + 0.5f * x * (1.0f - th * th) * kGeluScale * (1.0f + 3.0f * 0.044715f * x * x);
  dinp[i] += local * dout[i];
}

void gelu_forward(float* out, const float* inp, int N) {
  RV_LAUNCH(gelu_forward_kernel, blocks_for(N, 256), 256)(out, inp, N);
  RV_CUDA_LAUNCHED("gelu_forward");
}

void gelu_backward(float* dinp, const float* inp, const float* dout, int N) {
  RV_LAUNCH(gelu_backward_kernel, blocks_for(N, 256), 256)(dinp, inp, dout, N);
  RV_CUDA_LAUNCHED("gelu_backward");
}

}  // namespace revenant::cuda
