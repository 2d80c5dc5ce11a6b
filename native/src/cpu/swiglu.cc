// swiglu: the gated MLP activation of Llama, out = silu(gate) * up, over a packed input whose rows
// are [gate (I) | up (I)] (one matrix product makes both), giving rows of I.
#include <cmath>

#include "cpu/fast_exp.h"
#include "cpu/ops.h"

namespace revenant::cpu {

template <typename T>
static inline T sigmoid(T x) {
  return T(1) / (T(1) + exp_fast(-x));
}

template <typename T>
void swiglu_forward(T* out, const T* inp, int N, int I) {
  for_chunks(N, double(N) * I * 20, [&](int begin, int end) {
    for (int n = begin; n < end; ++n) {
      const T* __restrict gate = inp + static_cast<long>(n) * 2 * I;
      const T* __restrict up = gate + I;
      T* __restrict o = out + static_cast<long>(n) * I;
      for (int i = 0; i < I; ++i) o[i] = gate[i] * sigmoid(gate[i]) * up[i];
    }
  });
}

// d silu(g)/dg = s * (1 + g * (1 - s)) with s = sigmoid(g).
template <typename T>
void swiglu_backward(T* dinp, const T* inp, const T* dout, int N, int I) {
  for_chunks(N, double(N) * I * 30, [&](int begin, int end) {
    for (int n = begin; n < end; ++n) {
      const T* __restrict gate = inp + static_cast<long>(n) * 2 * I;
      const T* __restrict up = gate + I;
      const T* __restrict d = dout + static_cast<long>(n) * I;
      T* __restrict dgate = dinp + static_cast<long>(n) * 2 * I;
      T* __restrict dup = dgate + I;
      for (int i = 0; i < I; ++i) {
        const T g = gate[i], s = sigmoid(g);
        dgate[i] += d[i] * up[i] * s * (T(1) + g * (T(1) - s));
        dup[i] += d[i] * g * s;
      }
    }
  });
}

template void swiglu_forward<float>(float*, const float*, int, int);
template void swiglu_forward<double>(double*, const double*, int, int);
template void swiglu_backward<float>(float*, const float*, const float*, int, int);
template void swiglu_backward<double>(double*, const double*, const double*, int, int);

}  // namespace revenant::cpu
