// lora: a low-rank adapter beside a frozen projection (CUDA mirror of cpu/lora.cc). One thread
// per output element, each summing in the CPU reference's order, so results are deterministic
// (no atomics).
#include "core/dropout.h"
#include "cuda/ops.cuh"

namespace revenant::cuda {

// x[0] y[0] + x[xs] y[ys] + ... over `len` terms, summed in order: every kernel below is one of these
// per output element, over a row or a column of its operands.
__device__ float strided_dot(const float* x, long xs, const float* y, long ys, int len) {
  float s = 0;
  for (int i = 0; i < len; ++i) s += x[i * xs] * y[i * ys];
  return s;
}

// u[n, k] = inp[n, :] . A[k, :]
__global__ void lora_down_kernel(float* u, const float* inp, const float* A, int N, int C, int r) {
  const long idx = blockIdx.x * static_cast<long>(blockDim.x) + threadIdx.x;
  if (idx >= static_cast<long>(N) * r) return;
  const long n = idx / r;
  const int k = idx % r;
  u[idx] = strided_dot(inp + n * C, 1, A + static_cast<long>(k) * C, 1, C);
}

// out[n, j] += scale * u[n, :] . B[j, :]
__global__ void lora_up_kernel(float* out, const float* u, const float* B, int N, int OC, int ld, int r, float scale) {
  const long idx = blockIdx.x * static_cast<long>(blockDim.x) + threadIdx.x;
  if (idx >= static_cast<long>(N) * OC) return;
  const long n = idx / OC;
  const int j = idx % OC;
  out[n * ld + j] += scale * strided_dot(u + n * r, 1, B + static_cast<long>(j) * r, 1, r);
}

// du[n, k] = scale * dout[n, :] . B[:, k]
__global__ void lora_du_kernel(float* du, const float* dout, const float* B, int N, int OC, int ld, int r, float scale) {
  const long idx = blockIdx.x * static_cast<long>(blockDim.x) + threadIdx.x;
  if (idx >= static_cast<long>(N) * r) return;
  const long n = idx / r;
  const int k = idx % r;
  du[idx] = scale * strided_dot(dout + n * ld, 1, B + k, r, OC);
}

// dB[j, k] += scale * sum_n dout[n, j] u[n, k]
__global__ void lora_db_kernel(float* dB, const float* dout, const float* u, int N, int OC, int ld, int r, float scale) {
  const long idx = blockIdx.x * static_cast<long>(blockDim.x) + threadIdx.x;
  if (idx >= static_cast<long>(OC) * r) return;
  const int j = idx / r, k = idx % r;
  dB[idx] += scale * strided_dot(dout + j, ld, u + k, r, N);
}

// dA[k, c] += sum_n du[n, k] inp[n, c]
__global__ void lora_da_kernel(float* dA, const float* du, const float* inp, int N, int C, int r) {
  const long idx = blockIdx.x * static_cast<long>(blockDim.x) + threadIdx.x;
  if (idx >= static_cast<long>(r) * C) return;
  const int k = idx / C, c = idx % C;
  dA[idx] += strided_dot(du + k, r, inp + c, C, N);
}

// dinp[n, c] += du[n, :] . A[:, c]
__global__ void lora_dinp_kernel(float* dinp, const float* du, const float* A, int N, int C, int r) {
  const long idx = blockIdx.x * static_cast<long>(blockDim.x) + threadIdx.x;
  if (idx >= static_cast<long>(N) * C) return;
  const long n = idx / C;
  const int c = idx % C;
  dinp[idx] += strided_dot(du + n * r, 1, A + c, C, r);
}

__global__ void lora_dropout_kernel(float* out, const float* inp, int N, int C, float p, uint64_t seed, int stream, bool add) {
  const long idx = blockIdx.x * static_cast<long>(blockDim.x) + threadIdx.x;
  if (idx >= static_cast<long>(N) * C) return;
  const int n = idx / C, c = idx % C;
  const float keep_scale = static_cast<float>(1.0 / (1.0 - p));
  const bool keep = dropout_keep(seed, stream, n, c, p);
  if (add) {
    if (keep) out[idx] += inp[idx] * keep_scale;
  } else {
    out[idx] = keep ? inp[idx] * keep_scale : 0.0f;
  }
}

void lora_dropout_forward(float* out, const float* inp, int N, int C, float p, uint64_t seed, int stream) {
  if (N == 0) return;
  RV_LAUNCH(lora_dropout_kernel, blocks_for(static_cast<long>(N) * C, 256), 256)(out, inp, N, C, p, seed, stream, false);
  RV_CUDA_LAUNCHED("lora_dropout_forward");
}

void lora_dropout_backward(float* dinp, const float* dout, int N, int C, float p, uint64_t seed, int stream) {
  if (N == 0) return;
  RV_LAUNCH(lora_dropout_kernel, blocks_for(static_cast<long>(N) * C, 256), 256)(dinp, dout, N, C, p, seed, stream, true);
  RV_CUDA_LAUNCHED("lora_dropout_backward");
}

void lora_forward(float* out, float* u, const float* inp, const float* A, const float* B, int N, int C, int OC, int ld, int r,
                  float scale) {
  if (N == 0) return;
  RV_LAUNCH(lora_down_kernel, blocks_for(static_cast<long>(N) * r, 256), 256)(u, inp, A, N, C, r);
  RV_CUDA_LAUNCHED("lora_forward");
  RV_LAUNCH(lora_up_kernel, blocks_for(static_cast<long>(N) * OC, 256), 256)(out, u, B, N, OC, ld, r, scale);
  RV_CUDA_LAUNCHED("lora_forward");
}

void lora_backward(float* dinp, float* dA, float* dB, float* u, float* du, const float* dout, const float* inp, const float* A,
                   const float* B, int N, int C, int OC, int ld, int r, float scale) {
  if (N == 0) return;
  RV_LAUNCH(lora_down_kernel, blocks_for(static_cast<long>(N) * r, 256), 256)(u, inp, A, N, C, r);
  RV_CUDA_LAUNCHED("lora_backward");
  RV_LAUNCH(lora_du_kernel, blocks_for(static_cast<long>(N) * r, 256), 256)(du, dout, B, N, OC, ld, r, scale);
  RV_CUDA_LAUNCHED("lora_backward");
  RV_LAUNCH(lora_db_kernel, blocks_for(static_cast<long>(OC) * r, 256), 256)(dB, dout, u, N, OC, ld, r, scale);
  RV_CUDA_LAUNCHED("lora_backward");
  RV_LAUNCH(lora_da_kernel, blocks_for(static_cast<long>(r) * C, 256), 256)(dA, du, inp, N, C, r);
  RV_CUDA_LAUNCHED("lora_backward");
  if (dinp) {
    RV_LAUNCH(lora_dinp_kernel, blocks_for(static_cast<long>(N) * C, 256), 256)(dinp, du, A, N, C, r);
    RV_CUDA_LAUNCHED("lora_backward");
  }
}

}  // namespace revenant::cuda
