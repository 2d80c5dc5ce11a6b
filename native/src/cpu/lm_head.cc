// lm_head: the LM head fused with the log-softmax, so that no [N, V] logits tensor (nor its
// gradient) ever exists. The vocabulary is walked in chunks of `chunk` ids: each chunk's logits
// [N, chunk] are one matrix product into scratch, folded into each row's running log-sum-exp
// (online softmax: running max m, sum s = sum exp(z - m), and e = sum exp(z - m) z for the
// entropy), then dropped. The backward recomputes each chunk's logits from the saved log-sum-exp
// and entropy, turns them into the gradient of the chunk in place, and feeds it to the matrix
// product's backward, as cut cross-entropy and fused linear cross-entropy do. Memory is
// O(N * chunk) whatever the vocabulary.
//
// A bfloat16 head (w16, a LoRA model's frozen base) is widened chunk by chunk into `wide` right
// before each chunk's product, so it too takes O(chunk * C) of float32 and computes exactly what a
// float32 head of the same values computes.
//
// Only the first V rows of w are read: a padded vocabulary (an embedding with more rows than the
// tokenizer has ids) passes the tokenizer's size, and the padding is never scored nor trained.
// z = logits * inv_temp: log-probs of the temperature-scaled distribution.
//
// Rows are independent in the row passes and every sum runs in a fixed order (chunk by chunk,
// lane by lane), so results are bit-identical for any thread count.
#include <cmath>
#include <cstdint>
#include <cstring>
#include <type_traits>

#include "cpu/fast_exp.h"
#include "cpu/lanes.h"
#include "cpu/ops.h"

