// sampling: one token per row from softmax(logits / temperature), driven by Philox so the draw
// is a pure function of (seed, row, step). temperature == 0 means greedy (first maximum).
// Rows are independent, so they are split over the pool; each row's arithmetic is the same
// whichever thread runs it.
#include <cmath>
#include <vector>

#include "core/philox.h"
#include "cpu/ops.h"

namespace revenant::cpu {

// p: scratch of V floats, holding exp((x - max) / temperature) so each exp is computed once.
static int sample_row(const float* x, int V, float temperature, float u, float* p) {
  int best = 0;
  for (int j = 1; j < V; ++j)
    if (x[j] > x[best]) best = j;
  if (temperature <= 0.0f) return best;
  const float maxv = x[best];
  float sum = 0;
  for (int j = 0; j < V; ++j) {
    p[j] = std::exp((x[j] - maxv) / temperature);
    sum += p[j];
  }
  const float threshold = u * sum;
  float cum = 0;
  int last = best;
  for (int j = 0; j < V; ++j) {
    if (p[j] > 0) last = j;
    cum += p[j];
    if (cum > threshold) return j;
  }
  return last;  // rounding left the threshold just above the total
}

void sampling_forward(int* out, const float* logits, int N, int V, float temperature,
                      uint64_t seed, int step) {
  for_chunks(N, double(N) * V * 20, [&](int begin, int end) {
    std::vector<float> p(temperature > 0.0f ? V : 0);
    for (int n = begin; n < end; ++n) {
      const Philox4 r = philox4x32(seed, static_cast<uint32_t>(n), static_cast<uint32_t>(step), 0, 0);
      out[n] = sample_row(logits + static_cast<long>(n) * V, V, temperature, philox_uniform(r.v[0]), p.data());
    }
  });
}

}  // namespace revenant::cpu
