// rope: rotary position embeddings, in place (CUDA mirror of cpu/rope.cc). One thread per
// (row, head, pair i): it owns dims i and i + hd/2 of its head, so the in-place update is race-free.
#include "cuda/rope.cuh"

namespace revenant::cuda {

// sign +1: forward rotation; -1: its inverse (the backward).
__global__ void rope_kernel(float* x, int B, int T, int heads, int hd, int stride, int pos0, float theta, float sign) {
  rope_rotate_pair(x, B, T, heads, hd, stride, pos0, sign, PlainInvFreq{theta, hd});
}

static void rope(float* x, int B, int T, int heads, int hd, int stride, int pos0, float theta, float sign, const char* op) {
  const long n = static_cast<long>(B) * T * heads * (hd / 2);
  if (n == 0) return;
  RV_LAUNCH(rope_kernel, blocks_for(n, 256), 256)(x, B, T, heads, hd, stride, pos0, theta, sign);
  RV_CUDA_LAUNCHED(op);
}

void rope_forward(float* x, int B, int T, int heads, int hd, int stride, int pos0, float theta) {
  rope(x, B, T, heads, hd, stride, pos0, theta, 1.0f, "rope_forward");
}

void rope_backward(float* dx, int B, int T, int heads, int hd, int stride, int pos0, float theta) {
  rope(dx, B, T, heads, hd, stride, pos0, theta, -1.0f, "rope_backward");
}

}  // namespace revenant::cuda
