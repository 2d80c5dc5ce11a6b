// Helpers the model-level native tests share.
#pragma once
#include <cstddef>
#include <vector>

#include "core/model.h"

namespace rvtest {

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
