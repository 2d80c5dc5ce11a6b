// PPO clipped policy loss and clipped value loss with their per-token gradients.
#include "core/ppo.h"

#include "core/ppo_token.h"

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
    const PolicyToken t = policy_token(lp, adv, old_lp, ref_lp, i, cfg);
    s.pg_loss += w * t.loss;
    s.clip_frac += w * (t.clipped ? 1.0 : 0.0);
    s.approx_kl += w * -t.log_ratio;
    s.kl_loss += w * t.k3;
    s.entropy += w * entropy[i];
    dlp[i] = static_cast<float>(w * norm * t.dlp);
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
    const ValueToken t = value_token(values, returns, old_values, i, clip_range);
    if (t.clipped) s.vf_clip_frac += w;
    s.vf_loss += 0.5 * w * t.loss;
    dvalues[i] = static_cast<float>(w * norm * t.dv);
  }
  s.vf_loss *= norm;
  s.vf_clip_frac *= norm;
  return s;
}

}  // namespace revenant
