// matmul: out = inp @ w^T + bias and its backward (CUDA mirror of cpu/matmul.cc), on one tiled
// shared-memory GEMM kernel that takes strides, so every transpose is the same kernel.
#include "core/launch.h"
#include "cuda/ops.cuh"

namespace revenant::cuda {

constexpr int TILE = 16;

// C[M,N] (+)= A(i,k) B(k,j) where A(i,k) = A[i*sai + k*sak] and B(k,j) = B[k*sbk + j*sbn].
__global__ void gemm_kernel(int M, int N, int K, const float* A, long sai, long sak, const float* B, long sbk, long sbn,
                            float* C, int ldc, bool accumulate) {
  __shared__ float as[TILE][TILE + 1];
  __shared__ float bs[TILE][TILE + 1];
  const int i = blockIdx.y * TILE + threadIdx.y;
  const int j = blockIdx.x * TILE + threadIdx.x;
  float acc = 0;
  for (int k0 = 0; k0 < K; k0 += TILE) {
    const int ka = k0 + threadIdx.x, kb = k0 + threadIdx.y;
    as[threadIdx.y][threadIdx.x] = (i < M && ka < K) ? A[i * sai + ka * sak] : 0.0f;
    bs[threadIdx.y][threadIdx.x] = (kb < K && j < N) ? B[kb * sbk + j * sbn] : 0.0f;
    __syncthreads();
    for (int k = 0; k < TILE; ++k) acc += as[threadIdx.y][k] * bs[k][threadIdx.x];
    __syncthreads();
  }
  if (i < M && j < N) {
    float& c = C[static_cast<long>(i) * ldc + j];
    c = accumulate ? c + acc : acc;
  }
}

// Columns go on grid.x (up to 2^31 - 1 blocks); rows on grid.y, which stops at 65535 blocks, so
// a tall product runs as slices of rows (core/launch.h).
static void gemm(int M, int N, int K, const float* A, long sai, long sak, const float* B, long sbk, long sbn, float* C,
                 int ldc, bool accumulate, const char* op) {
  const dim3 block(TILE, TILE);
  for (const RowSlice& s : grid_row_slices(M, TILE)) {
    const dim3 grid(blocks_for(N, TILE), blocks_for(s.rows, TILE));
    RV_LAUNCH(gemm_kernel, grid, block)(s.rows, N, K, A + s.begin * sai, sai, sak, B, sbk, sbn, C + s.begin * ldc, ldc,
                                 accumulate);
    RV_CUDA_LAUNCHED(op);
  }
}

__global__ void fill_bias_kernel(float* out, const float* bias, int N, int OC) {
  const long i = blockIdx.x * static_cast<long>(blockDim.x) + threadIdx.x;
  if (i < static_cast<long>(N) * OC) out[i] = bias[i % OC];
}

// One thread per output channel sums the rows in order.
__global__ void bias_backward_kernel(float* dbias, const float* dout, int N, int OC) {
  const int o = blockIdx.x * blockDim.x + threadIdx.x;
  if (o >= OC) return;
  float s = 0;
  for (int n = 0; n < N; ++n) s += dout[static_cast<long>(n) * OC + o];
  dbias[o] += s;
}

void matmul_forward(float* out, const float* inp, const float* w, const float* bias, int N, int C, int OC) {
  if (bias) {
    RV_LAUNCH(fill_bias_kernel, blocks_for(static_cast<long>(N) * OC, 256), 256)(out, bias, N, OC);
    RV_CUDA_LAUNCHED("matmul_forward");
  }
  gemm(N, OC, C, inp, C, 1, w, 1, C, out, OC, bias != nullptr, "matmul_forward");
}

void matmul_backward(float* dinp, float* dw, float* dbias, const float* dout, const float* inp, const float* w, int N,
                     int C, int OC) {
  if (dinp) gemm(N, C, OC, dout, OC, 1, w, C, 1, dinp, C, true, "matmul_backward");  // dout @ w
  if (dw) gemm(OC, C, N, dout, 1, OC, inp, C, 1, dw, C, true, "matmul_backward");      // dout^T @ inp (null: frozen)
  if (dbias) {
    RV_LAUNCH(bias_backward_kernel, blocks_for(OC, 64), 64)(dbias, dout, N, OC);
    RV_CUDA_LAUNCHED("matmul_backward");
  }
}

}  // namespace revenant::cuda
