// gelu: the tanh approximation used by GPT-2.
#include <cmath>

#include "cpu/ops.h"

namespace revenant::cpu {

// tanh through one exp: glibc's expf is several times faster than its tanhf, and GELU is the
// widest elementwise op in the model. Saturates cleanly (exp overflow gives 1, underflow -1).
template <typename T>
static inline T tanh_via_exp(T u) {
  return T(1) - T(2) / (T(1) + std::exp(T(2) * u));
}

template <typename T>
void gelu_forward(T* out, const T* inp, int N) {
  const T s = std::sqrt(T(2) / T(M_PI));
  for_chunks(N, double(N) * 20, [&](int begin, int end) {
    for (int i = begin; i < end; ++i) {
      const T x = inp[i];
      out[i] = T(0.5) * x * (T(1) + tanh_via_exp(s * (x + T(0.044715) * x * x * x)));
    }
  });
}

template <typename T>
void gelu_backward(T* dinp, const T* inp, const T* dout, int N) {
  const T s = std::sqrt(T(2) / T(M_PI));
  for_chunks(N, double(N) * 30, [&](int begin, int end) {
    for (int i = begin; i < end; ++i) {
      const T x = inp[i];
      const T th = tanh_via_exp(s * (x + T(0.044715) * x * x * x));
      const T sech2 = T(1) - th * th;
      const T local = T(0.5) * (T(1) + th) + T(0.5) * x * sech2 * s * (T(1) + T(3 * 0.044715) * x * x);
      dinp[i] += local * dout[i];
    }
  });
}

template void gelu_forward<float>(float*, const float*, int);
template void gelu_forward<double>(double*, const double*, int);
template void gelu_backward<float>(float*, const float*, const float*, int);
template void gelu_backward<double>(double*, const double*, const double*, int);

}  // namespace revenant::cpu
