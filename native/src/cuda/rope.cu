// rope: rotary position embeddings, in place (CUDA mirror of cpu/rope.cc). One thread per
// (row, head, pair i): it owns dims i and i + hd/2 of its head, so the in-place update is race-free.
#include "cuda/ops.cuh"

namespace revenant::cuda {

// sign +1: forward rotation; -1: its inverse (the backward).
__global__ void rope_kernel(float* x, int B, int T, int heads, int hd, int stride, int pos0, float theta, float sign) {
  const int half = hd / 2;
  const long idx = blockIdx.x * static_cast<long>(blockDim.x) + threadIdx.x;
  if (idx >= static_cast<long>(B) * T * heads * half) return;
  const int i = idx % half;
  const int h = (idx / half) % heads;
  const long bt = idx / (static_cast<long>(half) * heads);
  // Same order of operations as the CPU: inverse frequency, then position times it, then cos/sin.
  const float inv_freq = 1.0f / powf(theta, static_cast<float>(2 * i) / static_cast<float>(hd));
  const float angle = static_cast<float>(pos0 + static_cast<int>(bt % T)) * inv_freq;
  const float c = cosf(angle), s = sign * sinf(angle);
  float* x0 = x + bt * stride + static_cast<long>(h) * hd + i;
  float* x1 = x0 + half;
  const float a = *x0, b = *x1;
  *x0 = a * c - b * s;
  *x1 = b * c + a * s;
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
