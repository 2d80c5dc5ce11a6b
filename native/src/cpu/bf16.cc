// bf16: bfloat16 -> float32 widening, how a LoRA model's frozen bfloat16 base is read into a
// float32 scratch before each product (the product itself stays float32). Exact: a bfloat16 is
// the upper half of a float32's bits.
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

}  // namespace revenant::cpu
