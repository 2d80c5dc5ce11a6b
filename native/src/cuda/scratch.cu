// Device scratch kept between calls: one buffer per host thread and device, grown on demand, so an
// op that needs temporary device memory does not allocate on every call. The buffers come from the
// device's stream-ordered pool (cudaMallocAsync / cudaFreeAsync on the default stream, which every
// launch of the backend uses): a growth frees the old buffer after the kernels queued before it and
// takes the new one without making the host wait, where cudaFree would synchronise the device. The
// pool keeps up to kPoolKeep bytes of freed memory across synchronisations (its release
// threshold), so a buffer that grows again is served from the pool rather than from the driver.
// A device without memory pools (cudaDevAttrMemoryPoolsSupported 0) gets cudaMalloc and cudaFree.
#include <vector>

#include "cuda/ops.cuh"

namespace revenant::cuda {

namespace {

struct Scratch {
  struct Buffer {
    int device;
    bool pooled;  // from the stream-ordered pool (else cudaMalloc)
    void* p;
    std::size_t bytes;
  };
  std::vector<Buffer> buffers;
  ~Scratch() {
    for (const Buffer& b : buffers) {
      cudaSetDevice(b.device);
      if (b.pooled) cudaFreeAsync(b.p, nullptr);
      else cudaFree(b.p);
    }
  }
};

thread_local Scratch t_scratch;

// Whether the device has memory pools; if so, sets the release threshold of its default pool (the
// first time a thread uses it; setting it again changes nothing).
bool use_pool(int device, const char* op) {
  int pools = 0;
  RV_CUDA_CHECK(cudaDeviceGetAttribute(&pools, cudaDevAttrMemoryPoolsSupported, device), op);
  if (!pools) return false;
  cudaMemPool_t pool = nullptr;
  RV_CUDA_CHECK(cudaDeviceGetDefaultMemPool(&pool, device), op);
  uint64_t keep = kPoolKeep;
  RV_CUDA_CHECK(cudaMemPoolSetAttribute(pool, cudaMemPoolAttrReleaseThreshold, &keep), op);
  return true;
}

void* take(bool pooled, std::size_t bytes, const char* op) {
  void* p = nullptr;
  if (pooled) RV_CUDA_CHECK(cudaMallocAsync(&p, bytes, nullptr), op);
  else RV_CUDA_CHECK(cudaMalloc(&p, bytes), op);
  return p;
}

}  // namespace

void* scratch(std::size_t bytes, const char* op) {
  int device = 0;
  RV_CUDA_CHECK(cudaGetDevice(&device), op);
  for (Scratch::Buffer& b : t_scratch.buffers) {
    if (b.device != device) continue;
    if (b.bytes >= bytes) return b.p;
    if (b.pooled) RV_CUDA_CHECK(cudaFreeAsync(b.p, nullptr), op);
    else RV_CUDA_CHECK(cudaFree(b.p), op);
    b.p = nullptr;
    b.bytes = 0;
    b.p = take(b.pooled, bytes, op);
    b.bytes = bytes;
    return b.p;
  }
  const bool pooled = use_pool(device, op);
  void* p = take(pooled, bytes, op);
  t_scratch.buffers.push_back({device, pooled, p, bytes});
  return p;
}

}  // namespace revenant::cuda
