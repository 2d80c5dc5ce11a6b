// layernorm: per-row normalisation with learned scale and shift (eps 1e-5, as in GPT-2).
#include <cmath>

#include "cpu/ops.h"

namespace revenant::cpu {

template <typename T>
void layernorm_forward(T* out, T* mean, T* rstd, const T* inp, const T* w, const T* b, int N,
                       int C) {
  for_chunks(N, double(N) * C * 6, [&](int begin, int end) {
    for (int n = begin; n < end; ++n) {
      const T* x = inp + static_cast<long>(n) * C;
      T m = 0;
      for (int c = 0; c < C; ++c) m += x[c];
      m /= C;
      T var = 0;
      for (int c = 0; c < C; ++c) var += (x[c] - m) * (x[c] - m);
      var /= C;
      const T s = T(1) / std::sqrt(var + T(1e-5));
      T* o = out + static_cast<long>(n) * C;
      for (int c = 0; c < C; ++c) o[c] = (x[c] - m) * s * w[c] + b[c];
      mean[n] = m;
      rstd[n] = s;
    }
  });
}

template <typename T>
void layernorm_backward(T* dinp, T* dw, T* db, const T* dout, const T* inp, const T* w,
                        const T* mean, const T* rstd, int N, int C) {
  // Input gradient: independent per row.
  for_chunks(N, double(N) * C * 8, [&](int begin, int end) {
    for (int n = begin; n < end; ++n) {
      const T* x = inp + static_cast<long>(n) * C;
      const T* d = dout + static_cast<long>(n) * C;
      T dnorm_mean = 0, dnorm_norm_mean = 0;
      for (int c = 0; c < C; ++c) {
        const T norm = (x[c] - mean[n]) * rstd[n];
        dnorm_mean += d[c] * w[c];
        dnorm_norm_mean += d[c] * w[c] * norm;
      }
      dnorm_mean /= C;
      dnorm_norm_mean /= C;
      T* di = dinp + static_cast<long>(n) * C;
      for (int c = 0; c < C; ++c) {
        const T norm = (x[c] - mean[n]) * rstd[n];
        di[c] += (d[c] * w[c] - dnorm_mean - norm * dnorm_norm_mean) * rstd[n];
      }
    }
  });
  // Weight gradients sum over rows: split by channel, rows in order.
  for_chunks(C, double(N) * C * 4, [&](int c0, int c1) {
    for (int n = 0; n < N; ++n) {
      const T* x = inp + static_cast<long>(n) * C;
      const T* d = dout + static_cast<long>(n) * C;
      for (int c = c0; c < c1; ++c) {
        dw[c] += d[c] * (x[c] - mean[n]) * rstd[n];
        db[c] += d[c];
      }
    }
  });
}

template void layernorm_forward<float>(float*, float*, float*, const float*, const float*, const float*, int, int);
template void layernorm_forward<double>(double*, double*, double*, const double*, const double*, const double*, int, int);
template void layernorm_backward<float>(float*, float*, float*, const float*, const float*, const float*, const float*, const float*, int, int);
template void layernorm_backward<double>(double*, double*, double*, const double*, const double*, const double*, const double*, const double*, int, int);

}  // namespace revenant::cpu
