// gelu: the tanh approximation used by GPT-2.
#include <cmath>

#include "cpu/fast_exp.h"

#include "cpu/ops.h"

namespace revenant::cpu {

// tanh through one exp (exp overflow or underflow saturates cleanly to +-1).
template <typename T>
static inline T tanh_via_exp(T u) {
  return T(1) - T(2) / (T(1) + exp_fast(T(2) * u));
}

// The loops take their pointers as __restrict locals so the compiler may vectorise them.
template <typename T>
static void gelu_forward_range(T* __restrict out, const T* __restrict inp, int n) {
  const T s = std::sqrt(T(2) / T(M_PI));
  for (int i = 0; i < n; ++i) {
    const T x = inp[i];
    out[i] = T(0.5) * x * (T(1) + tanh_via_exp(s * (x + T(0.044715) * x * x * x)));
  }
}

template <typename T>
static void gelu_backward_range(T* __restrict dinp, const T* __restrict inp, const T* __restrict dout, int n) {
  const T s = std::sqrt(T(2) / T(M_PI));
  for (int i = 0; i < n; ++i) {
    const T x = inp[i];
    const T th = tanh_via_exp(s * (x + T(0.044715) * x * x * x));
    const T sech2 = T(1) - th * th;
    const T local = T(0.5) * (T(1) + th) + T(0.5) * x * sech2 * s * (T(1) + T(3 * 0.044715) * x * x);
    dinp[i] += local * dout[i];
  }
}

template <typename T>
void gelu_forward(T* out, const T* inp, int N) {
  for_chunks(N, double(N) * 20, [&](int begin, int end) { gelu_forward_range(out + begin, inp + begin, end - begin); });
}

template <typename T>
void gelu_backward(T* dinp, const T* inp, const T* dout, int N) {
  for_chunks(N, double(N) * 30, [&](int begin, int end) {
    gelu_backward_range(dinp + begin, inp + begin, dout + begin, end - begin);
  });
}

template void gelu_forward<float>(float*, const float*, int);
template void gelu_forward<double>(double*, const double*, int);
template void gelu_backward<float>(float*, const float*, const float*, int);
template void gelu_backward<double>(double*, const double*, const double*, int);

}  // namespace revenant::cpu
