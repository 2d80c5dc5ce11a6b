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
#include <utility>
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
// finite; the rest set to -infinity. The boundary is the largest value v with mass(x >= v) >=
// top_p * Z: every id above it is kept, those equal to it in id order while the mass before them
// stays below the target, every id below it removed. v is found by a mass-weighted quickselect
// (three-way partitions around a pivot, going down into the side that holds the boundary), O(V)
// expected instead of sorting the vocabulary.
// Scratch of keep_top_p, kept per thread across rows.
struct TopPScratch {
  std::vector<double> p;                        // exp(x_j - max), each computed once
  std::vector<std::pair<float, double>> vals;   // (x_j, p_j) of the finite ids, partitioned in place
};

void keep_top_p(float* x, int V, float top_p, TopPScratch& sc) {
  float maxv = -INFINITY;
  for (int j = 0; j < V; ++j) maxv = std::fmax(maxv, x[j]);
  sc.p.resize(V);
  double Z = 0;
  for (int j = 0; j < V; ++j) Z += (sc.p[j] = std::exp(double(x[j]) - maxv));
  const double target = double(top_p) * Z;
  sc.vals.clear();
  for (int j = 0; j < V; ++j)
    if (x[j] > -INFINITY) sc.vals.emplace_back(x[j], sc.p[j]);
  auto& vals = sc.vals;
  std::size_t lo = 0, hi = vals.size();
  double need = target;  // what the range [lo, hi) must still supply, the mass above it taken
  float boundary = maxv;
  while (lo < hi) {
    const auto pivot = vals[lo + (hi - lo) / 2];
    std::size_t g = lo, i = lo, l = hi;  // [lo, g) > pivot, [g, l) == pivot, [l, hi) < pivot
    while (i < l) {
      if (vals[i].first > pivot.first) std::swap(vals[g++], vals[i++]);
      else if (vals[i].first < pivot.first) std::swap(vals[i], vals[--l]);
      else ++i;
    }
    double greater = 0;
    for (std::size_t k = lo; k < g; ++k) greater += vals[k].second;
    const double equal = double(l - g) * pivot.second;
    if (greater >= need) {
      hi = g;  // the boundary is among the larger values
    } else if (greater + equal >= need || l == hi) {
      boundary = pivot.first;  // (l == hi: nothing below; rounding left the target just out of reach)
      break;
    } else {
      need -= greater + equal;
      lo = l;
    }
  }
  double before = 0;  // mass strictly above the boundary, in id order
  for (int j = 0; j < V; ++j)
    if (x[j] > boundary) before += sc.p[j];
  for (int j = 0; j < V; ++j) {
    if (x[j] > boundary) continue;
    if (x[j] == boundary && before < target) before += sc.p[j];
    else x[j] = -INFINITY;
  }
}

}  // namespace

void sampling_filter_forward(float* scaled, float* filtered, const float* logits, int N, int V, float temperature,
                             int top_k, float top_p) {
  const float inv_temp = temperature > 0.0f ? 1.0f / temperature : 1.0f;
  const bool greedy = temperature <= 0.0f;  // the argmax is in every kept set: nothing to filter
  const bool use_k = !greedy && top_k > 0 && top_k < V, use_p = !greedy && top_p < 1.0f;
  for_chunks(N, double(N) * V * (use_p ? 60 : 4), [&](int begin, int end) {
    std::vector<float> tmp;
    TopPScratch top_p_scratch;
    for (int n = begin; n < end; ++n) {
      const float* x = logits + static_cast<long>(n) * V;
      float* s = scaled + static_cast<long>(n) * V;
      float* f = filtered + static_cast<long>(n) * V;
      for (int j = 0; j < V; ++j) s[j] = x[j] * inv_temp;
      std::copy(s, s + V, f);
      if (use_k) keep_top_k(f, V, top_k, tmp);
      if (use_p) keep_top_p(f, V, top_p, top_p_scratch);
    }
  });
}

}  // namespace revenant::cpu
