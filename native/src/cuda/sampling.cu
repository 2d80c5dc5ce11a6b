// sampling: one token per row from softmax(logits / temperature) with Philox(seed, row, step)
// uniforms (CUDA mirror of cpu/sampling.cc: the same draw, the inverse CDF at the row's uniform);
// temperature 0 is greedy. The CPU sums its weights by blocks of 16 ids with a vectorised exp; one
// thread here sums them in order with expf, so a draw can differ from the CPU's only where u falls
// within rounding of a boundary between two ids.
#include "core/philox.h"
#include "cuda/ops.cuh"

namespace revenant::cuda {

__global__ void sampling_kernel(int* out, const float* logits, int N, int V, float temperature, uint64_t seed, int step) {
  const int n = blockIdx.x * blockDim.x + threadIdx.x;
  if (n >= N) return;
  const float* x = logits + static_cast<long>(n) * V;
  int best = 0;
  for (int j = 1; j < V; ++j)
    if (x[j] > x[best]) best = j;
  if (temperature <= 0.0f) {
    out[n] = best;
    return;
  }
  const Philox4 r = philox4x32(seed, static_cast<uint32_t>(n), static_cast<uint32_t>(step), 0, 0);
  const float u = philox_uniform(r.v[0]);
  const float maxv = x[best];
  float sum = 0;
  for (int j = 0; j < V; ++j) sum += expf((x[j] - maxv) / temperature);
  const float threshold = u * sum;
  float cum = 0;
  int pick = best;
  for (int j = 0; j < V; ++j) {
    const float p = expf((x[j] - maxv) / temperature);
    if (p > 0) pick = j;
    cum += p;
    if (cum > threshold) {
      pick = j;
      break;
    }
  }
  out[n] = pick;
}

void sampling_forward(int* out, const float* logits, int N, int V, float temperature, uint64_t seed, int step) {
  RV_LAUNCH(sampling_kernel, blocks_for(N, 128), 128)(out, logits, N, V, temperature, seed, step);
  RV_CUDA_LAUNCHED("sampling_forward");
}

}  // namespace revenant::cuda
