// The PPO objectives as per-token scalar functions. They run on the host over one value per token
// (a few thousand floats), so both backends share them; the backends turn the resulting
// per-token gradients into gradients of the logits (logprob_backward) or of the values.
// Arrays are indexed by the row of logits that predicts the token; weight 0 means "not a
// response token".
#pragma once
#include <cstddef>

namespace revenant {

struct PolicyLossConfig {
  float clip_ratio = 0.2f;   // PPO epsilon
  float kl_coef = 0.0f;      // weight of the k3 KL estimate to the reference policy
  float entropy_coef = 0.0f; // weight of the entropy bonus
  // The denominator of the loss terms (policy, KL, entropy): 0 = the summed weights (a weighted
  // token mean); a positive value divides the weighted sums by it instead, which is how the
  // sequence-level aggregations (sum per sequence over the number of sequences, or over a fixed
  // length as in Dr. GRPO) are expressed. clip_frac and approx_kl stay weighted means.
  float loss_norm = 0.0f;
};

struct PolicyLossStats {
  double pg_loss = 0, kl_loss = 0, entropy = 0, clip_frac = 0, approx_kl = 0, total = 0;
  double tokens = 0;
};

// Where the backend ops policy_loss_forward and value_loss_forward (core/op_list.h) put the
// statistics in their array of doubles: PolicyLossStats' and ValueLossStats' fields.
enum PolicyStat { kPolicyPg, kPolicyKl, kPolicyEntropy, kPolicyClipFrac, kPolicyApproxKl, kPolicyTotal, kPolicyTokens, kPolicyStats };
enum ValueStat { kValueLoss, kValueClipFrac, kValueTokens, kValueStats };

// loss = mean_w[max(-A r, -A clip(r, 1-e, 1+e))] + kl_coef mean_w[k3] - entropy_coef mean_w[H]
// (mean_w[x] = sum(w x) / sum(w), or sum(w x) / loss_norm when loss_norm > 0)
// with r = exp(lp - old), k3 = exp(ref - lp) - (ref - lp) - 1. Writes dloss/dlp and dloss/dH.
// ref may be null (no KL term).
PolicyLossStats policy_loss(const float* lp, const float* entropy, const float* weight,
                            const float* adv, const float* old_lp, const float* ref_lp,
                            std::size_t n, const PolicyLossConfig& cfg, float* dlp, float* dent);

struct ValueLossStats {
  double vf_loss = 0, vf_clip_frac = 0, tokens = 0;
};

// loss = 0.5 mean_w[max((v - R)^2, (clip(v, old - c, old + c) - R)^2)]; unclipped when c <= 0.
ValueLossStats value_loss(const float* values, const float* weight, const float* returns,
                          const float* old_values, std::size_t n, float clip_range, float* dvalues);

}  // namespace revenant
