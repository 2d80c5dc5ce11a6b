// Helpers the model-level native tests share.
#pragma once
#include <cstddef>
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
