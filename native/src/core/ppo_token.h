// One token's PPO terms: the formulas core/ppo.cc sums on the host and cuda/ppo_loss.cu sums on the
// device, written once, in double, so the two backends compute each token alike. The weight, the
// normalisation and the summation over tokens stay with the callers.
#pragma once
#include <cmath>
#include <cstddef>

#include "core/host_device.h"
#include "core/ppo.h"

namespace revenant {

// std::max and std::min as <algorithm> has them (a NaN first argument comes through), on the device too.
RV_HD double ppo_max(double a, double b) { return a < b ? b : a; }
RV_HD double ppo_min(double a, double b) { return b < a ? b : a; }

struct PolicyToken {
  double loss;       // max(-A r, -A clip(r, 1-e, 1+e))
  bool clipped;      // the clipped branch won
  double log_ratio;  // lp - old
  double k3;         // exp(ref - lp) - (ref - lp) - 1; 0 without the KL term
  double dlp;        // dloss/dlp, before the weight and the norm
};

// Token i's policy terms (core/ppo.h's policy_loss); ref_lp may be null (no KL term).
RV_HD PolicyToken policy_token(const float* lp, const float* adv, const float* old_lp, const float* ref_lp, std::size_t i,
                               const PolicyLossConfig& cfg) {
  PolicyToken t;
  t.log_ratio = static_cast<double>(lp[i]) - old_lp[i];
  const double ratio = exp(t.log_ratio);
  const double a = adv[i];
  const double clipped = ppo_min(ppo_max(ratio, 1.0 - cfg.clip_ratio), 1.0 + cfg.clip_ratio);
  const double l1 = -a * ratio, l2 = -a * clipped;
  // The clipped branch wins only when the ratio left the trust region in the direction the
  // advantage rewards; its gradient is zero there.
  t.clipped = l2 > l1;
  t.loss = t.clipped ? l2 : l1;
  t.dlp = t.clipped ? 0.0 : -a * ratio;
  t.k3 = 0;
  if (ref_lp && cfg.kl_coef != 0) {
    const double d = static_cast<double>(ref_lp[i]) - lp[i];
    t.k3 = exp(d) - d - 1.0;
    t.dlp += cfg.kl_coef * (1.0 - exp(d));
  }
  return t;
}

struct ValueToken {
  double loss;   // max((v - R)^2, (clip(v, old - c, old + c) - R)^2)
  double dv;     // dloss/dv over 2, before the weight and the norm
  bool clipped;  // the clipped error is the larger
};

// Token i's value terms (core/ppo.h's value_loss); old_values is read only when clip_range > 0.
RV_HD ValueToken value_token(const float* values, const float* returns, const float* old_values, std::size_t i,
                             float clip_range) {
  const double v = values[i], r = returns[i];
  const double e1 = v - r;
  ValueToken t{e1 * e1, e1, false};
  if (clip_range > 0) {
    const double old = old_values[i];
    const double vc = ppo_min(ppo_max(v, old - clip_range), old + clip_range);
    const double e2 = vc - r;
    if (e2 * e2 > t.loss) {
      t.loss = e2 * e2;
      t.dv = (v > old - clip_range && v < old + clip_range) ? e2 : 0.0;
      t.clipped = true;
    }
  }
  return t;
}

}  // namespace revenant
