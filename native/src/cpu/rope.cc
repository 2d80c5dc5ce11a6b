// rope: rotary position embeddings in Hugging Face's non-interleaved ("rotate_half") convention.
// Within a head of width hd, dims i and i + hd/2 form a pair rotated by the angle
// pos * theta^(-2i/hd). Forward rotates by +angle, backward (the transpose of a rotation) by
// -angle; both work in place, which is why backward overwrites its gradient instead of adding.
#include "cpu/rope.h"

namespace revenant::cpu {

template <typename T>
static std::vector<T> plain_inv_freq(int hd, float theta) {
  std::vector<T> f(hd / 2);
  for (int i = 0; i < hd / 2; ++i) f[i] = rope_inv_freq<T>(i, hd, theta);
  return f;
}

template <typename T>
void rope_forward(T* x, int B, int Tn, int heads, int hd, int stride, int pos0, float theta) {
  rope_rotate(x, B, Tn, heads, hd, stride, pos0, plain_inv_freq<T>(hd, theta), T(1));
}

template <typename T>
void rope_backward(T* dx, int B, int Tn, int heads, int hd, int stride, int pos0, float theta) {
  rope_rotate(dx, B, Tn, heads, hd, stride, pos0, plain_inv_freq<T>(hd, theta), T(-1));
}

template void rope_forward<float>(float*, int, int, int, int, int, int, float);
template void rope_forward<double>(double*, int, int, int, int, int, int, float);
template void rope_backward<float>(float*, int, int, int, int, int, int, float);
template void rope_backward<double>(double*, int, int, int, int, int, int, float);

}  // namespace revenant::cpu
