// Device scratch kept between calls: one buffer per host thread and device, grown on demand, so an
// op that needs temporary device memory does not cudaMalloc and cudaFree on every call (each a
// device-wide synchronisation). Stream order makes reuse safe: the kernels of one call finish before
// the next call's kernels touch the buffer, and cudaFree waits for the device before a buffer grows.
#include <vector>

#include "cuda/ops.cuh"

namespace revenant::cuda {

namespace {

struct Scratch {
  struct Buffer {
    int device;
    void* p;
    std::size_t bytes;
  };
  std::vector<Buffer> buffers;
  ~Scratch() {
    for (const Buffer& b : buffers) {
      cudaSetDevice(b.device);
      cudaFree(b.p);
    }
  }
};

thread_local Scratch t_scratch;

}  // namespace

void* scratch(std::size_t bytes, const char* op) {
  int device = 0;
  RV_CUDA_CHECK(cudaGetDevice(&device), op);
  for (Scratch::Buffer& b : t_scratch.buffers) {
    if (b.device != device) continue;
    if (b.bytes >= bytes) return b.p;
    RV_CUDA_CHECK(cudaFree(b.p), op);
    b.p = nullptr;
    b.bytes = 0;
    RV_CUDA_CHECK(cudaMalloc(&b.p, bytes), op);
    b.bytes = bytes;
    return b.p;
  }
  void* p = nullptr;
  RV_CUDA_CHECK(cudaMalloc(&p, bytes), op);
  t_scratch.buffers.push_back({device, p, bytes});
  return p;
}

}  // namespace revenant::cuda
