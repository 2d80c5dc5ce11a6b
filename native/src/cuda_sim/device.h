// The emulated device's state, shared by the runtime API (runtime.cc) and the executor
// (execute.cc). One device, index 0. A launch holds the mutex from its first block to its last,
// so kernels of different host threads run one at a time and the allocation table does not change
// under a running kernel.
#pragma once
#include <cuda_runtime.h>

#include <atomic>
#include <cstdint>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <vector>

namespace cuda_sim {

constexpr std::size_t kStaticSharedLimit = 48 * 1024;    // per block, as sm_90
constexpr std::size_t kDynamicSharedOptIn = 227 * 1024;  // cudaFuncAttributeMaxDynamicSharedMemorySize at most
constexpr int kMaxThreadsPerBlock = 1024;
constexpr unsigned kMaxGridX = 2147483647u, kMaxGridYZ = 65535u;

struct Allocation {
  uintptr_t begin;
  std::size_t bytes;  // as requested: an access past it is out of bounds even inside the padding
  bool pooled = false;  // from cudaMallocAsync (freed with cudaFreeAsync)
};

struct Device {
  std::mutex mu;
  std::map<uintptr_t, Allocation> allocations;  // by begin
  std::size_t used = 0, total = 0;
  cudaError_t sticky = cudaSuccess;  // a kernel faulted: every later call returns it
  int cc_major = 9, cc_minor = 0;
  bool reverse_blocks = false;  // run each grid's blocks last to first (set_block_order)
  bool memory_pools = true;     // cudaDevAttrMemoryPoolsSupported (set_memory_pools)
  uint64_t pool_release_threshold = 0, pool_used = 0, pool_used_high = 0;  // the default pool's attributes
  std::map<uintptr_t, std::size_t> pinned;      // cudaMallocHost'd host ranges, by begin
  // Calls that make the host wait for the device on a GPU (cuda_sim.h's host_syncs()).
  std::atomic<long> host_waits{0}, device_to_host{0};
  std::map<const void*, int> max_dynamic_shared;  // cudaFuncSetAttribute opt-ins
  std::map<const void*, int> launch_bounds;       // __launch_bounds__ (register_launch_bounds)
  std::set<std::string> executed;
  // Plain __syncthreads() sites ("file.cu:line") run since the start and since take_barrier_hits,
  // and the one the barrier sweep removes (remove_barrier; empty: none).
  std::set<std::string> barriers_executed, barrier_hits;
  std::string removed_barrier;
  std::vector<std::string> findings;

  // The allocation holding [p, p + n), or null.
  const Allocation* find(uintptr_t p, std::size_t n) const;
  // Whether [p, p + n) lies in pinned host memory (the caller holds the mutex).
  bool is_pinned(uintptr_t p, std::size_t n) const;
  // The allocation nearest to p (for reports), or null when there is none.
  const Allocation* nearest(uintptr_t p) const;
};

Device& device();

// Records one checker report (the caller holds the mutex) and prints it to stderr.
void add_finding(const std::string& text);

// Sets the calling host thread's last error (cudaGetLastError).
void set_last_error(cudaError_t e);

}  // namespace cuda_sim
