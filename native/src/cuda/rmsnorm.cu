// rmsnorm: one warp per row with shuffle reductions (CUDA mirror of cpu/rmsnorm.cc).
#include "cuda/ops.cuh"

namespace revenant::cuda {

__device__ static float rms_warp_sum(float v) {
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}

__global__ void rmsnorm_forward_kernel(float* out, float* rstd, const float* inp, const float* w, int N, int C, float eps) {
  const int row = blockIdx.x * (blockDim.x / 32) + threadIdx.x / 32;
  const int lane = threadIdx.x % 32;
  if (row >= N) return;
  const float* x = inp + static_cast<long>(row) * C;
  float ss = 0;
  for (int c = lane; c < C; c += 32) ss += x[c] * x[c];
  const float r = rsqrtf(rms_warp_sum(ss) / C + eps);
  float* o = out + static_cast<long>(row) * C;
  for (int c = lane; c < C; c += 32) o[c] = x[c] * r * w[c];
  if (lane == 0) rstd[row] = r;
}

__global__ void rmsnorm_backward_input_kernel(float* dinp, const float* dout, const float* inp, const float* w,
                                              const float* rstd, int N, int C) {
  const int row = blockIdx.x * (blockDim.x / 32) + threadIdx.x / 32;
  const int lane = threadIdx.x % 32;
  if (row >= N) return;
  const float* x = inp + static_cast<long>(row) * C;
  const float* d = dout + static_cast<long>(row) * C;
  const float r = rstd[row];
  float s = 0;
  for (int c = lane; c < C; c += 32) s += d[c] * w[c] * (x[c] * r);
  const float dnorm_norm_mean = rms_warp_sum(s) / C;
  float* di = dinp + static_cast<long>(row) * C;
  for (int c = lane; c < C; c += 32) di[c] += (d[c] * w[c] - x[c] * r * dnorm_norm_mean) * r;
}

// Stage 1 of the weight gradient: block (s, j) sums rows of slice s, in order, for channels
// j*64.. into partial row s; stage 2 is slice_sum (slice_sum.cu). No atomics: bit-identical runs.
__global__ void rmsnorm_backward_weight_kernel(float* partial, const float* dout, const float* inp, const float* rstd,
                                               int N, int C) {
  const int c = blockIdx.y * blockDim.x + threadIdx.x;
  if (c >= C) return;
  const int n0 = blockIdx.x * kSliceRows, n1 = min(N, n0 + kSliceRows);
  float gw = 0;
  for (int n = n0; n < n1; ++n) gw += dout[static_cast<long>(n) * C + c] * inp[static_cast<long>(n) * C + c] * rstd[n];
  partial[static_cast<long>(blockIdx.x) * C + c] = gw;
}

void rmsnorm_forward(float* out, float* rstd, const float* inp, const float* w, int N, int C, float eps) {
  RV_LAUNCH(rmsnorm_forward_kernel, blocks_for(N, 8), 256)(out, rstd, inp, w, N, C, eps);
  RV_CUDA_LAUNCHED("rmsnorm_forward");
}

void rmsnorm_backward(float* dinp, float* dw, const float* dout, const float* inp, const float* w, const float* rstd,
                      int N, int C) {
  RV_LAUNCH(rmsnorm_backward_input_kernel, blocks_for(N, 8), 256)(dinp, dout, inp, w, rstd, N, C);
  RV_CUDA_LAUNCHED("rmsnorm_backward");
  const int slices = slices_for(N);
  if (!dw || slices == 0) return;
  float* partial = static_cast<float*>(scratch(sizeof(float) * slices * C, "rmsnorm_backward"));
  RV_LAUNCH(rmsnorm_backward_weight_kernel, dim3(slices, blocks_for(C, kSliceThreads)), kSliceThreads)(
      partial, dout, inp, rstd, N, C);
  RV_CUDA_LAUNCHED("rmsnorm_backward");
  slice_sum(dw, partial, slices, C, C, "rmsnorm_backward");
}

}  // namespace revenant::cuda
