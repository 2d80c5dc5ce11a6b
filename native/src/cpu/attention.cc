// attention: causal multi-head self-attention over a packed qkv tensor [B,T,3C] (q | k | v).
// Work is split by (batch, head): every output and every gradient of one head belongs to one
// task, so there are no races and no order-dependent sums.
#include <cmath>
#include <vector>

#include "cpu/ops.h"

namespace revenant::cpu {

template <typename T>
void attention_forward(T* out, T* att, const T* qkv, int B, int Tn, int C, int NH) {
  const int hs = C / NH;
  const T scale = T(1) / std::sqrt(T(hs));
  for_chunks(B * NH, double(B) * NH * Tn * Tn * hs * 2, [&](int begin, int end) {
    for (int bh = begin; bh < end; ++bh) {
      const int b = bh / NH, h = bh % NH;
      for (int t = 0; t < Tn; ++t) {
        const T* q = qkv + (static_cast<long>(b) * Tn + t) * 3 * C + h * hs;
        T* a = att + (static_cast<long>(bh) * Tn + t) * Tn;
        T maxv = -INFINITY;
        for (int t2 = 0; t2 <= t; ++t2) {
          const T* k = qkv + (static_cast<long>(b) * Tn + t2) * 3 * C + C + h * hs;
          T dot = 0;
          for (int i = 0; i < hs; ++i) dot += q[i] * k[i];
          a[t2] = dot * scale;
          if (a[t2] > maxv) maxv = a[t2];
        }
        T sum = 0;
        for (int t2 = 0; t2 <= t; ++t2) {
          a[t2] = std::exp(a[t2] - maxv);
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
    std::vector<T> datt(Tn);
    for (int bh = begin; bh < end; ++bh) {
      const int b = bh / NH, h = bh % NH;
      for (int t = 0; t < Tn; ++t) {
        const long row = static_cast<long>(b) * Tn + t;
        const T* q = qkv + row * 3 * C + h * hs;
        T* dq = dqkv + row * 3 * C + h * hs;
        const T* a = att + (static_cast<long>(bh) * Tn + t) * Tn;
        const T* d = dout + row * C + h * hs;
        // Through out = sum att * v.
        for (int t2 = 0; t2 <= t; ++t2) {
          const long r2 = static_cast<long>(b) * Tn + t2;
          const T* v = qkv + r2 * 3 * C + 2 * C + h * hs;
          T* dv = dqkv + r2 * 3 * C + 2 * C + h * hs;
          T s = 0;
          for (int i = 0; i < hs; ++i) {
            s += v[i] * d[i];
            dv[i] += a[t2] * d[i];
          }
          datt[t2] = s;
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
        a[t2] = std::exp(a[t2] - maxv);
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
