// The PPO losses on the device (CUDA mirror of cpu/ppo_loss.cc, which runs core/ppo.cc): per-token
// gradients and the step's statistics without the log-probs, values or gradients leaving the
// device. One block walks all tokens twice (the weight sum first: the gradients are divided by
// it), each thread a fixed strided slice, accumulated in double and added through a fixed shared
// tree: the same bits on every run. A step's tokens are a few thousand, a single block's work.
#include "core/ppo_token.h"
#include "cuda/ops.cuh"

namespace revenant::cuda {

constexpr int kLossThreads = 256;

// The block's total of v, returned to every thread; the barriers let `part` be reused at once.
__device__ double loss_block_sum(double* part, double v) {
  part[threadIdx.x] = v;
  __syncthreads();
  for (int half = kLossThreads / 2; half > 0; half >>= 1) {
    if (threadIdx.x < half) part[threadIdx.x] += part[threadIdx.x + half];
    __syncthreads();
  }
  const double total = part[0];
  __syncthreads();
  return total;
}

__device__ double loss_weight_sum(double* part, const float* weight, int n) {
  double s = 0;
  for (int i = threadIdx.x; i < n; i += kLossThreads) s += weight[i];
  return loss_block_sum(part, s);
}

// core/ppo.cc's policy_loss: the same per-token terms (core/ppo_token.h), summed in double.
__global__ void policy_loss_kernel(float* dlp, float* dent, double* stats, const float* lp, const float* entropy,
                                   const float* weight, const float* adv, const float* old_lp, const float* ref_lp, int n,
                                   PolicyLossConfig cfg) {
  __shared__ double part[kLossThreads];
  const double tokens = loss_weight_sum(part, weight, n);
  const double mean_norm = tokens > 0 ? 1.0 / tokens : 0.0;
  const double norm = cfg.loss_norm > 0 ? 1.0 / cfg.loss_norm : mean_norm;
  double pg = 0, kl = 0, ent = 0, clip = 0, approx_kl = 0;
  for (int i = threadIdx.x; i < n; i += kLossThreads) {
    dlp[i] = 0;
    dent[i] = 0;
    const double w = weight[i];
    if (w == 0) continue;
    const PolicyToken t = policy_token(lp, adv, old_lp, ref_lp, i, cfg);
    pg += w * t.loss;
    clip += t.clipped ? w : 0.0;
    approx_kl += w * -t.log_ratio;
    kl += w * t.k3;
    ent += w * entropy[i];
    dlp[i] = static_cast<float>(w * norm * t.dlp);
    dent[i] = static_cast<float>(-cfg.entropy_coef * w * norm);
  }
  pg = loss_block_sum(part, pg) * norm;
  kl = loss_block_sum(part, kl) * norm;
  ent = loss_block_sum(part, ent) * norm;
  clip = loss_block_sum(part, clip) * mean_norm;
  approx_kl = loss_block_sum(part, approx_kl) * mean_norm;
  if (threadIdx.x == 0) {
    stats[kPolicyPg] = pg;
    stats[kPolicyKl] = kl;
    stats[kPolicyEntropy] = ent;
    stats[kPolicyClipFrac] = clip;
    stats[kPolicyApproxKl] = approx_kl;
    stats[kPolicyTotal] = pg + cfg.kl_coef * kl - cfg.entropy_coef * ent;
    stats[kPolicyTokens] = tokens;
  }
}

// core/ppo.cc's value_loss: the same per-token terms (core/ppo_token.h), summed in double.
__global__ void value_loss_kernel(float* dvalues, double* stats, const float* values, const float* weight,
                                  const float* returns, const float* old_values, int n, float clip_range) {
  __shared__ double part[kLossThreads];
  const double tokens = loss_weight_sum(part, weight, n);
  const double norm = tokens > 0 ? 1.0 / tokens : 0.0;
  double loss_sum = 0, clip = 0;
  for (int i = threadIdx.x; i < n; i += kLossThreads) {
    dvalues[i] = 0;
    const double w = weight[i];
    if (w == 0) continue;
    const ValueToken t = value_token(values, returns, old_values, i, clip_range);
    if (t.clipped) clip += w;
    loss_sum += 0.5 * w * t.loss;
    dvalues[i] = static_cast<float>(w * norm * t.dv);
  }
  loss_sum = loss_block_sum(part, loss_sum) * norm;
  clip = loss_block_sum(part, clip) * norm;
  if (threadIdx.x == 0) {
    stats[kValueLoss] = loss_sum;
    stats[kValueClipFrac] = clip;
    stats[kValueTokens] = tokens;
  }
}

void policy_loss_forward(float* dlp, float* dent, double* stats, const float* lp, const float* entropy,
                         const float* weight, const float* adv, const float* old_lp, const float* ref_lp, int n,
                         PolicyLossConfig cfg) {
  RV_LAUNCH(policy_loss_kernel, 1, kLossThreads)(dlp, dent, stats, lp, entropy, weight, adv, old_lp, ref_lp, n, cfg);
  RV_CUDA_LAUNCHED("policy_loss_forward");
}

void value_loss_forward(float* dvalues, double* stats, const float* values, const float* weight, const float* returns,
                        const float* old_values, int n, float clip_range) {
  RV_LAUNCH(value_loss_kernel, 1, kLossThreads)(dvalues, stats, values, weight, returns, old_values, n, clip_range);
  RV_CUDA_LAUNCHED("value_loss_forward");
}

}  // namespace revenant::cuda
