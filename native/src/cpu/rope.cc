// rope: rotary position embeddings in Hugging Face's non-interleaved ("rotate_half") convention.
// Within a head of width hd, dims i and i + hd/2 form a pair rotated by the angle
// pos * theta^(-2i/hd). Forward rotates by +angle, backward (the transpose of a rotation) by
// -angle; both work in place, which is why backward overwrites its gradient instead of adding.
#include <cmath>
#include <vector>

#include "cpu/ops.h"

namespace revenant::cpu {

// cos and sin of the hd/2 angles at position pos. Computed as Hugging Face does in float32
// (inverse frequency, then position times it, then cos/sin), so float runs match its tables.
template <typename T>
static void rope_angles(T* cs, T* sn, int pos, int hd, float theta) {
  for (int i = 0; i < hd / 2; ++i) {
    const T inv_freq = T(1) / std::pow(T(theta), T(2 * i) / T(hd));
    const T angle = T(pos) * inv_freq;
    cs[i] = std::cos(angle);
    sn[i] = std::sin(angle);
  }
}

// sign +1: forward rotation; -1: its inverse.
template <typename T>
static void rope_rotate(T* x, int B, int Tn, int heads, int hd, int stride, int pos0, float theta, T sign) {
  const int half = hd / 2;
  for_chunks(B * Tn, double(B) * Tn * (heads * hd * 3 + half * 40), [&](int begin, int end) {
    std::vector<T> cs(half), sn(half);
    for (int bt = begin; bt < end; ++bt) {
      rope_angles(cs.data(), sn.data(), pos0 + bt % Tn, hd, theta);
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

template <typename T>
void rope_forward(T* x, int B, int Tn, int heads, int hd, int stride, int pos0, float theta) {
  rope_rotate(x, B, Tn, heads, hd, stride, pos0, theta, T(1));
}

template <typename T>
void rope_backward(T* dx, int B, int Tn, int heads, int hd, int stride, int pos0, float theta) {
  rope_rotate(dx, B, Tn, heads, hd, stride, pos0, theta, T(-1));
}

template void rope_forward<float>(float*, int, int, int, int, int, int, float);
template void rope_forward<double>(double*, int, int, int, int, int, int, float);
template void rope_backward<float>(float*, int, int, int, int, int, int, float);
template void rope_backward<double>(double*, int, int, int, int, int, int, float);

}  // namespace revenant::cpu
