// sampling: one token per row from softmax(logits / temperature), driven by Philox so the draw
// is a pure function of (seed, row, step). temperature == 0 means greedy (first maximum).
// Rows are independent, so they are split over the pool; each row's arithmetic is the same
// whichever thread runs it.
//
// A row's weights exp((x - max) / temperature) are computed a block of kBlock ids at a time, in
// vector registers, and the normaliser is the sum of the blocks' sums, each block summed by the
// same fixed tree. The draw walks the same block sums to the block where the running mass passes
// u * sum, then the ids of that block one by one: two adds per block instead of one per id, and
// the mass the walk compares against is exactly the normaliser's.
#include <cmath>
#include <cstring>
#include <vector>

#include "core/philox.h"
#include "cpu/lanes.h"
#include "cpu/ops.h"

namespace revenant::cpu {
namespace {

constexpr int kBlock = 16;
typedef float Block __attribute__((vector_size(kBlock * sizeof(float))));
typedef float Half __attribute__((vector_size(kBlock / 2 * sizeof(float))));
typedef float Quarter __attribute__((vector_size(kBlock / 4 * sizeof(float))));

// The sum of a block's 16 weights, always by the same tree: halves, then quarters, then pairs.
float block_sum(Block b) {
  const Half h = __builtin_shufflevector(b, b, 0, 1, 2, 3, 4, 5, 6, 7) +
                 __builtin_shufflevector(b, b, 8, 9, 10, 11, 12, 13, 14, 15);
  const Quarter q = __builtin_shufflevector(h, h, 0, 1, 2, 3) + __builtin_shufflevector(h, h, 4, 5, 6, 7);
  return (q[0] + q[2]) + (q[1] + q[3]);
}

// Scratch of one thread: the weights of a row (padded with zeros to whole blocks) and the sums
// of its blocks.
struct RowScratch {
  std::vector<float> p, sums;
  explicit RowScratch(int V) : p((V + kBlock - 1) / kBlock * kBlock), sums(p.size() / kBlock) {}
};

int sample_row(const float* x, int V, float temperature, float u, RowScratch& s) {
  const float maxv = lane_max(x, V);
  if (temperature <= 0.0f) {
    int best = 0;
    while (best < V - 1 && x[best] != maxv) ++best;
    return best;
  }
  const int blocks = static_cast<int>(s.sums.size());
  float* p = s.p.data();
  float sum = 0;
  for (int b = 0; b < blocks; ++b) {
    const int j0 = b * kBlock;
    float w[kBlock];
    // Ids the filter removed (-infinity) weigh exactly 0: exp_fast clamps, it never returns 0.
    for (int l = 0; l < kBlock; ++l)
      w[l] = j0 + l < V && x[j0 + l] != -INFINITY ? exp_fast((x[j0 + l] - maxv) / temperature) : 0.0f;
    Block v;
    std::memcpy(&v, w, sizeof v);
    std::memcpy(p + j0, w, sizeof w);
    s.sums[b] = block_sum(v);
    sum += s.sums[b];
  }
  const float threshold = u * sum;
  float cum = 0;
  int last = 0;  // the last id with a weight, for a walk that rounding leaves short of the threshold
  for (int b = 0; b < blocks; ++b) {
    if (s.sums[b] > 0) last = b;
    if (cum + s.sums[b] <= threshold) {
      cum += s.sums[b];
      continue;
    }
    const int j0 = b * kBlock;
    int in_block = j0;
    for (int j = j0; j < j0 + kBlock; ++j) {
      if (p[j] > 0) in_block = j;
      cum += p[j];
      if (cum > threshold) return j;
    }
    return in_block;  // the block's own adds fell just short of its tree sum
  }
  int j = last * kBlock + kBlock - 1;
  while (j > 0 && p[j] <= 0) --j;
  return j;
}

}  // namespace

void sampling_forward(int* out, const float* logits, int N, int V, float temperature,
                      uint64_t seed, int step) {
  for_chunks(N, double(N) * V * 4, [&](int begin, int end) {
    RowScratch scratch(temperature > 0.0f ? V : 0);  // greedy rows weigh nothing
    for (int n = begin; n < end; ++n) {
      const Philox4 r = philox4x32(seed, static_cast<uint32_t>(n), static_cast<uint32_t>(step), 0, 0);
      out[n] = sample_row(logits + static_cast<long>(n) * V, V, temperature, philox_uniform(r.v[0]), scratch);
    }
  });
}

}  // namespace revenant::cpu
