// embedding: token plus position embeddings; wpe null means no position table (CUDA mirror of
// cpu/embedding.cc).
#include "cuda/ops.cuh"

namespace revenant::cuda {

__global__ void embedding_forward_kernel(float* out, const int* tokens, const float* wte, const float* wpe, int B,
                                         int T, int C, int pos0) {
  const long i = blockIdx.x * static_cast<long>(blockDim.x) + threadIdx.x;
  if (i >= static_cast<long>(B) * T * C) return;
  const int c = i % C;
  const long bt = i / C;
  const int t = bt % T;
  const float te = wte[static_cast<long>(tokens[bt]) * C + c];
  out[i] = wpe ? te + wpe[static_cast<long>(pos0 + t) * C + c] : te;
}

// One thread per channel walks the positions in order: shared token rows without atomics.
__global__ void embedding_backward_kernel(float* dwte, float* dwpe, const float* dout, const int* tokens, int B, int T,
                                          int C, int pos0) {
  const int c = blockIdx.x * blockDim.x + threadIdx.x;
  if (c >= C) return;
  for (long bt = 0; bt < static_cast<long>(B) * T; ++bt) {
    const float d = dout[bt * C + c];
    dwte[static_cast<long>(tokens[bt]) * C + c] += d;
    if (dwpe) dwpe[static_cast<long>(pos0 + bt % T) * C + c] += d;
  }
}

void embedding_forward(float* out, const int* tokens, const float* wte, const float* wpe, int B, int T, int C, int pos0) {
  const long n = static_cast<long>(B) * T * C;
  RV_LAUNCH(embedding_forward_kernel, blocks_for(n, 256), 256)(out, tokens, wte, wpe, B, T, C, pos0);
  RV_CUDA_LAUNCHED("embedding_forward");
}

void embedding_backward(float* dwte, float* dwpe, const float* dout, const int* tokens, int B, int T, int C, int pos0) {
  RV_LAUNCH(embedding_backward_kernel, blocks_for(C, 64), 64)(dwte, dwpe, dout, tokens, B, T, C, pos0);
  RV_CUDA_LAUNCHED("embedding_backward");
}

}  // namespace revenant::cuda
