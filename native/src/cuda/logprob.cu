// logprob: log-softmax of the target and entropy per row of logits, and the gradient of
// sum(dlp*lp + dent*H) (CUDA mirror of cpu/logprob.cc). One thread per row: the vocabulary is
// small, and this keeps the reduction order identical to the CPU reference.
#include "cuda/ops.cuh"

namespace revenant::cuda {

__device__ float row_lse(const float* x, int V) {
  float maxv = x[0];
  for (int j = 1; j < V; ++j) maxv = fmaxf(maxv, x[j]);
  float sum = 0;
  for (int j = 0; j < V; ++j) sum += expf(x[j] - maxv);
  return maxv + logf(sum);
}

__global__ void logprob_forward_kernel(float* lp, float* entropy, const float* logits, const int* targets, int N, int V) {
  const int n = blockIdx.x * blockDim.x + threadIdx.x;
  if (n >= N) return;
  const float* x = logits + static_cast<long>(n) * V;
  const float lse = row_lse(x, V);
  lp[n] = targets[n] >= 0 ? x[targets[n]] - lse : 0.0f;
  if (!entropy) return;  // sampling wants the log-prob alone
  float px = 0;
  for (int j = 0; j < V; ++j) px += expf(x[j] - lse) * x[j];
  entropy[n] = lse - px;
}

__global__ void logprob_backward_kernel(float* dlogits, const float* logits, const int* targets, const float* dlp,
                                        const float* dent, int N, int V) {
  const int n = blockIdx.x * blockDim.x + threadIdx.x;
  if (n >= N) return;
  const float* x = logits + static_cast<long>(n) * V;
  float* dx = dlogits + static_cast<long>(n) * V;
  const float lse = row_lse(x, V);
  float px = 0;
  for (int j = 0; j < V; ++j) px += expf(x[j] - lse) * x[j];
  const float H = lse - px;
  const float gl = targets[n] >= 0 ? dlp[n] : 0.0f;
  for (int j = 0; j < V; ++j) {
    const float logp = x[j] - lse;
    const float p = expf(logp);
    dx[j] = -gl * p - dent[n] * p * (logp + H);
  }
  if (targets[n] >= 0) dx[targets[n]] += gl;
}

void logprob_forward(float* lp, float* entropy, const float* logits, const int* targets, int N, int V) {
  RV_LAUNCH(logprob_forward_kernel, blocks_for(N, 128), 128)(lp, entropy, logits, targets, N, V);
  RV_CUDA_LAUNCHED("logprob_forward");
}

void logprob_backward(float* dlogits, const float* logits, const int* targets, const float* dlp, const float* dent, int N,
                      int V) {
  RV_LAUNCH(logprob_backward_kernel, blocks_for(N, 128), 128)(dlogits, logits, targets, dlp, dent, N, V);
  RV_CUDA_LAUNCHED("logprob_backward");
}

}  // namespace revenant::cuda
