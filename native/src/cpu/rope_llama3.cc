// rope_llama3: rope whose inverse frequencies follow Llama 3's scaling (Hugging Face's
// _compute_llama3_parameters): high frequencies (wavelength below original_context /
// high_freq_factor) kept, low ones (wavelength above original_context / low_freq_factor) divided
// by factor, a linear blend of the two in between. The rotation is rope's (cpu/rope.h).
#include "cpu/rope.h"

namespace revenant::cpu {

// In T, in Hugging Face's order (wavelength from the inverse frequency, then the comparisons, then
// the blend), so a float run follows its float32 tables and a double run is the exact formula.
template <typename T>
static std::vector<T> llama3_inv_freq(int hd, float theta, const RopeScaling& s) {
  const T pi2 = T(2) * T(3.14159265358979323846);
  const T old_context = T(s.original_context), low = T(s.low_freq_factor), high = T(s.high_freq_factor);
  const T low_freq_wavelen = old_context / low, high_freq_wavelen = old_context / high;
  std::vector<T> f(hd / 2);
  for (int i = 0; i < hd / 2; ++i) {
    const T inv = rope_inv_freq<T>(i, hd, theta);
    const T wavelen = pi2 / inv;
    if (wavelen < high_freq_wavelen) {
      f[i] = inv;
    } else if (wavelen > low_freq_wavelen) {
      f[i] = inv / T(s.factor);
    } else {
      const T smooth = (old_context / wavelen - low) / (high - low);
      f[i] = (T(1) - smooth) * inv / T(s.factor) + smooth * inv;
    }
  }
  return f;
}

template <typename T>
void rope_llama3_forward(T* x, int B, int Tn, int heads, int hd, int stride, int pos0, float theta, RopeScaling scaling) {
  rope_rotate(x, B, Tn, heads, hd, stride, pos0, llama3_inv_freq<T>(hd, theta, scaling), T(1));
}

template <typename T>
void rope_llama3_backward(T* dx, int B, int Tn, int heads, int hd, int stride, int pos0, float theta, RopeScaling scaling) {
  rope_rotate(dx, B, Tn, heads, hd, stride, pos0, llama3_inv_freq<T>(hd, theta, scaling), T(-1));
}

template void rope_llama3_forward<float>(float*, int, int, int, int, int, int, float, RopeScaling);
template void rope_llama3_forward<double>(double*, int, int, int, int, int, int, float, RopeScaling);
template void rope_llama3_backward<float>(float*, int, int, int, int, int, int, float, RopeScaling);
template void rope_llama3_backward<double>(double*, int, int, int, int, int, int, float, RopeScaling);

}  // namespace revenant::cpu
