// head_rmsnorm: RMSNorm over each attention head of width hd inside packed rows (Qwen3's q_norm
// and k_norm, applied to q and k before RoPE): out = x * rstd * w per head, rstd =
// 1 / sqrt(mean(x^2) + eps) over the head's hd values, w[hd] shared by every head. Works in place
// (out == inp) for decoding, where no backward follows; the backward works in place on the
// gradient, as rope's does, so the two chain on the same dqkv buffer.
#include <cmath>

#include "cpu/ops.h"

namespace revenant::cpu {

template <typename T>
void head_rmsnorm_forward(T* out, T* rstd, const T* inp, const T* w, int N, int heads, int hd, int stride, float eps) {
  for_chunks(N, double(N) * heads * hd * 4, [&](int begin, int end) {
    for (int n = begin; n < end; ++n)
      for (int h = 0; h < heads; ++h) {
        const long at = static_cast<long>(n) * stride + static_cast<long>(h) * hd;
        const T* x = inp + at;
        T ss = 0;
        for (int c = 0; c < hd; ++c) ss += x[c] * x[c];
        const T s = T(1) / std::sqrt(ss / hd + T(eps));
        T* o = out + at;
        for (int c = 0; c < hd; ++c) o[c] = x[c] * s * w[c];  // reads x[c] before writing o[c]: in place is safe
        rstd[static_cast<long>(n) * heads + h] = s;
      }
  });
}

template <typename T>
void head_rmsnorm_backward(T* dx, T* dw, const T* inp, const T* w, const T* rstd, int N, int heads, int hd, int stride) {
  // Weight gradient first, while dx still holds the output's gradient: split by channel, rows
  // and heads summed in order (deterministic for any thread count).
  for_chunks(hd, double(N) * heads * hd * 3, [&](int c0, int c1) {
    for (int n = 0; n < N; ++n)
      for (int h = 0; h < heads; ++h) {
        const long at = static_cast<long>(n) * stride + static_cast<long>(h) * hd;
        const T r = rstd[static_cast<long>(n) * heads + h];
        for (int c = c0; c < c1; ++c) dw[c] += dx[at + c] * inp[at + c] * r;
      }
  });
  // Input gradient per head, as rmsnorm's: dx = (d * w - norm * mean(d * w * norm)) * rstd, the
  // mean taken over the head before any of its entries is overwritten.
  for_chunks(N, double(N) * heads * hd * 6, [&](int begin, int end) {
    for (int n = begin; n < end; ++n)
      for (int h = 0; h < heads; ++h) {
        const long at = static_cast<long>(n) * stride + static_cast<long>(h) * hd;
        const T* x = inp + at;
        T* d = dx + at;
        const T r = rstd[static_cast<long>(n) * heads + h];
        T mean = 0;
        for (int c = 0; c < hd; ++c) mean += d[c] * w[c] * (x[c] * r);
        mean /= hd;
        for (int c = 0; c < hd; ++c) d[c] = (d[c] * w[c] - x[c] * r * mean) * r;
      }
  });
}

template void head_rmsnorm_forward<float>(float*, float*, const float*, const float*, int, int, int, int, float);
template void head_rmsnorm_forward<double>(double*, double*, const double*, const double*, int, int, int, int, float);
template void head_rmsnorm_backward<float>(float*, float*, const float*, const float*, const float*, int, int, int, int);
template void head_rmsnorm_backward<double>(double*, double*, const double*, const double*, const double*, int, int, int, int);

}  // namespace revenant::cpu
