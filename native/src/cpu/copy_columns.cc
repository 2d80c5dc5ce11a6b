// copy_columns: a [N, cols] block into columns 0..cols of a wider row-major matrix (rows ld apart),
// how a bfloat16 head's chunk of logits lands in generate's [N, V] logits.
#include <cstring>

#include "cpu/ops.h"

namespace revenant::cpu {

void copy_columns(float* dst, int ld, const float* src, int N, int cols) {
  for (int n = 0; n < N; ++n)
    std::memcpy(dst + static_cast<long>(n) * ld, src + static_cast<long>(n) * cols, static_cast<std::size_t>(cols) * sizeof(float));
}

}  // namespace revenant::cpu
