// sampling_filter: the distribution a sampler draws from, as Hugging Face's and vLLM's samplers
// make it. scaled = logits / temperature (temperature 0, greedy: the logits unscaled), then on a
// copy, `filtered`, top-k keeps the ids whose scaled logit is at least the k-th largest (ties at
// the k-th value kept, as Hugging Face does), and top-p keeps, of those, the smallest set of most
// likely ids whose probability (renormalised over the top-k set) reaches top_p: ids ordered by
// probability, highest first (ties by id), each kept while the mass before it is below top_p.
// Removed ids get -infinity, which sampling_forward gives probability 0. `scaled` is what the
// log-prob of a sample is taken from: the temperature-scaled distribution without truncation.
//
// Rows are independent and each row's arithmetic is sequential in a fixed order, so the kept set
// is the same for any thread count.
#include <algorithm>
#include <cmath>
#include <vector>

#include "cpu/ops.h"

namespace revenant::cpu {
namespace {

// Keeps the top_k largest of x[0..V) (and any tied with the k-th); the rest set to -infinity.
void keep_top_k(float* x, int V, int top_k, std::vector<float>& tmp) {
  tmp.assign(x, x + V);
  std::nth_element(tmp.begin(), tmp.begin() + (top_k - 1), tmp.end(), [](float a, float b) { return a > b; });
  const float kth = tmp[top_k - 1];
  for (int j = 0; j < V; ++j)
    if (x[j] < kth) x[j] = -INFINITY;
}

// Keeps the smallest most-likely set whose mass reaches top_p of softmax(x) over the ids still
// finite; the rest set to -infinity.
void keep_top_p(float* x, int V, float top_p, std::vector<int>& order) {
  float maxv = -INFINITY;
  for (int j = 0; j < V; ++j) maxv = std::fmax(maxv, x[j]);
  double Z = 0;
  for (int j = 0; j < V; ++j) Z += std::exp(double(x[j]) - maxv);
  const double target = double(top_p) * Z;
  // Only ids whose probability is at least some tau can be kept, once the mass at or above tau
  // reaches the target: the kept prefix ends inside that set. Lowering tau by 2^-8 per pass finds
  // one in a few passes, so only a handful of ids are sorted instead of the whole vocabulary.
  double tau = 0.5, above = 0;
  for (;; tau /= 256) {
    above = 0;
    for (int j = 0; j < V; ++j) {
      const double p = std::exp(double(x[j]) - maxv);
      if (p >= tau) above += p;
    }
    if (above >= target || tau < 1e-300) break;
  }
  order.clear();
  for (int j = 0; j < V; ++j)
    if (std::exp(double(x[j]) - maxv) >= tau) order.push_back(j);
  std::sort(order.begin(), order.end(), [x](int a, int b) { return x[a] > x[b] || (x[a] == x[b] && a < b); });
  std::vector<char> keep(V, 0);
  double before = 0;
  for (int j : order) {
    if (before >= target) break;
    keep[j] = 1;
    before += std::exp(double(x[j]) - maxv);
  }
  for (int j = 0; j < V; ++j)
    if (!keep[j]) x[j] = -INFINITY;
}

}  // namespace

void sampling_filter_forward(float* scaled, float* filtered, const float* logits, int N, int V, float temperature,
                             int top_k, float top_p) {
  const float inv_temp = temperature > 0.0f ? 1.0f / temperature : 1.0f;
  const bool greedy = temperature <= 0.0f;  // the argmax is in every kept set: nothing to filter
  const bool use_k = !greedy && top_k > 0 && top_k < V, use_p = !greedy && top_p < 1.0f;
  for_chunks(N, double(N) * V * (use_p ? 60 : 4), [&](int begin, int end) {
    std::vector<float> tmp;
    std::vector<int> order;
    for (int n = begin; n < end; ++n) {
      const float* x = logits + static_cast<long>(n) * V;
      float* s = scaled + static_cast<long>(n) * V;
      float* f = filtered + static_cast<long>(n) * V;
      for (int j = 0; j < V; ++j) s[j] = x[j] * inv_temp;
      std::copy(s, s + V, f);
      if (use_k) keep_top_k(f, V, top_k, tmp);
      if (use_p) keep_top_p(f, V, top_p, order);
    }
  });
}

}  // namespace revenant::cpu
