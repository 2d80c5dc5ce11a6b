// rope_llama3: rope with Llama 3's frequency scaling, in place (CUDA mirror of cpu/rope_llama3.cc).
// One thread per (row, head, pair i), as in rope.cu: it owns dims i and i + hd/2 of its head.
#include "cuda/rope.cuh"

namespace revenant::cuda {

// The scaled inverse frequency of pair i, in cpu/rope_llama3.cc's order of float operations.
__device__ static float llama3_inv_freq(int i, int hd, float theta, RopeScaling s) {
  const float inv = 1.0f / powf(theta, static_cast<float>(2 * i) / static_cast<float>(hd));
  const float wavelen = (2.0f * 3.14159265358979323846f) / inv;
  const float low_freq_wavelen = s.original_context / s.low_freq_factor;
  const float high_freq_wavelen = s.original_context / s.high_freq_factor;
  if (wavelen < high_freq_wavelen) return inv;
  if (wavelen > low_freq_wavelen) return inv / s.factor;
  const float smooth = (s.original_context / wavelen - s.low_freq_factor) / (s.high_freq_factor - s.low_freq_factor);
  return (1.0f - smooth) * inv / s.factor + smooth * inv;
}

// Pair i's frequency with the scaling, as llama3_inv_freq gives it.
struct Llama3InvFreq {
  float theta;
  int hd;
  RopeScaling scaling;
  __device__ float operator()(int i) const { return llama3_inv_freq(i, hd, theta, scaling); }
};

// sign +1: forward rotation; -1: its inverse (the backward).
__global__ void rope_llama3_kernel(float* x, int B, int T, int heads, int hd, int stride, int pos0, float theta,
                                   RopeScaling scaling, float sign) {
  rope_rotate_pair(x, B, T, heads, hd, stride, pos0, sign, Llama3InvFreq{theta, hd, scaling});
}

static void rope_llama3(float* x, int B, int T, int heads, int hd, int stride, int pos0, float theta, RopeScaling scaling,
                        float sign, const char* op) {
  const long n = static_cast<long>(B) * T * heads * (hd / 2);
  if (n == 0) return;
  RV_LAUNCH(rope_llama3_kernel, blocks_for(n, 256), 256)(x, B, T, heads, hd, stride, pos0, theta, scaling, sign);
  RV_CUDA_LAUNCHED(op);
}

void rope_llama3_forward(float* x, int B, int T, int heads, int hd, int stride, int pos0, float theta, RopeScaling scaling) {
  rope_llama3(x, B, T, heads, hd, stride, pos0, theta, scaling, 1.0f, "rope_llama3_forward");
}

void rope_llama3_backward(float* dx, int B, int T, int heads, int hd, int stride, int pos0, float theta, RopeScaling scaling) {
  rope_llama3(dx, B, T, heads, hd, stride, pos0, theta, scaling, -1.0f, "rope_llama3_backward");
}

}  // namespace revenant::cuda