namespace revenant::cpu {
namespace {

// Folds one chunk of a row's logits into its running (m, s, e).
template <typename T>
void fold_chunk(const T* x, int n, T scale, bool want_e, T& m, T& s, T& e) {
  const T m_new = std::fmax(m, lane_max(x, n, scale));
  const T rescale = std::exp(m - m_new);  // m = -inf on the first chunk: 0, and s = e = 0 anyway
  T ls[kLanes] = {}, le[kLanes] = {};
  int j = 0;
  for (; j + kLanes <= n; j += kLanes)
    for (int l = 0; l < kLanes; ++l) {
      const T z = x[j + l] * scale;
      const T p = exp_fast(z - m_new);
      ls[l] += p;
      le[l] += p * z;
    }
  for (int l = 0; j < n; ++j, ++l) {
    const T z = x[j] * scale;
    const T p = exp_fast(z - m_new);
    ls[l] += p;
    le[l] += p * z;
  }
  T cs = 0, ce = 0;
  for (int l = 0; l < kLanes; ++l) {
    cs += ls[l];
    ce += le[l];
  }
  s = s * rescale + cs;
  if (want_e) e = e * rescale + ce;
  m = m_new;
}

// Rows v0..v0+vc of the head as float32: w's own, or w16's widened into wide.
template <typename T>
const T* chunk_rows(const T* w, const uint16_t* w16, T* wide, int v0, int vc, int C) {
  const long at = static_cast<long>(v0) * C, n = static_cast<long>(vc) * C;
  if (!w16) return w + at;
  if constexpr (std::is_same_v<T, float>) {
    bf16_widen(wide, w16 + at, static_cast<std::size_t>(n));
  } else {
    for (long i = 0; i < n; ++i) {
      const uint32_t bits = static_cast<uint32_t>(w16[at + i]) << 16;
      float x;
      std::memcpy(&x, &bits, sizeof x);
      wide[i] = x;
    }
  }
  return wide;
}

}  // namespace

// scratch: N * (chunk + 2) elements: the chunk's logits, then each row's running s and e.
template <typename T>
void lm_head_forward(T* lp, T* entropy, T* lse, T* scratch, const T* inp, const T* w, const uint16_t* w16, T* wide,
                     const int* targets, int N, int C, int V, int chunk, float inv_temp) {
  T* logits = scratch;
  T* s = scratch + static_cast<long>(N) * chunk;
  T* e = s + N;
  const T scale = static_cast<T>(inv_temp);
  for (int n = 0; n < N; ++n) {
    lse[n] = -INFINITY;  // the running max until the last chunk
    s[n] = e[n] = lp[n] = 0;
  }
  for (int v0 = 0; v0 < V; v0 += chunk) {
    const int vc = V - v0 < chunk ? V - v0 : chunk;
    matmul_forward<T>(logits, inp, chunk_rows(w, w16, wide, v0, vc, C), nullptr, N, C, vc);
    for_chunks(N, double(N) * vc * 12, [&](int begin, int end) {
      for (int n = begin; n < end; ++n) {
        const T* x = logits + static_cast<long>(n) * vc;
        const int t = targets[n];
        if (t >= v0 && t < v0 + vc) lp[n] = x[t - v0] * scale;  // the target's z, until the end
        fold_chunk(x, vc, scale, entropy != nullptr, lse[n], s[n], e[n]);
      }
    });
  }
  for (int n = 0; n < N; ++n) {
    const T m = lse[n];
    lse[n] = m + std::log(s[n]);
    lp[n] = targets[n] >= 0 ? lp[n] - lse[n] : T(0);
    if (entropy) entropy[n] = lse[n] - e[n] / s[n];  // H = lse - E[z]
  }
}

// d lp / d z_j = [j == target] - p_j;  d H / d z_j = -p_j (log p_j + H);  d z / d logit = inv_temp.
// dinp and dw accumulate (+=), as every backward op does.
template <typename T>
void lm_head_backward(T* dinp, T* dw, T* scratch, const T* inp, const T* w, const uint16_t* w16, T* wide,
                      const int* targets, const T* lse, const T* entropy, const T* dlp, const T* dent, int N, int C, int V,
                      int chunk, float inv_temp) {
  T* g = scratch;
  const T scale = static_cast<T>(inv_temp);
  for (int v0 = 0; v0 < V; v0 += chunk) {
    const int vc = V - v0 < chunk ? V - v0 : chunk;
    const T* wc = chunk_rows(w, w16, wide, v0, vc, C);
    matmul_forward<T>(g, inp, wc, nullptr, N, C, vc);
    for_chunks(N, double(N) * vc * 12, [&](int begin, int end) {
      for (int n = begin; n < end; ++n) {
        T* x = g + static_cast<long>(n) * vc;
        const int t = targets[n];
        const T gl = t >= 0 ? dlp[n] : T(0), gh = dent[n], L = lse[n], H = entropy[n];
        for (int j = 0; j < vc; ++j) {
          const T logp = x[j] * scale - L;
          const T p = exp_fast(logp);
          x[j] = scale * (-gl * p - gh * p * (logp + H));
        }
        if (t >= v0 && t < v0 + vc) x[t - v0] += scale * gl;
      }
    });
    // dw null: a frozen head (under LoRA) gets no gradient.
    matmul_backward<T>(dinp, dw ? dw + static_cast<long>(v0) * C : nullptr, nullptr, g, inp, wc, N, C, vc);
  }
}

template void lm_head_forward<float>(float*, float*, float*, float*, const float*, const float*, const uint16_t*, float*,
                                     const int*, int, int, int, int, float);
template void lm_head_forward<double>(double*, double*, double*, double*, const double*, const double*, const uint16_t*,
                                      double*, const int*, int, int, int, int, float);
template void lm_head_backward<float>(float*, float*, float*, const float*, const float*, const uint16_t*, float*,
                                      const int*, const float*, const float*, const float*, const float*, int, int, int,
                                      int, float);
template void lm_head_backward<double>(double*, double*, double*, const double*, const double*, const uint16_t*, double*,
                                       const int*, const double*, const double*, const double*, const double*, int, int,
                                       int, int, float);

}  // namespace revenant::cpu
