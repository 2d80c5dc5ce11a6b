// logprob: log-softmax of a target token and the entropy of the distribution, per row of logits.
// This is the fused softmax / cross-entropy piece of the PPO loss: the loss itself is a few
// scalars per token (computed on the host), and this op turns their gradients into dlogits.
#include <cmath>

#include "cpu/lanes.h"
#include "cpu/ops.h"

namespace revenant::cpu {

// The row's log-sum-exp: max and sum in lanes, exp_fast for float.
template <typename T>
static T log_sum_exp(const T* x, int V) {
  const T maxv = lane_max(x, V);
  return maxv + std::log(lane_sum_exp(x, V, maxv));
}

template <typename T>
void logprob_forward(T* lp, T* entropy, const T* logits, const int* targets, int N, int V) {
  for_chunks(N, double(N) * V * (entropy ? 20 : 10), [&](int begin, int end) {
    for (int n = begin; n < end; ++n) {
      const T* x = logits + static_cast<long>(n) * V;
      const T lse = log_sum_exp(x, V);
      lp[n] = targets[n] >= 0 ? x[targets[n]] - lse : T(0);
      if (!entropy) continue;  // sampling wants the log-prob alone: half the exps
      T px = 0;  // sum p * x
      for (int j = 0; j < V; ++j) px += std::exp(x[j] - lse) * x[j];
      entropy[n] = lse - px;
    }
  });
}

// d lp / d x_j = [j == target] - p_j;  d H / d x_j = -p_j (log p_j + H).
template <typename T>
void logprob_backward(T* dlogits, const T* logits, const int* targets, const T* dlp, const T* dent,
                      int N, int V) {
  for_chunks(N, double(N) * V * 30, [&](int begin, int end) {
    for (int n = begin; n < end; ++n) {
      const T* x = logits + static_cast<long>(n) * V;
      T* dx = dlogits + static_cast<long>(n) * V;
      const T lse = log_sum_exp(x, V);
      T px = 0;
      for (int j = 0; j < V; ++j) px += std::exp(x[j] - lse) * x[j];
      const T H = lse - px;
      const T gl = targets[n] >= 0 ? dlp[n] : T(0);
      for (int j = 0; j < V; ++j) {
        const T logp = x[j] - lse;
        const T p = std::exp(logp);
        dx[j] = -gl * p - dent[n] * p * (logp + H);
      }
      if (targets[n] >= 0) dx[targets[n]] += gl;
    }
  });
}

template void logprob_forward<float>(float*, float*, const float*, const int*, int, int);
template void logprob_forward<double>(double*, double*, const double*, const int*, int, int);
template void logprob_backward<float>(float*, const float*, const int*, const float*, const float*, int, int);
template void logprob_backward<double>(double*, const double*, const int*, const double*, const double*, int, int);

}  // namespace revenant::cpu
