// The second stage of the deterministic two-stage column reductions (the LayerNorm and RMSNorm
// weight and bias gradients, the q/k norms' weights, the position table's gradient). Stage 1, in
// each op's file, has block s sum a fixed slice of rows (kSliceRows of them, in order) for its
// columns and write one partial row per slice into scratch; this stage adds the partial rows in
// slice order, one thread per column. Every output element is written by exactly one thread and
// no float atomic is involved, so the result does not depend on which block runs first: it is the
// same bits on every run and every device.
#include "cuda/ops.cuh"

namespace revenant::cuda {

__global__ void slice_sum_kernel(float* out, const float* partial, int slices, long stride, int width) {
  const int c = blockIdx.x * blockDim.x + threadIdx.x;
  if (c >= width) return;
  float s = 0;
  for (int k = 0; k < slices; ++k) s += partial[k * stride + c];
  out[c] += s;
}

void slice_sum(float* out, const float* partial, int slices, long stride, int width, const char* op) {
  RV_LAUNCH(slice_sum_kernel, blocks_for(width, kSliceThreads), kSliceThreads)(out, partial, slices, stride, width);
  RV_CUDA_LAUNCHED(op);
}

}  // namespace revenant::cuda
