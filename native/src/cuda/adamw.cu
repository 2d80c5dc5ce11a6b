// adamw: elementwise AdamW update, and the deterministic sum of squares for the gradient norm
// (CUDA mirror of cpu/adamw.cc).
#include <algorithm>
#include <cmath>

#include "core/adamw_element.h"
#include "cuda/ops.cuh"

namespace revenant::cuda {

__global__ void adamw_kernel(float* params, const float* grads, float* m, float* v, long n, float lr, float beta1,
                             float beta2, float eps, float weight_decay, float bc1, float bc2, const float* grad_scale) {
  const long i = blockIdx.x * static_cast<long>(blockDim.x) + threadIdx.x;
  if (i >= n) return;
  const AdamwElement e = adamw_element(params[i], grads[i] * (grad_scale ? *grad_scale : 1.0f), m[i], v[i], lr, beta1,
                                       beta2, eps, weight_decay, bc1, bc2);
  params[i] = e.p;
  m[i] = e.m;
  v[i] = e.v;
}

// Two stages, each deterministic for a given n: block b of the first sums the squares of its fixed
// strided slice (elements b * 256 + thread + k * blocks * 256) in double through a fixed shared tree;
// one block of the second adds the blocks' partial sums the same way.
constexpr int kSumThreads = 256, kSumMaxBlocks = 256, kSumPerThread = 16;

__device__ void block_tree_sum(double* part, double s, double* out) {
  part[threadIdx.x] = s;
  __syncthreads();
  for (int half = kSumThreads / 2; half > 0; half >>= 1) {
    if (threadIdx.x < half) part[threadIdx.x] += part[threadIdx.x + half];
    __syncthreads();
  }
  if (threadIdx.x == 0) *out = part[0];
}

__global__ void sum_squares_kernel(const float* x, long n, double* partial) {
  __shared__ double part[kSumThreads];
  double s = 0;
  const long stride = static_cast<long>(gridDim.x) * kSumThreads;
  for (long i = blockIdx.x * static_cast<long>(kSumThreads) + threadIdx.x; i < n; i += stride)
    s += static_cast<double>(x[i]) * x[i];
  block_tree_sum(part, s, partial + blockIdx.x);
}

// cpu/adamw.cc's probe: x * 0 is 0 for a finite x and NaN otherwise, summed like sum_squares_kernel.
__global__ void adamw_probe_kernel(const float* params, const float* grads, const float* m, const float* v, long n,
                                   float lr, float beta1, float beta2, float eps, float weight_decay, float bc1,
                                   float bc2, const float* grad_scale, double* partial) {
  __shared__ double part[kSumThreads];
  const float scale = grad_scale ? *grad_scale : 1.0f;
  double s = 0;
  const long stride = static_cast<long>(gridDim.x) * kSumThreads;
  for (long i = blockIdx.x * static_cast<long>(kSumThreads) + threadIdx.x; i < n; i += stride) {
    const AdamwElement e = adamw_element(params[i], grads[i] * scale, m[i], v[i], lr, beta1, beta2, eps, weight_decay, bc1, bc2);
    s += e.p * 0.0f + e.m * 0.0f + e.v * 0.0f;
  }
  block_tree_sum(part, s, partial + blockIdx.x);
}

// cpu/adamw.cc's clip_scale, one thread: the same double expression, so the same float.
__global__ void clip_scale_kernel(float* scale, const double* sum_squares, float max_norm) {
  const double norm = sqrt(*sum_squares);
  *scale = max_norm > 0 && norm > max_norm ? static_cast<float>(max_norm / (norm + 1e-6)) : 1.0f;
}

void clip_scale(float* scale, const double* sum_squares, float max_norm) {
  RV_LAUNCH(clip_scale_kernel, 1, 1)(scale, sum_squares, max_norm);
  RV_CUDA_LAUNCHED("clip_scale");
}

// Adds the blocks' partial sums to *acc (stream order keeps a run of these in call order);
// partial[blocks] holds their total on the way.
__global__ void sum_partials_kernel(double* partial, int blocks, double* acc) {
  __shared__ double part[kSumThreads];
  double s = 0;
  for (int i = threadIdx.x; i < blocks; i += kSumThreads) s += partial[i];
  block_tree_sum(part, s, partial + blocks);
  if (threadIdx.x == 0) *acc += partial[blocks];
}

void adamw_update(float* params, const float* grads, float* m, float* v, std::size_t n, float lr, float beta1, float beta2,
                  float eps, float weight_decay, int step, const float* grad_scale) {
  const float bc1 = adamw_bias_correction(beta1, step);
  const float bc2 = adamw_bias_correction(beta2, step);
  RV_LAUNCH(adamw_kernel, blocks_for(static_cast<long>(n), 256), 256)(params, grads, m, v, static_cast<long>(n), lr, beta1, beta2,
                                                               eps, weight_decay, bc1, bc2, grad_scale);
  RV_CUDA_LAUNCHED("adamw_update");
}

int sum_blocks(std::size_t n) {
  const long wanted = blocks_for(static_cast<long>(n), kSumThreads * kSumPerThread);
  return static_cast<int>(std::min<long>(kSumMaxBlocks, std::max<long>(1, wanted)));
}

// partial: blocks + 1 doubles of scratch (the blocks' sums, then their total).
void launch_sum_squares(double* acc, const float* x, std::size_t n, double* partial, int blocks) {
  RV_LAUNCH(sum_squares_kernel, blocks, kSumThreads)(x, static_cast<long>(n), partial);
  RV_CUDA_LAUNCHED("sum_squares");
  RV_LAUNCH(sum_partials_kernel, 1, kSumThreads)(partial, blocks, acc);
  RV_CUDA_LAUNCHED("sum_squares");
}

// Nothing here waits for the device.
void adamw_probe(double* acc, const float* params, const float* grads, const float* m, const float* v, std::size_t n,
                 float lr, float beta1, float beta2, float eps, float weight_decay, int step, const float* grad_scale) {
  const float bc1 = adamw_bias_correction(beta1, step);
  const float bc2 = adamw_bias_correction(beta2, step);
  const int blocks = sum_blocks(n);
  double* partial = static_cast<double*>(scratch(sizeof(double) * (blocks + 1), "adamw_probe"));
  RV_LAUNCH(adamw_probe_kernel, blocks, kSumThreads)(params, grads, m, v, static_cast<long>(n), lr, beta1, beta2, eps,
                                                     weight_decay, bc1, bc2, grad_scale, partial);
  RV_CUDA_LAUNCHED("adamw_probe");
  RV_LAUNCH(sum_partials_kernel, 1, kSumThreads)(partial, blocks, acc);
  RV_CUDA_LAUNCHED("adamw_probe");
}

// Nothing here waits for the device.
void sum_squares_accumulate(double* acc, const float* x, std::size_t n) {
  const int blocks = sum_blocks(n);
  launch_sum_squares(acc, x, n, static_cast<double*>(scratch(sizeof(double) * (blocks + 1), "sum_squares")), blocks);
}

// One tensor's sum read back at once: the accumulator sits after the partial sums in scratch; the
// copy is the one synchronisation, which the caller waits for anyway.
double sum_squares(const float* x, std::size_t n) {
  const int blocks = sum_blocks(n);
  double* partial = static_cast<double*>(scratch(sizeof(double) * (blocks + 2), "sum_squares"));
  double* acc = partial + blocks + 1;
  RV_CUDA_CHECK(cudaMemsetAsync(acc, 0, sizeof(double)), "sum_squares");
  launch_sum_squares(acc, x, n, partial, blocks);
  double h = 0;
  RV_CUDA_CHECK(cudaMemcpy(&h, acc, sizeof(double), cudaMemcpyDeviceToHost), "sum_squares");
  return h;
}

}  // namespace revenant::cuda
