// The rotation rope and rope_llama3 share: one thread per (row, head, pair i) owns dims i and
// i + hd/2 of its head, so the in-place update is race-free. The frequency of pair i is the caller's
// (plain, or with Llama 3's scaling), computed in the CPU reference's order of float operations.
#pragma once
#include "cuda/ops.cuh"

namespace revenant::cuda {

// sign +1: forward rotation; -1: its inverse (the backward). `inv_freq(i)` is pair i's frequency.
template <typename InvFreq>
__device__ inline void rope_rotate_pair(float* x, int B, int T, int heads, int hd, int stride, int pos0, float sign,
                                        const InvFreq& inv_freq) {
  const int half = hd / 2;
  const long idx = blockIdx.x * static_cast<long>(blockDim.x) + threadIdx.x;
  if (idx >= static_cast<long>(B) * T * heads * half) return;
  const int i = idx % half;
  const int h = (idx / half) % heads;
  const long bt = idx / (static_cast<long>(half) * heads);
  const float angle = static_cast<float>(pos0 + static_cast<int>(bt % T)) * inv_freq(i);
  const float c = cosf(angle), s = sign * sinf(angle);
  float* x0 = x + bt * stride + static_cast<long>(h) * hd + i;
  float* x1 = x0 + half;
  const float a = *x0, b = *x1;
  *x0 = a * c - b * s;
  *x1 = b * c + a * s;
}

// Pair i's plain inverse frequency, theta^(-2i/hd).
struct PlainInvFreq {
  float theta;
  int hd;
  __device__ float operator()(int i) const { return 1.0f / powf(theta, static_cast<float>(2 * i) / static_cast<float>(hd)); }
};

}  // namespace revenant::cuda
