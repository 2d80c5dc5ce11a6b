// bf16: bfloat16 -> float32 widening (CUDA mirror of cpu/bf16.cc), exact: the upper half of a
// float32's bits.
#include "cuda/ops.cuh"

namespace revenant::cuda {

__global__ void bf16_widen_kernel(float* out, const uint16_t* inp, std::size_t n) {
  const std::size_t i = static_cast<std::size_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i < n) out[i] = __uint_as_float(static_cast<unsigned>(inp[i]) << 16);
}

void bf16_widen(float* out, const uint16_t* inp, std::size_t n) {
  RV_LAUNCH(bf16_widen_kernel, blocks_for(static_cast<long>(n), 256), 256)(out, inp, n);
  RV_CUDA_LAUNCHED("bf16_widen");
}

// One thread per output entry; only the N gathered rows are widened.
__global__ void bf16_embedding_kernel(float* out, const int* tokens, const uint16_t* wte, int N, int C) {
  const long i = static_cast<long>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= static_cast<long>(N) * C) return;
  const long n = i / C, c = i % C;
  out[i] = __uint_as_float(static_cast<unsigned>(wte[static_cast<long>(tokens[n]) * C + c]) << 16);
}

void bf16_embedding_forward(float* out, const int* tokens, const uint16_t* wte, int N, int C) {
  RV_LAUNCH(bf16_embedding_kernel, blocks_for(static_cast<long>(N) * C, 256), 256)(out, tokens, wte, N, C);
  RV_CUDA_LAUNCHED("bf16_embedding_forward");
}

}  // namespace revenant::cuda
