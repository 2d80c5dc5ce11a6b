// layernorm: one warp per row with shuffle reductions (CUDA mirror of cpu/layernorm.cc).
#include "cuda/ops.cuh"

namespace revenant::cuda {

__device__ float warp_sum(float v) {
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}

__global__ void layernorm_forward_kernel(float* out, float* mean, float* rstd, const float* inp, const float* w,
                                         const float* b, int N, int C) {
  const int row = blockIdx.x * (blockDim.x / 32) + threadIdx.x / 32;
  const int lane = threadIdx.x % 32;
  if (row >= N) return;
  const float* x = inp + static_cast<long>(row) * C;
  float s = 0;
  for (int c = lane; c < C; c += 32) s += x[c];
  const float m = warp_sum(s) / C;
  float v = 0;
  for (int c = lane; c < C; c += 32) v += (x[c] - m) * (x[c] - m);
  const float r = rsqrtf(warp_sum(v) / C + 1e-5f);
  float* o = out + static_cast<long>(row) * C;
  for (int c = lane; c < C; c += 32) o[c] = (x[c] - m) * r * w[c] + b[c];
  if (lane == 0) {
    mean[row] = m;
    rstd[row] = r;
  }
}

__global__ void layernorm_backward_input_kernel(float* dinp, const float* dout, const float* inp, const float* w,
                                                const float* mean, const float* rstd, int N, int C) {
  const int row = blockIdx.x * (blockDim.x / 32) + threadIdx.x / 32;
  const int lane = threadIdx.x % 32;
  if (row >= N) return;
  const float* x = inp + static_cast<long>(row) * C;
  const float* d = dout + static_cast<long>(row) * C;
  const float m = mean[row], r = rstd[row];
  float a = 0, bsum = 0;
  for (int c = lane; c < C; c += 32) {
    const float norm = (x[c] - m) * r;
    a += d[c] * w[c];
    bsum += d[c] * w[c] * norm;
  }
  const float dnorm_mean = warp_sum(a) / C, dnorm_norm_mean = warp_sum(bsum) / C;
  float* di = dinp + static_cast<long>(row) * C;
  for (int c = lane; c < C; c += 32) {
    const float norm = (x[c] - m) * r;
    di[c] += (d[c] * w[c] - dnorm_mean - norm * dnorm_norm_mean) * r;
  }
}

// Stage 1 of the weight and bias gradients: block (s, j) sums rows of slice s, in order, for
// channels j*64.. and writes partial row s: dw's part at [s][0, C), db's at [s][C, 2C). Stage 2 is
// slice_sum (slice_sum.cu); neither uses atomics, so the sums are bit-identical run to run.
__global__ void layernorm_backward_weight_kernel(float* partial, const float* dout, const float* inp,
                                                 const float* mean, const float* rstd, int N, int C) {
  const int c = blockIdx.y * blockDim.x + threadIdx.x;
  if (c >= C) return;
  const int n0 = blockIdx.x * kSliceRows, n1 = min(N, n0 + kSliceRows);
  float gw = 0, gb = 0;
  for (int n = n0; n < n1; ++n) {
    const float d = dout[static_cast<long>(n) * C + c];
    gw += d * (inp[static_cast<long>(n) * C + c] - mean[n]) * rstd[n];
    gb += d;
  }
  float* row = partial + static_cast<long>(blockIdx.x) * 2 * C;
  row[c] = gw;
  row[C + c] = gb;
}

void layernorm_forward(float* out, float* mean, float* rstd, const float* inp, const float* w, const float* b, int N, int C) {
  RV_LAUNCH(layernorm_forward_kernel, blocks_for(N, 8), 256)(out, mean, rstd, inp, w, b, N, C);
  RV_CUDA_LAUNCHED("layernorm_forward");
}

void layernorm_backward(float* dinp, float* dw, float* db, const float* dout, const float* inp, const float* w,
                        const float* mean, const float* rstd, int N, int C) {
  RV_LAUNCH(layernorm_backward_input_kernel, blocks_for(N, 8), 256)(dinp, dout, inp, w, mean, rstd, N, C);
  RV_CUDA_LAUNCHED("layernorm_backward");
  const int slices = slices_for(N);
  if (slices == 0) return;
  float* partial = static_cast<float*>(scratch(sizeof(float) * slices * 2 * C, "layernorm_backward"));
  RV_LAUNCH(layernorm_backward_weight_kernel, dim3(slices, blocks_for(C, kSliceThreads)), kSliceThreads)(
      partial, dout, inp, mean, rstd, N, C);
  RV_CUDA_LAUNCHED("layernorm_backward");
  slice_sum(dw, partial, slices, 2L * C, C, "layernorm_backward");
  slice_sum(db, partial + C, slices, 2L * C, C, "layernorm_backward");
}

}  // namespace revenant::cuda
