// The PPO losses as backend ops: core/ppo.cc's per-token functions over backend (here host)
// memory, with the step's statistics written to a small array of doubles (core/ppo.h names the
// entries), which the CUDA backend (cuda/ppo_loss.cu) fills on the device.
#include "core/ppo.h"
#include "cpu/ops.h"

namespace revenant::cpu {

void policy_loss_forward(float* dlp, float* dent, double* stats, const float* lp, const float* entropy,
                         const float* weight, const float* adv, const float* old_lp, const float* ref_lp, int n,
                         PolicyLossConfig cfg) {
  const PolicyLossStats s = policy_loss(lp, entropy, weight, adv, old_lp, ref_lp, n, cfg, dlp, dent);
  stats[kPolicyPg] = s.pg_loss;
  stats[kPolicyKl] = s.kl_loss;
  stats[kPolicyEntropy] = s.entropy;
  stats[kPolicyClipFrac] = s.clip_frac;
  stats[kPolicyApproxKl] = s.approx_kl;
  stats[kPolicyTotal] = s.total;
  stats[kPolicyTokens] = s.tokens;
}

void value_loss_forward(float* dvalues, double* stats, const float* values, const float* weight, const float* returns,
                        const float* old_values, int n, float clip_range) {
  const ValueLossStats s = value_loss(values, weight, returns, old_values, n, clip_range, dvalues);
  stats[kValueLoss] = s.vf_loss;
  stats[kValueClipFrac] = s.vf_clip_frac;
  stats[kValueTokens] = s.tokens;
}

}  // namespace revenant::cpu
