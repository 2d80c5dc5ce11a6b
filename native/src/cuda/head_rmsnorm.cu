// head_rmsnorm: RMSNorm per attention head inside packed rows (CUDA mirror of
// cpu/head_rmsnorm.cc). One warp per (row, head) with shuffle reductions; each lane reads and
// writes only its own channels, and every read of the reduction comes before the shuffle that ends
// it, so both directions are safe in place.
#include "cuda/ops.cuh"

namespace revenant::cuda {

__device__ static float head_warp_sum(float v) {
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}

__global__ void head_rmsnorm_forward_kernel(float* out, float* rstd, const float* inp, const float* w, int N, int heads,
                                            int hd, int stride, float eps) {
  const long unit = blockIdx.x * static_cast<long>(blockDim.x / 32) + threadIdx.x / 32;  // (row, head)
  const int lane = threadIdx.x % 32;
  if (unit >= static_cast<long>(N) * heads) return;
  const long at = (unit / heads) * stride + (unit % heads) * static_cast<long>(hd);
  const float* x = inp + at;
  float ss = 0;
  for (int c = lane; c < hd; c += 32) ss += x[c] * x[c];
  const float r = rsqrtf(head_warp_sum(ss) / hd + eps);
  float* o = out + at;
  for (int c = lane; c < hd; c += 32) o[c] = x[c] * r * w[c];
  if (lane == 0) rstd[unit] = r;
}

__global__ void head_rmsnorm_backward_input_kernel(float* dx, const float* inp, const float* w, const float* rstd, int N,
                                                   int heads, int hd, int stride) {
  const long unit = blockIdx.x * static_cast<long>(blockDim.x / 32) + threadIdx.x / 32;
  const int lane = threadIdx.x % 32;
  if (unit >= static_cast<long>(N) * heads) return;
  const long at = (unit / heads) * stride + (unit % heads) * static_cast<long>(hd);
  const float* x = inp + at;
  float* d = dx + at;
  const float r = rstd[unit];
  float s = 0;
  for (int c = lane; c < hd; c += 32) s += d[c] * w[c] * (x[c] * r);
  const float mean = head_warp_sum(s) / hd;
  for (int c = lane; c < hd; c += 32) d[c] = (d[c] * w[c] - x[c] * r * mean) * r;
}

// Stage 1 of the weight gradient, over the N * heads (row, head) units: block (s, j) sums units of
// slice s, in order, for channels j*64.. into partial row s; stage 2 is slice_sum (slice_sum.cu).
// It runs before the input kernel overwrites dx.
__global__ void head_rmsnorm_backward_weight_kernel(float* partial, const float* dx, const float* inp, const float* rstd,
                                                    int N, int heads, int hd, int stride) {
  const int c = blockIdx.y * blockDim.x + threadIdx.x;
  if (c >= hd) return;
  const long u0 = static_cast<long>(blockIdx.x) * kSliceRows, u1 = min(static_cast<long>(N) * heads, u0 + kSliceRows);
  float gw = 0;
  for (long u = u0; u < u1; ++u) {
    const long at = (u / heads) * stride + (u % heads) * static_cast<long>(hd) + c;
    gw += dx[at] * inp[at] * rstd[u];
  }
  partial[static_cast<long>(blockIdx.x) * hd + c] = gw;
}

void head_rmsnorm_forward(float* out, float* rstd, const float* inp, const float* w, int N, int heads, int hd, int stride,
                          float eps) {
  const long units = static_cast<long>(N) * heads;
  if (units == 0) return;
  RV_LAUNCH(head_rmsnorm_forward_kernel, blocks_for(units, 8), 256)(out, rstd, inp, w, N, heads, hd, stride, eps);
  RV_CUDA_LAUNCHED("head_rmsnorm_forward");
}

void head_rmsnorm_backward(float* dx, float* dw, const float* inp, const float* w, const float* rstd, int N, int heads,
                           int hd, int stride) {
  const long units = static_cast<long>(N) * heads;
  if (units == 0) return;
  if (dw) {
    const int slices = slices_for(units);
    float* partial = static_cast<float*>(scratch(sizeof(float) * slices * hd, "head_rmsnorm_backward"));
    RV_LAUNCH(head_rmsnorm_backward_weight_kernel, dim3(slices, blocks_for(hd, kSliceThreads)), kSliceThreads)(
        partial, dx, inp, rstd, N, heads, hd, stride);
    RV_CUDA_LAUNCHED("head_rmsnorm_backward");
    slice_sum(dw, partial, slices, hd, hd, "head_rmsnorm_backward");
  }
  RV_LAUNCH(head_rmsnorm_backward_input_kernel, blocks_for(units, 8), 256)(dx, inp, w, rstd, N, heads, hd, stride);
  RV_CUDA_LAUNCHED("head_rmsnorm_backward");
}

}  // namespace revenant::cuda
