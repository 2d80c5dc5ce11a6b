// Device scratch kept between calls: one buffer per host thread and device, grown on demand, so an
// op that needs temporary device memory does not allocate on every call. The buffers come from the
// device's stream-ordered pool (cudaMallocAsync / cudaFreeAsync on the default stream, which every
// launch of the backend uses): a growth frees the old buffer after the kernels queued before it and
// takes the new one without making the host wait, where cudaFree would synchronise the device. The
// pool keeps up to kPoolKeep bytes of freed memory across synchronisations (its release
// threshold), so a buffer that grows again is served from the pool rather than from the driver.
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
      cudaFreeAsync(b.p, nullptr);
    }
  }
};

thread_local Scratch t_scratch;

// Sets the release threshold of the device's default pool (the first time a thread uses it; setting
// it again changes nothing).
void keep_freed_memory(int device, const char* op) {
  cudaMemPool_t pool = nullptr;
  RV_CUDA_CHECK(cudaDeviceGetDefaultMemPool(&pool, device), op);
  uint64_t keep = kPoolKeep;
  RV_CUDA_CHECK(cudaMemPoolSetAttribute(pool, cudaMemPoolAttrReleaseThreshold, &keep), op);
}

}  // namespace

void* scratch(std::size_t bytes, const char* op) {
  int device = 0;
  RV_CUDA_CHECK(cudaGetDevice(&device), op);
  for (Scratch::Buffer& b : t_scratch.buffers) {
    if (b.device != device) continue;
    if (b.bytes >= bytes) return b.p;
    RV_CUDA_CHECK(cudaFreeAsync(b.p, nullptr), op);
    b.p = nullptr;
    b.bytes = 0;
    RV_CUDA_CHECK(cudaMallocAsync(&b.p, bytes, nullptr), op);
    b.bytes = bytes;
    return b.p;
  }
  keep_freed_memory(device, op);
  void* p = nullptr;
  RV_CUDA_CHECK(cudaMallocAsync(&p, bytes, nullptr), op);
  t_scratch.buffers.push_back({device, p, bytes});
  return p;
}

}  // namespace revenant::cuda
