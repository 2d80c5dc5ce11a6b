// The rotation rope and rope_llama3 share (cpu/rope.cc, cpu/rope_llama3.cc): they differ only in
// the inverse frequencies, which each computes once per call.
#pragma once
#include <cmath>
#include <vector>

#include "cpu/ops.h"

namespace revenant::cpu {

// The inverse frequency of pair i as Hugging Face computes it in float32, theta^(-2i/hd), in T.
template <typename T>
T rope_inv_freq(int i, int hd, float theta) {
  return T(1) / std::pow(T(theta), T(2 * i) / T(hd));
}

// Rotates pairs (i, i + hd/2) of the first `heads` heads of each row by pos * inv_freq[i]
// (sign +1: forward rotation; -1: its inverse). The angle is position times inverse frequency,
// then cos/sin, in T: Hugging Face's order of operations, so float runs match its tables.
template <typename T>
void rope_rotate(T* x, int B, int Tn, int heads, int hd, int stride, int pos0, const std::vector<T>& inv_freq, T sign) {
  const int half = hd / 2;
  for_chunks(B * Tn, double(B) * Tn * (heads * hd * 3 + half * 40), [&](int begin, int end) {
    std::vector<T> cs(half), sn(half);
    for (int bt = begin; bt < end; ++bt) {
      const int pos = pos0 + bt % Tn;
      for (int i = 0; i < half; ++i) {
        const T angle = T(pos) * inv_freq[i];
        cs[i] = std::cos(angle);
        sn[i] = std::sin(angle);
      }
      T* row = x + static_cast<long>(bt) * stride;
      for (int h = 0; h < heads; ++h) {
        T* x0 = row + static_cast<long>(h) * hd;
        T* x1 = x0 + half;
        for (int i = 0; i < half; ++i) {
          const T a = x0[i], b = x1[i], s = sign * sn[i];
          x0[i] = a * cs[i] - b * s;
          x1[i] = b * cs[i] + a * s;
        }
      }
    }
  });
}

}  // namespace revenant::cpu
