// gelu: the tanh approximation used by GPT-2.
#include <cmath>

#include "cpu/ops.h"

namespace revenant::cpu {

template <typename T>
void gelu_forward(T* out, const T* inp, int N) {
  const T s = std::sqrt(T(2) / T(M_PI));
  for_chunks(N, double(N) * 20, [&](int begin, int end) {
    for (int i = begin; i < end; ++i) {
      const T x = inp[i];
      out[i] = T(0.5) * x * (T(1) + std::tanh(s * (x + T(0.044715) * x * x * x)));
    }
  });
}

template <typename T>
void gelu_backward(T* dinp, const T* inp, const T* dout, int N) {
  const T s = std::sqrt(T(2) / T(M_PI));
  for_chunks(N, double(N) * 30, [&](int begin, int end) {
    for (int i = begin; i < end; ++i) {
      const T x = inp[i];
      const T th = std::tanh(s * (x + T(0.044715) * x * x * x));
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
