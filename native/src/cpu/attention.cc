// attention: causal multi-head self-attention over a packed qkv tensor [B,T,3C] (q | k | v).
// Work is split by (batch, head): every output and every gradient of one head belongs to one
// task, so there are no races and no order-dependent sums.
#include <cmath>
#include <vector>

#include "cpu/fast_exp.h"
#include "cpu/ops.h"

namespace revenant::cpu {

// Copies head h of the k (which = 1) or v (which = 2) part of qkv for batch row b, transposed to
// [hs][T], so score loops run over contiguous keys (and vectorise) while each score still sums
// over i in order: the arithmetic is that of a plain dot product.
template <typename T>
static void gather_transposed(T* dst, const T* qkv, int b, int h, int which, int Tn, int C, int hs) {
  for (int t2 = 0; t2 < Tn; ++t2) {
    const T* src = qkv + (static_cast<long>(b) * Tn + t2) * 3 * C + which * C + h * hs;
    for (int i = 0; i < hs; ++i) dst[i * Tn + t2] = src[i];
  }
}

// scores[t2] = sum_i q[i] * kt[i][t2] for t2 in [0, n), summed over i in order.
template <typename T>
static void dot_rows(T* __restrict scores, const T* __restrict q, const T* __restrict kt, int n, int stride, int hs) {
  for (int t2 = 0; t2 < n; ++t2) scores[t2] = 0;
  for (int i = 0; i < hs; ++i) {
    const T qi = q[i];
    const T* __restrict row = kt + static_cast<long>(i) * stride;
    for (int t2 = 0; t2 < n; ++t2) scores[t2] += qi * row[t2];
  }
}

template <typename T>
void attention_forward(T* out, T* att, const T* qkv, int B, int Tn, int C, int NH) {
  const int hs = C / NH;
  const T scale = T(1) / std::sqrt(T(hs));
  for_chunks(B * NH, double(B) * NH * Tn * Tn * hs * 2, [&](int begin, int end) {
    std::vector<T> kt(static_cast<std::size_t>(hs) * Tn);
    for (int bh = begin; bh < end; ++bh) {
      const int b = bh / NH, h = bh % NH;
      gather_transposed(kt.data(), qkv, b, h, 1, Tn, C, hs);
      for (int t = 0; t < Tn; ++t) {
        const T* q = qkv + (static_cast<long>(b) * Tn + t) * 3 * C + h * hs;
        T* a = att + (static_cast<long>(bh) * Tn + t) * Tn;
        dot_rows(a, q, kt.data(), t + 1, Tn, hs);
        T maxv = -INFINITY;
        for (int t2 = 0; t2 <= t; ++t2) {
          a[t2] *= scale;
          if (a[t2] > maxv) maxv = a[t2];
        }
        T sum = 0;
        for (int t2 = 0; t2 <= t; ++t2) {
          a[t2] = exp_fast(a[t2] - maxv);
          sum += a[t2];
        }
        for (int t2 = 0; t2 <= t; ++t2) a[t2] /= sum;
        for (int t2 = t + 1; t2 < Tn; ++t2) a[t2] = 0;
        T* o = out + (static_cast<long>(b) * Tn + t) * C + h * hs;
        for (int i = 0; i < hs; ++i) o[i] = 0;
        for (int t2 = 0; t2 <= t; ++t2) {
          const T* v = qkv + (static_cast<long>(b) * Tn + t2) * 3 * C + 2 * C + h * hs;
          for (int i = 0; i < hs; ++i) o[i] += a[t2] * v[i];
        }
      }
    }
  });
}

template <typename T>
void attention_backward(T* dqkv, const T* dout, const T* qkv, const T* att, int B, int Tn, int C,
                        int NH) {
  const int hs = C / NH;
  const T scale = T(1) / std::sqrt(T(hs));
  for_chunks(B * NH, double(B) * NH * Tn * Tn * hs * 4, [&](int begin, int end) {
    std::vector<T> datt(Tn), vt(static_cast<std::size_t>(hs) * Tn);
    for (int bh = begin; bh < end; ++bh) {
      const int b = bh / NH, h = bh % NH;
      gather_transposed(vt.data(), qkv, b, h, 2, Tn, C, hs);
      for (int t = 0; t < Tn; ++t) {
        const long row = static_cast<long>(b) * Tn + t;
        const T* q = qkv + row * 3 * C + h * hs;
        T* dq = dqkv + row * 3 * C + h * hs;
        const T* a = att + (static_cast<long>(bh) * Tn + t) * Tn;
        const T* d = dout + row * C + h * hs;
        // Through out = sum att * v: datt[t2] = v[t2] . d, dv[t2] += att[t2] * d.
        dot_rows(datt.data(), d, vt.data(), t + 1, Tn, hs);
        for (int t2 = 0; t2 <= t; ++t2) {
          T* dv = dqkv + (static_cast<long>(b) * Tn + t2) * 3 * C + 2 * C + h * hs;
          for (int i = 0; i < hs; ++i) dv[i] += a[t2] * d[i];
        }
        // Through the softmax: dpre = att * (datt - sum(att * datt)).
        T dot = 0;
        for (int t2 = 0; t2 <= t; ++t2) dot += a[t2] * datt[t2];
        for (int t2 = 0; t2 <= t; ++t2) {
          const T dpre = a[t2] * (datt[t2] - dot) * scale;
          const long r2 = static_cast<long>(b) * Tn + t2;
          const T* k = qkv + r2 * 3 * C + C + h * hs;
          T* dk = dqkv + r2 * 3 * C + C + h * hs;
          for (int i = 0; i < hs; ++i) {
            dq[i] += dpre * k[i];
            dk[i] += dpre * q[i];
          }
        }
      }
    }
  });
}

// Same arithmetic, in the same order, as one row of attention_forward, so a cached decode gives
// the same numbers as a full forward pass.
template <typename T>
void attention_decode(T* out, T* kcache, T* vcache, const T* qkv, int B, int C, int NH, int pos,
                      int Tmax) {
  const int hs = C / NH;
  const T scale = T(1) / std::sqrt(T(hs));
  for (int b = 0; b < B; ++b) {
    const T* src = qkv + static_cast<long>(b) * 3 * C;
    T* kc = kcache + (static_cast<long>(b) * Tmax + pos) * C;
    T* vc = vcache + (static_cast<long>(b) * Tmax + pos) * C;
    for (int c = 0; c < C; ++c) {
      kc[c] = src[C + c];
      vc[c] = src[2 * C + c];
    }
  }
  for_chunks(B * NH, double(B) * NH * (pos + 1) * hs * 4, [&](int begin, int end) {
    std::vector<T> a(pos + 1);
    for (int bh = begin; bh < end; ++bh) {
      const int b = bh / NH, h = bh % NH;
      const T* q = qkv + static_cast<long>(b) * 3 * C + h * hs;
      T maxv = -INFINITY;
      for (int t2 = 0; t2 <= pos; ++t2) {
        const T* k = kcache + (static_cast<long>(b) * Tmax + t2) * C + h * hs;
        T dot = 0;
        for (int i = 0; i < hs; ++i) dot += q[i] * k[i];
        a[t2] = dot * scale;
        if (a[t2] > maxv) maxv = a[t2];
      }
      T sum = 0;
      for (int t2 = 0; t2 <= pos; ++t2) {
        a[t2] = exp_fast(a[t2] - maxv);
        sum += a[t2];
      }
      for (int t2 = 0; t2 <= pos; ++t2) a[t2] /= sum;
      T* o = out + static_cast<long>(b) * C + h * hs;
      for (int i = 0; i < hs; ++i) o[i] = 0;
      for (int t2 = 0; t2 <= pos; ++t2) {
        const T* v = vcache + (static_cast<long>(b) * Tmax + t2) * C + h * hs;
        for (int i = 0; i < hs; ++i) o[i] += a[t2] * v[i];
      }
    }
  });
}

template void attention_forward<float>(float*, float*, const float*, int, int, int, int);
template void attention_forward<double>(double*, double*, const double*, int, int, int, int);
template void attention_backward<float>(float*, const float*, const float*, const float*, int, int, int, int);
template void attention_backward<double>(double*, const double*, const double*, const double*, int, int, int, int);
template void attention_decode<float>(float*, float*, float*, const float*, int, int, int, int, int);
template void attention_decode<double>(double*, double*, double*, const double*, int, int, int, int, int);

}  // namespace revenant::cpu
