// gelu: the tanh approximation used by GPT-2.
#include <cmath>
#include <cstdint>
#include <cstring>

#include "cpu/ops.h"

namespace revenant::cpu {

// exp for float written without branches or calls, so the compiler vectorises the GELU loops
// (glibc's expf is scalar, and GELU is the widest elementwise op in the model). x = n ln2 + r
// with |r| <= ln2/2, then a degree-7 Taylor polynomial (truncation < 1e-8 relative) scaled by
// 2^n built in the exponent bits. n comes from the 1.5 * 2^23 rounding trick, which needs no
// rounding instruction. Inputs are clamped to [-87, 88] (no overflow, no denormals).
static inline float exp_branchless(float x) {
  x = x < -87.0f ? -87.0f : (x > 88.0f ? 88.0f : x);
  const float shifter = 12582912.0f;  // 1.5 * 2^23: adding it rounds to an integer
  const float t = x * 1.44269504088896341f + shifter;
  const float n = t - shifter;
  const float r = (x - n * 0.693145751953125f) - n * 1.428606765330187e-06f;  // two-part ln2
  float p = 1.0f / 5040;
  p = p * r + 1.0f / 720;
  p = p * r + 1.0f / 120;
  p = p * r + 1.0f / 24;
  p = p * r + 1.0f / 6;
  p = p * r + 0.5f;
  p = p * r + 1.0f;
  p = p * r + 1.0f;
  int32_t tb;
  std::memcpy(&tb, &t, sizeof tb);
  const int32_t bits = (tb - 0x4B400000 + 127) << 23;  // low mantissa bits of t hold n
  float scale;
  std::memcpy(&scale, &bits, sizeof scale);
  return p * scale;
}

static inline float exp_fast(float x) { return exp_branchless(x); }
static inline double exp_fast(double x) { return std::exp(x); }  // float64: the exact reference

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
