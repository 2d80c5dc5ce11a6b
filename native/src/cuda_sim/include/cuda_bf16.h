// The CUDA emulator's cuda_bf16.h: __nv_bfloat16 and its conversions, bit-exact with CUDA's
// definitions: float to bf16 rounds to nearest, ties to even (a NaN becomes the canonical 0x7FFF),
// bf16 to float is exact (the 16 bits become the high half).
#pragma once
#include <cstdint>
#include <cstring>

namespace cuda_sim {
inline unsigned short float_to_bf16_bits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, sizeof u);
  if ((u & 0x7fffffffu) > 0x7f800000u) return 0x7fff;  // NaN
  u += 0x7fffu + ((u >> 16) & 1u);                      // round to nearest, ties to even
  return static_cast<unsigned short>(u >> 16);
}
inline float bf16_bits_to_float(unsigned short b) {
  const uint32_t u = static_cast<uint32_t>(b) << 16;
  float f;
  std::memcpy(&f, &u, sizeof f);
  return f;
}
}  // namespace cuda_sim

// No constructors (CUDA's type has some): a class with constructors makes GCC guard every
// `__shared__` (thread_local) array of it with an initialisation flag, which the race check would see
// as shared memory that every thread writes. Conversions go through the functions below.
struct __nv_bfloat16 {
  unsigned short __x;
  operator float() const { return cuda_sim::bf16_bits_to_float(__x); }
};

inline __nv_bfloat16 __float2bfloat16_rn(float f) { return __nv_bfloat16{cuda_sim::float_to_bf16_bits(f)}; }
inline __nv_bfloat16 __float2bfloat16(float f) { return __float2bfloat16_rn(f); }
inline float __bfloat162float(__nv_bfloat16 b) { return cuda_sim::bf16_bits_to_float(b.__x); }
inline unsigned short __bfloat16_as_ushort(__nv_bfloat16 b) { return b.__x; }
inline __nv_bfloat16 __ushort_as_bfloat16(unsigned short u) { return __nv_bfloat16{u}; }
