// bf16: bfloat16 -> float32 widening, how a LoRA model's frozen bfloat16 base is read into a
// float32 scratch before each product (the product itself stays float32). Exact: a bfloat16 is
// the upper half of a float32's bits. The token embedding of such a base widens the rows it
// gathers (bf16_embedding_forward).
#include <cstring>

#include "cpu/ops.h"

namespace revenant::cpu {

void bf16_widen(float* out, const uint16_t* inp, std::size_t n) {
  for_ranges(n, double(n), [&](std::size_t begin, std::size_t end) {
    for (std::size_t i = begin; i < end; ++i) {
      const uint32_t bits = static_cast<uint32_t>(inp[i]) << 16;
      std::memcpy(out + i, &bits, sizeof bits);
    }
  });
}

// Only the N gathered rows are widened: the table itself stays bfloat16.
void bf16_embedding_forward(float* out, const int* tokens, const uint16_t* wte, int N, int C) {
  for_chunks(N, double(N) * C, [&](int begin, int end) {
    for (int n = begin; n < end; ++n) {
      const uint16_t* row = wte + static_cast<long>(tokens[n]) * C;
      float* o = out + static_cast<long>(n) * C;
      for (int c = 0; c < C; ++c) {
        const uint32_t bits = static_cast<uint32_t>(row[c]) << 16;
        std::memcpy(o + c, &bits, sizeof bits);
      }
    }
  });
}

}  // namespace revenant::cpu
