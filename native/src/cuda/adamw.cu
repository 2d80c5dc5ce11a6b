// adamw: elementwise AdamW update, and the deterministic sum of squares for the gradient norm
// (CUDA mirror of cpu/adamw.cc).
#include <cmath>

#include "cuda/ops.cuh"

namespace revenant::cuda {

__global__ void adamw_kernel(float* params, const float* grads, float* m, float* v, long n, float lr, float beta1,
                             float beta2, float eps, float weight_decay, float bc1, float bc2, float grad_scale) {
  const long i = blockIdx.x * static_cast<long>(blockDim.x) + threadIdx.x;
  if (i >= n) return;
  const float g = grads[i] * grad_scale;
  m[i] = beta1 * m[i] + (1.0f - beta1) * g;
  v[i] = beta2 * v[i] + (1.0f - beta2) * g * g;
  params[i] -= lr * ((m[i] / bc1) / (sqrtf(v[i] / bc2) + eps) + weight_decay * params[i]);
}

// One block: each thread sums a fixed strided slice in double, then a fixed shared-memory tree.
constexpr int kSumThreads = 256;
__global__ void sum_squares_kernel(const float* x, long n, double* out) {
  __shared__ double part[kSumThreads];
  double s = 0;
  for (long i = threadIdx.x; i < n; i += kSumThreads) s += static_cast<double>(x[i]) * x[i];
  part[threadIdx.x] = s;
  __syncthreads();
  for (int half = kSumThreads / 2; half > 0; half >>= 1) {
    if (threadIdx.x < half) part[threadIdx.x] += part[threadIdx.x + half];
    __syncthreads();
  }
  if (threadIdx.x == 0) *out = part[0];
}

void adamw_update(float* params, const float* grads, float* m, float* v, std::size_t n, float lr, float beta1, float beta2,
                  float eps, float weight_decay, int step, float grad_scale) {
  const float bc1 = 1.0f - std::pow(beta1, static_cast<float>(step));
  const float bc2 = 1.0f - std::pow(beta2, static_cast<float>(step));
  RV_LAUNCH(adamw_kernel, blocks_for(static_cast<long>(n), 256), 256)(params, grads, m, v, static_cast<long>(n), lr, beta1, beta2,
                                                               eps, weight_decay, bc1, bc2, grad_scale);
  RV_CUDA_LAUNCHED("adamw_update");
}

double sum_squares(const float* x, std::size_t n) {
  double* d = nullptr;
  RV_CUDA_CHECK(cudaMalloc(&d, sizeof(double)), "sum_squares");
  RV_LAUNCH(sum_squares_kernel, 1, kSumThreads)(x, static_cast<long>(n), d);
  double h = 0;
  const cudaError_t launch = cudaGetLastError();
  const cudaError_t copy = cudaMemcpy(&h, d, sizeof(double), cudaMemcpyDeviceToHost);
  cudaFree(d);
  RV_CUDA_CHECK(launch, "sum_squares");
  RV_CUDA_CHECK(copy, "sum_squares");
  return h;
}

}  // namespace revenant::cuda
