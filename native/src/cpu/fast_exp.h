// A vectorisable exp for the CPU ops' float paths; float64 (the gradient-check reference) keeps
// std::exp. Used where an exp sits inside a hot elementwise loop (GELU, attention softmax).
#pragma once
#include <cmath>
#include <cstdint>
#include <cstring>

namespace revenant::cpu {

// exp for float written without branches or calls, so the compiler vectorises the loops using it
// (glibc's expf is scalar). x = n ln2 + r with |r| <= ln2/2, then a degree-7 Taylor polynomial
// (truncation < 1e-8 relative) scaled by 2^n built in the exponent bits. n comes from the
// 1.5 * 2^23 rounding trick, which needs no rounding instruction. Inputs are clamped to
// [-87, 88] (no overflow, no denormals).
inline float exp_branchless(float x) {
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

inline float exp_fast(float x) { return exp_branchless(x); }
inline double exp_fast(double x) { return std::exp(x); }  // float64: the exact reference

}  // namespace revenant::cpu
