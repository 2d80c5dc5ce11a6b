// PPO clipped policy loss and clipped value loss with their per-token gradients.
#include "core/ppo.h"

#include <algorithm>
#include <cmath>

namespace revenant {

PolicyLossStats policy_loss(const float* lp, const float* entropy, const float* weight,
                            const float* adv, const float* old_lp, const float* ref_lp,
                            std::size_t n, const PolicyLossConfig& cfg, float* dlp, float* dent) {
  PolicyLossStats s;
  for (std::size_t i = 0; i < n; ++i) s.tokens += weight[i];
  const double mean_norm = s.tokens > 0 ? 1.0 / s.tokens : 0.0;
  const double norm = cfg.loss_norm > 0 ? 1.0 / cfg.loss_norm : mean_norm;
  for (std::size_t i = 0; i < n; ++i) {
    dlp[i] = 0;
    dent[i] = 0;
    const double w = weight[i];
    if (w == 0) continue;
    const double log_ratio = static_cast<double>(lp[i]) - old_lp[i];
    const double ratio = std::exp(log_ratio);
    const double a = adv[i];
    const double clipped = std::min(std::max(ratio, 1.0 - cfg.clip_ratio), 1.0 + cfg.clip_ratio);
    const double l1 = -a * ratio, l2 = -a * clipped;
    // The clipped branch wins only when the ratio left the trust region in the direction the
    // advantage rewards; its gradient is zero there.
    const bool clip_active = l2 > l1;
    s.pg_loss += w * (clip_active ? l2 : l1);
    s.clip_frac += w * (clip_active ? 1.0 : 0.0);
    s.approx_kl += w * -log_ratio;
    double g = clip_active ? 0.0 : -a * ratio;
    if (ref_lp && cfg.kl_coef != 0) {
      const double d = static_cast<double>(ref_lp[i]) - lp[i];
      s.kl_loss += w * (std::exp(d) - d - 1.0);
      g += cfg.kl_coef * (1.0 - std::exp(d));
    }
    s.entropy += w * entropy[i];
    dlp[i] = static_cast<float>(w * norm * g);
    dent[i] = static_cast<float>(-cfg.entropy_coef * w * norm);
  }
  s.pg_loss *= norm;
  s.kl_loss *= norm;
  s.entropy *= norm;
  s.clip_frac *= mean_norm;
  s.approx_kl *= mean_norm;
  s.total = s.pg_loss + cfg.kl_coef * s.kl_loss - cfg.entropy_coef * s.entropy;
  return s;
}

ValueLossStats value_loss(const float* values, const float* weight, const float* returns,
                          const float* old_values, std::size_t n, float clip_range, float* dvalues) {
  ValueLossStats s;
  for (std::size_t i = 0; i < n; ++i) s.tokens += weight[i];
  const double norm = s.tokens > 0 ? 1.0 / s.tokens : 0.0;
  for (std::size_t i = 0; i < n; ++i) {
    dvalues[i] = 0;
    const double w = weight[i];
    if (w == 0) continue;
    const double v = values[i], r = returns[i];
    const double e1 = v - r;
    double loss = e1 * e1, g = e1;
    if (clip_range > 0) {
      const double old = old_values[i];
      const double vc = std::min(std::max(v, old - clip_range), old + clip_range);
      const double e2 = vc - r;
      if (e2 * e2 > loss) {
        loss = e2 * e2;
        g = (v > old - clip_range && v < old + clip_range) ? e2 : 0.0;
        s.vf_clip_frac += w;
      }
    }
    s.vf_loss += 0.5 * w * loss;
    dvalues[i] = static_cast<float>(w * norm * g);
  }
  s.vf_loss *= norm;
  s.vf_clip_frac *= norm;
  return s;
}

}  // namespace revenant
