// rmsnorm: per-row root-mean-square normalisation with a learned scale and no shift (Llama):
// out = x * rstd * w, rstd = 1 / sqrt(mean(x^2) + eps). rstd is saved for backward.
#include <cmath>

#include "cpu/ops.h"

namespace revenant::cpu {

template <typename T>
void rmsnorm_forward(T* out, T* rstd, const T* inp, const T* w, int N, int C, float eps) {
  for_chunks(N, double(N) * C * 4, [&](int begin, int end) {
    for (int n = begin; n < end; ++n) {
      const T* x = inp + static_cast<long>(n) * C;
      T ss = 0;
      for (int c = 0; c < C; ++c) ss += x[c] * x[c];
      const T s = T(1) / std::sqrt(ss / C + T(eps));
      T* o = out + static_cast<long>(n) * C;
      for (int c = 0; c < C; ++c) o[c] = x[c] * s * w[c];
      rstd[n] = s;
    }
  });
}

template <typename T>
void rmsnorm_backward(T* dinp, T* dw, const T* dout, const T* inp, const T* w, const T* rstd, int N,
                      int C) {
  // Input gradient, independent per row: with norm = x * rstd,
  // dx = (d * w - norm * mean(d * w * norm)) * rstd (the mean term is rstd's own dependence on x).
  for_chunks(N, double(N) * C * 6, [&](int begin, int end) {
    for (int n = begin; n < end; ++n) {
      const T* x = inp + static_cast<long>(n) * C;
      const T* d = dout + static_cast<long>(n) * C;
      const T r = rstd[n];
      T dnorm_norm_mean = 0;
      for (int c = 0; c < C; ++c) dnorm_norm_mean += d[c] * w[c] * (x[c] * r);
      dnorm_norm_mean /= C;
      T* di = dinp + static_cast<long>(n) * C;
      for (int c = 0; c < C; ++c) di[c] += (d[c] * w[c] - x[c] * r * dnorm_norm_mean) * r;
    }
  });
  if (!dw) return;  // a frozen weight (under LoRA)
  // Weight gradient sums over rows: split by channel, rows in order.
  for_chunks(C, double(N) * C * 3, [&](int c0, int c1) {
    for (int n = 0; n < N; ++n) {
      const T* x = inp + static_cast<long>(n) * C;
      const T* d = dout + static_cast<long>(n) * C;
      for (int c = c0; c < c1; ++c) dw[c] += d[c] * x[c] * rstd[n];
    }
  });
}

template void rmsnorm_forward<float>(float*, float*, const float*, const float*, int, int, float);
template void rmsnorm_forward<double>(double*, double*, const double*, const double*, int, int, float);
template void rmsnorm_backward<float>(float*, float*, const float*, const float*, const float*, const float*, int, int);
template void rmsnorm_backward<double>(double*, double*, const double*, const double*, const double*, const double*, int, int);

}  // namespace revenant::cpu
