// Helpers the model-level native tests share.
#pragma once
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdio>
#include <string>
#include <vector>

#include "core/model.h"
#include "harness.h"

namespace rvtest {

// A model small enough for the checks by central differences: 7 tokens, 6 positions, width 8.
inline revenant::ModelConfig tiny_config() {
  revenant::ModelConfig c;
  c.vocab = 7;
  c.context = 6;
  c.width = 8;
  c.layers = 2;
  c.heads = 2;
  c.value_head = true;
  c.seed = 11;
  return c;
}

// Heads of size 4 (RoPE needs an even size), theta 100 so six positions turn the pairs a lot.
inline revenant::ModelConfig tiny_llama_gqa_bias() {
  revenant::ModelConfig c = tiny_config();
  c.arch = revenant::Arch::Llama;
  c.width = 16;
  c.heads = 4;
  c.kv_heads = 2;
  c.intermediate = 12;
  c.rope_theta = 100.0f;
  c.attention_bias = true;
  return c;
}

// B rows of T tokens drawn below V into b (a TokenBatch, PolicyBatch or ValueBatch), the mask on
// from position `prompt` of each row: the response part.
template <typename Batch>
void fill_tokens(Batch& b, int B, int T, int V, int prompt, Rng& rng) {
  b.B = B;
  b.T = T;
  b.tokens.resize(static_cast<std::size_t>(B) * T);
  b.mask.assign(b.tokens.size(), 0.0f);
  for (auto& t : b.tokens) t = rng.below(V);
  for (int i = 0; i < B; ++i)
    for (int t = prompt; t < T; ++t) b.mask[static_cast<std::size_t>(i) * T + t] = 1.0f;
}

// An advantage for every token, drawn from a standard normal.
inline void fill_advantages(revenant::PolicyBatch& b, Rng& rng) {
  b.advantages.resize(b.tokens.size());
  for (auto& a : b.advantages) a = static_cast<float>(rng.normal());
}

// B rows over m's whole context (the mask from position 2) for a PPO loss: advantages drawn from a
// standard normal, old log-probs within 0.025 of m's (ratios within 0.95..1.05: inside the clip
// range, away from the loss's kinks), reference log-probs 0.3 standard deviations from m's.
inline revenant::PolicyBatch ppo_batch(revenant::Model& m, int B, Rng& rng) {
  const revenant::ModelConfig& c = m.config();
  revenant::PolicyBatch pb;
  fill_tokens(pb, B, c.context, c.vocab, 2, rng);
  const std::vector<float> lp = m.logprobs(pb);
  pb.advantages.resize(lp.size());
  pb.old_logprobs.resize(lp.size());
  pb.ref_logprobs.resize(lp.size());
  for (std::size_t i = 0; i < lp.size(); ++i) {
    pb.advantages[i] = static_cast<float>(rng.normal());
    pb.old_logprobs[i] = lp[i] + static_cast<float>(0.05 * (rng.uniform() - 0.5));
    pb.ref_logprobs[i] = lp[i] + static_cast<float>(0.3 * rng.normal());
  }
  return pb;
}

// Picks the weights to probe: in each tensor, its largest-gradient entry and one random entry.
inline std::vector<std::size_t> probe_indices(const std::vector<revenant::TensorSpec>& tensors, const std::vector<float>& g,
                                              Rng& rng) {
  std::vector<std::size_t> idx;
  for (const revenant::TensorSpec& s : tensors) {
    std::size_t best = s.offset;
    for (std::size_t i = s.offset; i < s.offset + s.size; ++i)
      if (std::fabs(g[i]) > std::fabs(g[best])) best = i;
    idx.push_back(best);
    idx.push_back(s.offset + rng.below(static_cast<int>(s.size)));
  }
  return idx;
}

// Central differences in float32 with step h on the weights m trains (`tensors`: m.tensors(), or
// m.lora_tensors() for a LoRA model's adapters). The loss is O(1) and its float32 evaluation
// carries ~1e-6 absolute noise, so the difference quotient has ~1e-6 / h noise; curvature over h
// adds ~h^2 |g'''|/6 more. Accept |fd - g| <= 1e-3 + 2e-2 |g|. h is 1e-2 for GPT-2; Llama's first
// RMSNorm sees the raw token embeddings (rms ~0.02, no position table added), so a 1e-2 step is
// half its input's scale and curvature dominates (measured: the error shrinks 4x per halving of h);
// 2.5e-3 cuts that 16x while the noise (~4e-4) stays under the 1e-3 floor.
template <typename LossFn>
void grad_check(const std::string& name, revenant::Model& m, const std::vector<revenant::TensorSpec>& tensors, LossFn loss,
                Rng& rng, float h) {
  loss();
  const std::vector<float> g = m.gradients();
  revenant::ModelState st = m.get_state();
  const std::vector<float> base = st.params;
  int bad = 0, probed = 0;
  double worst = 0;
  for (std::size_t i : probe_indices(tensors, g, rng)) {
    st.params = base;
    st.params[i] = base[i] + h;
    m.set_state(st);
    const double up = loss();
    st.params[i] = base[i] - h;
    m.set_state(st);
    const double down = loss();
    const double fd = (up - down) / (2.0 * h);
    const double err = std::fabs(fd - g[i]);
    worst = std::max(worst, err / (1e-3 + 2e-2 * std::fabs(g[i])));
    if (err > 1e-3 + 2e-2 * std::fabs(g[i])) {
      ++bad;
      std::printf("     param %zu: analytic %.6g, finite difference %.6g\n", i, g[i], fd);
    }
    ++probed;
  }
  st.params = base;
  m.set_state(st);
  check(bad == 0, name, std::to_string(probed) + " parameters probed, worst error/tolerance " + std::to_string(worst));
}

// Row `row` of a generate call as a batch of its own: the prompt, then the tokens generated for
// it, with the mask on the generated ones (what logprobs() scores to check cached decoding).
inline revenant::TokenBatch finished_row(const std::vector<int>& prompt, const revenant::GenerateResult& r, std::size_t row) {
  revenant::TokenBatch tb;
  tb.B = 1;
  tb.tokens = prompt;
  for (int i = 0; i < r.lengths[row]; ++i) tb.tokens.push_back(r.tokens[row * r.max_new_tokens + i]);
  tb.T = static_cast<int>(tb.tokens.size());
  tb.mask.assign(tb.T, 0.0f);
  for (int t = static_cast<int>(prompt.size()); t < tb.T; ++t) tb.mask[t] = 1.0f;
  return tb;
}

}  // namespace rvtest
