// The CUDA backend's memory plumbing on the emulator: the stream-ordered pool behind the per-call
// scratch (cudaMallocAsync with a release threshold set; a grown scratch gives its old buffer back; the
// memory checker still catches a read past the end of a pool allocation), and the pinned host
// staging of uploads and downloads (an upload makes the host wait for nothing, a download waits
// once, and the bytes arrive intact). Part of the `cuda` section, in builds with REVENANT_CUDA_SIM.
#include <cstdint>
#include <cstdio>
#include <string>
#include <thread>
#include <vector>

#include "harness.h"

#ifdef REVENANT_CUDA_SIM
#include <cuda_runtime.h>

#include "core/backend.h"
#include "cuda/ops.cuh"
#include "cuda_sim/cuda_sim.h"

namespace rvtest::sim {
void off_by_one(const float* x, float* out, int n);
}  // namespace rvtest::sim
#endif

namespace rvtest {

#ifdef REVENANT_CUDA_SIM
namespace {

uint64_t pool_attribute(cudaMemPoolAttr attr) {
  cudaMemPool_t pool = nullptr;
  uint64_t v = 0;
  cudaDeviceGetDefaultMemPool(&pool, 0);
  cudaMemPoolGetAttribute(pool, attr, &v);
  return v;
}

// Scratch comes from the pool, and a scratch that grows gives its old buffer back (the pool's use
// rises by the difference alone); the threshold is the one scratch.cu sets.
void pool_tests() {
  namespace rc = revenant::cuda;
  const std::size_t small = std::size_t{4} << 20, large = 2 * small;  // beyond what the tests before took
  const uint64_t u0 = pool_attribute(cudaMemPoolAttrUsedMemCurrent);
  rc::scratch(small, "pool test");
  const uint64_t u1 = pool_attribute(cudaMemPoolAttrUsedMemCurrent);
  rc::scratch(large, "pool test");
  const uint64_t u2 = pool_attribute(cudaMemPoolAttrUsedMemCurrent);
  check(u1 > u0 && u2 - u1 == large - small, "pool: scratch comes from the pool and a grown one gives the old buffer back",
        std::to_string(u0) + " -> " + std::to_string(u1) + " -> " + std::to_string(u2) + " bytes in use");
  check(pool_attribute(cudaMemPoolAttrReleaseThreshold) == rc::kPoolKeep,
        "pool: scratch sets the default pool's release threshold", "");
  const uint64_t before = u2;

  // memcheck on a pool allocation: the off-by-one read lands 0 bytes past a 160-byte allocation.
  float *in = nullptr, *out = nullptr;
  cudaMallocAsync(&in, 40 * sizeof(float), nullptr);
  cudaMallocAsync(&out, 40 * sizeof(float), nullptr);
  std::vector<float> twos(40, 2.0f);
  cudaMemcpy(in, twos.data(), sizeof(float) * 40, cudaMemcpyHostToDevice);
  cuda_sim::take_findings();
  sim::off_by_one(in, out, 40);
  const cudaError_t got = cudaGetLastError();
  const std::vector<std::string> f = cuda_sim::take_findings();
  bool named = false;
  for (const std::string& s : f)
    named = named || (s.find("memcheck") != std::string::npos && s.find("off_by_one_kernel") != std::string::npos &&
                      s.find("0 bytes past the end of the 160-byte allocation") != std::string::npos);
  check(named && got == cudaErrorIllegalAddress, "pool: memcheck catches a read past the end of a cudaMallocAsync allocation",
        f.empty() ? "no report" : f[0]);
  cuda_sim::reset_device();
  check(cudaFreeAsync(in, nullptr) == cudaSuccess && cudaFreeAsync(out, nullptr) == cudaSuccess &&
            pool_attribute(cudaMemPoolAttrUsedMemCurrent) == before,
        "pool: cudaFreeAsync gives both back", "");
  check(cudaFreeAsync(twos.data(), nullptr) == cudaErrorInvalidValue, "pool: cudaFreeAsync of host memory is refused", "");
  cudaGetLastError();

  // A device without memory pools: a thread's scratch (no kernel launched) comes from cudaMalloc,
  // leaving the pool untouched, and is freed when the thread ends.
  cuda_sim::set_memory_pools(false);
  std::size_t free0 = 0, free1 = 0, free2 = 0, total = 0;
  uint64_t pooled = 0;
  cudaMemGetInfo(&free0, &total);
  std::thread([&] {
    rc::scratch(small, "pool test");
    pooled = pool_attribute(cudaMemPoolAttrUsedMemCurrent);
    cudaMemGetInfo(&free1, &total);
  }).join();
  cudaMemGetInfo(&free2, &total);
  cuda_sim::set_memory_pools(true);
  check(pooled == before && free0 - free1 == small && free2 == free0,
        "pool: without memory pools scratch takes cudaMalloc memory, freed with its thread",
        std::to_string(free0 - free1) + " bytes taken, pool " + std::to_string(pooled) + " bytes in use");
}

// Uploads and downloads of a few sizes (one past the staging buffer's cap, copied direct) through
// the backend: the bytes round-trip, an upload costs no host wait, a download one.
void staging_tests() {
  auto gpu = revenant::make_cuda_backend();
  for (const std::size_t n : {std::size_t{1}, std::size_t{1000}, revenant::cuda::kHostStagingMax / sizeof(int) + 5}) {
    std::vector<int> h(n), back(n);
    for (std::size_t i = 0; i < n; ++i) h[i] = static_cast<int>(i * 2654435761u);
    void* d = gpu->alloc(n * sizeof(int));
    const long w0 = cuda_sim::host_syncs().waits;
    gpu->upload(d, h.data(), n * sizeof(int));
    const long w1 = cuda_sim::host_syncs().waits;
    gpu->download(back.data(), d, n * sizeof(int));
    const long w2 = cuda_sim::host_syncs().waits;
    gpu->release(d);
    const bool staged = n * sizeof(int) <= revenant::cuda::kHostStagingMax;
    const std::string tag = " (" + std::to_string(n * sizeof(int)) + " bytes" + (staged ? ", staged)" : ", direct)");
    check(back == h, "staging: upload then download returns the bytes" + tag, "");
    check(w1 - w0 == (staged ? 0 : 1) && w2 - w1 == 1, "staging: host waits of an upload and a download" + tag,
          std::to_string(w1 - w0) + " and " + std::to_string(w2 - w1));
  }
}

}  // namespace
#endif

void run_cuda_memory_tests() {
#ifdef REVENANT_CUDA_SIM
  std::printf("== cuda memory pool and pinned staging (emulator)\n");
  unit("memory pool", pool_tests);
  unit("pinned staging", staging_tests);
#endif
}

}  // namespace rvtest
