// The CUDA runtime API of the emulator: device memory (host memory, tracked, so that the memory
// checker knows every cudaMalloc'd range), copies, streams and events as ordered host work (every
// call completes before it returns), errors with CUDA's codes and stickiness, and the properties of
// an sm_90-like part.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "cuda_sim/cuda_sim.h"
#include "cuda_sim/device.h"

struct CUstream_st {
  int flags;
};
struct CUmemPoolHandle_st {
  int device;
};
struct CUevent_st {
  std::chrono::steady_clock::time_point at;
  bool recorded;
};

namespace cuda_sim {
namespace {

thread_local cudaError_t t_last_error = cudaSuccess;

std::size_t env_bytes(const char* name, std::size_t fallback) {
  const char* v = std::getenv(name);
  if (v == nullptr || *v == 0) return fallback;
  char* end = nullptr;
  const unsigned long long n = std::strtoull(v, &end, 10);
  if (end == v || *end != 0 || n == 0) {
    std::fprintf(stderr, "cuda_sim: %s=\"%s\" is not a positive byte count; using %zu\n", name, v, fallback);
    return fallback;
  }
  return static_cast<std::size_t>(n);
}

Device& make_device() {
  static Device d;
  // REVENANT_CUDA_SIM_MEMORY: bytes the emulated part reports (cudaMemGetInfo) and allows.
  d.total = env_bytes("REVENANT_CUDA_SIM_MEMORY", std::size_t(8) << 30);
  if (const char* cc = std::getenv("REVENANT_CUDA_SIM_CC")) {
    const int v = std::atoi(cc);
    if (v >= 10) {
      d.cc_major = v / 10;
      d.cc_minor = v % 10;
    }
  }
  if (const char* site = std::getenv("REVENANT_CUDA_SIM_REMOVE_BARRIER")) d.removed_barrier = site;
  return d;
}

// An API call's result: the sticky error when a kernel has faulted, else `e` (also remembered
// for cudaGetLastError, as CUDA does for failed calls).
cudaError_t result(cudaError_t e) {
  const cudaError_t sticky = device().sticky;
  if (sticky != cudaSuccess) e = sticky;
  if (e != cudaSuccess) t_last_error = e;
  return e;
}

bool in_device(uintptr_t p, std::size_t n) { return n == 0 || device().find(p, n) != nullptr; }

}  // namespace

Device& device() {
  static Device& d = make_device();
  return d;
}

const Allocation* Device::find(uintptr_t p, std::size_t n) const {
  auto it = allocations.upper_bound(p);
  if (it == allocations.begin()) return nullptr;
  --it;
  const Allocation& a = it->second;
  return p >= a.begin && p + n <= a.begin + a.bytes && p + n >= p ? &a : nullptr;
}

bool Device::is_pinned(uintptr_t p, std::size_t n) const {
  auto it = pinned.upper_bound(p);
  if (it == pinned.begin()) return false;
  --it;
  return p >= it->first && p + n <= it->first + it->second;
}

HostSyncs host_syncs() {
  const Device& d = device();
  return HostSyncs{d.host_waits.load(), d.device_to_host.load()};
}

const Allocation* Device::nearest(uintptr_t p) const {
  auto it = allocations.upper_bound(p);
  const Allocation* best = nullptr;
  uintptr_t dist = ~uintptr_t(0);
  if (it != allocations.end()) {
    best = &it->second;
    dist = it->first - p;
  }
  if (it != allocations.begin()) {
    --it;
    const uintptr_t end = it->second.begin + it->second.bytes;
    const uintptr_t d = p >= end ? p - end : 0;
    if (d <= dist) best = &it->second;
  }
  return best;
}

namespace {
void (*g_finding_hook)() = nullptr;
}

void add_finding(const std::string& text) {
  device().findings.push_back(text);
  std::fprintf(stderr, "cuda_sim: %s\n", text.c_str());
  if (g_finding_hook != nullptr) g_finding_hook();
}

void on_finding(void (*hook)()) { g_finding_hook = hook; }

void set_last_error(cudaError_t e) { t_last_error = e; }

std::vector<std::string> take_findings() {
  Device& d = device();
  std::lock_guard<std::mutex> lock(d.mu);
  std::vector<std::string> out;
  out.swap(d.findings);
  return out;
}

std::vector<std::string> executed_kernels() {
  Device& d = device();
  std::lock_guard<std::mutex> lock(d.mu);
  return {d.executed.begin(), d.executed.end()};
}

std::vector<std::string> executed_barriers() {
  Device& d = device();
  std::lock_guard<std::mutex> lock(d.mu);
  return {d.barriers_executed.begin(), d.barriers_executed.end()};
}

std::vector<std::string> take_barrier_hits() {
  Device& d = device();
  std::lock_guard<std::mutex> lock(d.mu);
  std::vector<std::string> out(d.barrier_hits.begin(), d.barrier_hits.end());
  d.barrier_hits.clear();
  return out;
}

void remove_barrier(const std::string& site) {
  Device& d = device();
  std::lock_guard<std::mutex> lock(d.mu);
  d.removed_barrier = site;
}

void reset_device() {
  Device& d = device();
  std::lock_guard<std::mutex> lock(d.mu);
  d.sticky = cudaSuccess;
  t_last_error = cudaSuccess;
}

void set_compute_capability(int major, int minor) {
  Device& d = device();
  std::lock_guard<std::mutex> lock(d.mu);
  d.cc_major = major;
  d.cc_minor = minor;
}

int register_launch_bounds(const void* kernel, int max_threads) {
  Device& d = device();
  std::lock_guard<std::mutex> lock(d.mu);
  d.launch_bounds[kernel] = max_threads;
  return 0;
}

std::size_t registered_launch_bounds() {
  Device& d = device();
  std::lock_guard<std::mutex> lock(d.mu);
  return d.launch_bounds.size();
}

void set_memory_pools(bool supported) {
  Device& d = device();
  std::lock_guard<std::mutex> lock(d.mu);
  d.memory_pools = supported;
}

void set_block_order(bool reverse) {
  Device& d = device();
  std::lock_guard<std::mutex> lock(d.mu);
  d.reverse_blocks = reverse;
}

cudaError_t set_function_attribute(const void* kernel, cudaFuncAttribute attr, int value) {
  Device& d = device();
  std::lock_guard<std::mutex> lock(d.mu);
  if (attr != cudaFuncAttributeMaxDynamicSharedMemorySize || value < 0 ||
      static_cast<std::size_t>(value) > kDynamicSharedOptIn)
    return result(cudaErrorInvalidValue);
  d.max_dynamic_shared[kernel] = value;
  return result(cudaSuccess);
}

}  // namespace cuda_sim

using cuda_sim::device;
using cuda_sim::in_device;
using cuda_sim::result;

namespace {

// cudaMalloc and cudaMallocAsync: fresh memory, tracked for the memory checker.
cudaError_t allocate(void** p, std::size_t bytes, bool pooled) {
  auto& d = device();
  std::lock_guard<std::mutex> lock(d.mu);
  if (p == nullptr) return result(cudaErrorInvalidValue);
  *p = nullptr;
  if (d.sticky != cudaSuccess) return result(d.sticky);
  const std::size_t rounded = (bytes + 255) / 256 * 256;  // cudaMalloc aligns to 256 bytes
  if (bytes == 0) return result(cudaSuccess);
  if (rounded > d.total - d.used) return result(cudaErrorMemoryAllocation);
  void* m = std::aligned_alloc(256, rounded);
  if (m == nullptr) return result(cudaErrorMemoryAllocation);
  // Device memory starts as garbage: all-ones bytes are NaN as floats, so a kernel that reads
  // memory nobody wrote shows it in its results.
  std::memset(m, 0xff, rounded);
  d.allocations[reinterpret_cast<uintptr_t>(m)] = {reinterpret_cast<uintptr_t>(m), bytes, pooled};
  d.used += rounded;
  if (pooled) {
    d.pool_used += rounded;
    d.pool_used_high = std::max(d.pool_used_high, d.pool_used);
  }
  *p = m;
  return result(cudaSuccess);
}

cudaError_t release(void* p, bool pooled) {
  auto& d = device();
  std::lock_guard<std::mutex> lock(d.mu);
  if (p == nullptr) return result(cudaSuccess);
  auto it = d.allocations.find(reinterpret_cast<uintptr_t>(p));
  if (it == d.allocations.end() || (pooled && !it->second.pooled)) return result(cudaErrorInvalidValue);
  if (!pooled) ++d.host_waits;  // cudaFree synchronises the device; cudaFreeAsync is stream-ordered
  const std::size_t rounded = (it->second.bytes + 255) / 256 * 256;
  d.used -= rounded;
  if (it->second.pooled) d.pool_used -= rounded;
  d.allocations.erase(it);
  std::free(p);  // freed even after a fault, so that a process that goes on does not leak
  return result(cudaSuccess);
}

}  // namespace

cudaError_t cudaMalloc(void** p, std::size_t bytes) { return allocate(p, bytes, false); }
cudaError_t cudaFree(void* p) { return release(p, false); }
cudaError_t cudaMallocAsync(void** p, std::size_t bytes, cudaStream_t) { return allocate(p, bytes, true); }
cudaError_t cudaFreeAsync(void* p, cudaStream_t) { return release(p, true); }

cudaError_t cudaDeviceGetDefaultMemPool(cudaMemPool_t* pool, int dev) {
  static CUmemPoolHandle_st the_pool{0};
  if (pool == nullptr) return result(cudaErrorInvalidValue);
  if (dev != 0) return result(cudaErrorInvalidDevice);
  *pool = &the_pool;
  return result(cudaSuccess);
}

cudaError_t cudaMemPoolSetAttribute(cudaMemPool_t pool, cudaMemPoolAttr attr, void* value) {
  if (pool == nullptr || value == nullptr) return result(cudaErrorInvalidValue);
  auto& d = device();
  std::lock_guard<std::mutex> lock(d.mu);
  if (attr == cudaMemPoolAttrReleaseThreshold) d.pool_release_threshold = *static_cast<uint64_t*>(value);
  else if (attr == cudaMemPoolAttrUsedMemHigh && *static_cast<uint64_t*>(value) == 0) d.pool_used_high = d.pool_used;
  else return result(cudaErrorInvalidValue);
  return result(cudaSuccess);
}

cudaError_t cudaMemPoolGetAttribute(cudaMemPool_t pool, cudaMemPoolAttr attr, void* value) {
  if (pool == nullptr || value == nullptr) return result(cudaErrorInvalidValue);
  auto& d = device();
  std::lock_guard<std::mutex> lock(d.mu);
  uint64_t* v = static_cast<uint64_t*>(value);
  switch (attr) {
    case cudaMemPoolAttrReleaseThreshold: *v = d.pool_release_threshold; break;
    // Nothing is held back after a free here: reserved is what is in use.
    case cudaMemPoolAttrReservedMemCurrent:
    case cudaMemPoolAttrUsedMemCurrent: *v = d.pool_used; break;
    case cudaMemPoolAttrReservedMemHigh:
    case cudaMemPoolAttrUsedMemHigh: *v = d.pool_used_high; break;
    default: return result(cudaErrorInvalidValue);
  }
  return result(cudaSuccess);
}

// Pinned memory is plain host memory here, remembered so that copies from and to it count as
// asynchronous (host_syncs).
cudaError_t cudaMallocHost(void** p, std::size_t bytes) {
  if (p == nullptr) return result(cudaErrorInvalidValue);
  *p = std::malloc(bytes == 0 ? 1 : bytes);
  if (*p == nullptr) return result(cudaErrorMemoryAllocation);
  auto& d = device();
  std::lock_guard<std::mutex> lock(d.mu);
  d.pinned[reinterpret_cast<uintptr_t>(*p)] = bytes == 0 ? 1 : bytes;
  return result(cudaSuccess);
}

cudaError_t cudaHostAlloc(void** p, std::size_t bytes, unsigned int) { return cudaMallocHost(p, bytes); }

cudaError_t cudaFreeHost(void* p) {
  if (p == nullptr) return result(cudaSuccess);
  auto& d = device();
  {
    std::lock_guard<std::mutex> lock(d.mu);
    auto it = d.pinned.find(reinterpret_cast<uintptr_t>(p));
    if (it == d.pinned.end()) return result(cudaErrorInvalidValue);
    d.pinned.erase(it);
  }
  std::free(p);
  return result(cudaSuccess);
}

namespace {

// Both copies; `async` says which call it is, for the count of host waits.
cudaError_t copy(void* dst, const void* src, std::size_t bytes, cudaMemcpyKind kind, bool async) {
  auto& d = device();
  std::lock_guard<std::mutex> lock(d.mu);
  const auto s = reinterpret_cast<uintptr_t>(src), t = reinterpret_cast<uintptr_t>(dst);
  bool ok = true;
  switch (kind) {
    case cudaMemcpyHostToDevice: ok = in_device(t, bytes); break;
    case cudaMemcpyDeviceToHost: ok = in_device(s, bytes); break;
    case cudaMemcpyDeviceToDevice: ok = in_device(s, bytes) && in_device(t, bytes); break;
    case cudaMemcpyHostToHost:
    case cudaMemcpyDefault: break;
    default: return result(cudaErrorInvalidMemcpyDirection);
  }
  if (!ok) return result(cudaErrorInvalidValue);
  if (d.sticky != cudaSuccess) return result(d.sticky);
  if (kind == cudaMemcpyDeviceToHost) ++d.device_to_host;
  if (kind == cudaMemcpyDeviceToHost || kind == cudaMemcpyHostToDevice) {
    const uintptr_t host = kind == cudaMemcpyDeviceToHost ? t : s;
    if (!async || !d.is_pinned(host, bytes)) ++d.host_waits;
  }
  if (bytes > 0) std::memmove(dst, src, bytes);
  return result(cudaSuccess);
}

}  // namespace

cudaError_t cudaMemcpy(void* dst, const void* src, std::size_t bytes, cudaMemcpyKind kind) {
  return copy(dst, src, bytes, kind, false);
}

cudaError_t cudaMemcpyAsync(void* dst, const void* src, std::size_t bytes, cudaMemcpyKind kind, cudaStream_t) {
  return copy(dst, src, bytes, kind, true);
}

cudaError_t cudaMemset(void* p, int value, std::size_t bytes) {
  auto& d = device();
  std::lock_guard<std::mutex> lock(d.mu);
  if (!in_device(reinterpret_cast<uintptr_t>(p), bytes)) return result(cudaErrorInvalidValue);
  if (d.sticky != cudaSuccess) return result(d.sticky);
  if (bytes > 0) std::memset(p, value, bytes);
  return result(cudaSuccess);
}

cudaError_t cudaMemsetAsync(void* p, int value, std::size_t bytes, cudaStream_t) { return cudaMemset(p, value, bytes); }

cudaError_t cudaGetLastError() {
  const cudaError_t sticky = device().sticky;
  const cudaError_t e = sticky != cudaSuccess ? sticky : cuda_sim::t_last_error;
  cuda_sim::t_last_error = cudaSuccess;
  return e;
}

cudaError_t cudaPeekAtLastError() {
  const cudaError_t sticky = device().sticky;
  return sticky != cudaSuccess ? sticky : cuda_sim::t_last_error;
}

const char* cudaGetErrorName(cudaError_t e) {
  switch (e) {
#define RV_SIM_NAME(x) \
  case x: return #x;
    RV_SIM_NAME(cudaSuccess)
    RV_SIM_NAME(cudaErrorInvalidValue)
    RV_SIM_NAME(cudaErrorMemoryAllocation)
    RV_SIM_NAME(cudaErrorInitializationError)
    RV_SIM_NAME(cudaErrorInvalidConfiguration)
    RV_SIM_NAME(cudaErrorInvalidDevicePointer)
    RV_SIM_NAME(cudaErrorInvalidMemcpyDirection)
    RV_SIM_NAME(cudaErrorInsufficientDriver)
    RV_SIM_NAME(cudaErrorNoDevice)
    RV_SIM_NAME(cudaErrorInvalidDevice)
    RV_SIM_NAME(cudaErrorNoKernelImageForDevice)
    RV_SIM_NAME(cudaErrorECCUncorrectable)
    RV_SIM_NAME(cudaErrorNvlinkUncorrectable)
    RV_SIM_NAME(cudaErrorInvalidResourceHandle)
    RV_SIM_NAME(cudaErrorNotReady)
    RV_SIM_NAME(cudaErrorIllegalAddress)
    RV_SIM_NAME(cudaErrorLaunchOutOfResources)
    RV_SIM_NAME(cudaErrorLaunchTimeout)
    RV_SIM_NAME(cudaErrorAssert)
    RV_SIM_NAME(cudaErrorHardwareStackError)
    RV_SIM_NAME(cudaErrorIllegalInstruction)
    RV_SIM_NAME(cudaErrorMisalignedAddress)
    RV_SIM_NAME(cudaErrorInvalidAddressSpace)
    RV_SIM_NAME(cudaErrorInvalidPc)
    RV_SIM_NAME(cudaErrorLaunchFailure)
    RV_SIM_NAME(cudaErrorNotSupported)
    RV_SIM_NAME(cudaErrorUnknown)
#undef RV_SIM_NAME
  }
  return "cudaErrorUnknown";
}

const char* cudaGetErrorString(cudaError_t e) {
  switch (e) {
    case cudaSuccess: return "no error";
    case cudaErrorInvalidValue: return "invalid argument";
    case cudaErrorMemoryAllocation: return "out of memory";
    case cudaErrorInvalidConfiguration: return "invalid configuration argument";
    case cudaErrorInvalidDevice: return "invalid device ordinal";
    case cudaErrorNoKernelImageForDevice: return "no kernel image is available for execution on the device";
    case cudaErrorIllegalAddress: return "an illegal memory access was encountered";
    case cudaErrorLaunchOutOfResources: return "too many resources requested for launch";
    case cudaErrorLaunchTimeout: return "the launch timed out and was terminated";
    case cudaErrorMisalignedAddress: return "misaligned address";
    case cudaErrorLaunchFailure: return "unspecified launch failure";
    case cudaErrorInvalidResourceHandle: return "invalid resource handle";
    default: return cudaGetErrorName(e);
  }
}

cudaError_t cudaDeviceSynchronize() {  // every call completed already
  ++device().host_waits;
  return result(cudaSuccess);
}

cudaError_t cudaDeviceReset() {
  cuda_sim::reset_device();
  return cudaSuccess;
}

cudaError_t cudaStreamCreate(cudaStream_t* s) { return cudaStreamCreateWithFlags(s, 0); }
cudaError_t cudaStreamCreateWithFlags(cudaStream_t* s, unsigned int flags) {
  if (s == nullptr) return result(cudaErrorInvalidValue);
  *s = new CUstream_st{static_cast<int>(flags)};
  return result(cudaSuccess);
}
cudaError_t cudaStreamDestroy(cudaStream_t s) {
  delete s;
  return result(cudaSuccess);
}
cudaError_t cudaStreamSynchronize(cudaStream_t) {
  ++device().host_waits;
  return result(cudaSuccess);
}
cudaError_t cudaStreamWaitEvent(cudaStream_t, cudaEvent_t, unsigned int) { return result(cudaSuccess); }

cudaError_t cudaEventCreate(cudaEvent_t* e) { return cudaEventCreateWithFlags(e, 0); }
cudaError_t cudaEventCreateWithFlags(cudaEvent_t* e, unsigned int) {
  if (e == nullptr) return result(cudaErrorInvalidValue);
  *e = new CUevent_st{{}, false};
  return result(cudaSuccess);
}
cudaError_t cudaEventRecord(cudaEvent_t e, cudaStream_t) {
  if (e == nullptr) return result(cudaErrorInvalidResourceHandle);
  e->at = std::chrono::steady_clock::now();
  e->recorded = true;
  return result(cudaSuccess);
}
cudaError_t cudaEventSynchronize(cudaEvent_t e) {
  ++device().host_waits;
  return result(e ? cudaSuccess : cudaErrorInvalidResourceHandle);
}
cudaError_t cudaEventQuery(cudaEvent_t e) { return result(e ? cudaSuccess : cudaErrorInvalidResourceHandle); }
cudaError_t cudaEventElapsedTime(float* ms, cudaEvent_t start, cudaEvent_t end) {
  if (ms == nullptr || start == nullptr || end == nullptr) return result(cudaErrorInvalidValue);
  if (!start->recorded || !end->recorded) return result(cudaErrorInvalidResourceHandle);
  *ms = std::chrono::duration<float, std::milli>(end->at - start->at).count();
  return result(cudaSuccess);
}
cudaError_t cudaEventDestroy(cudaEvent_t e) {
  delete e;
  return result(cudaSuccess);
}

cudaError_t cudaMemGetInfo(std::size_t* free, std::size_t* total) {
  auto& d = device();
  std::lock_guard<std::mutex> lock(d.mu);
  if (free == nullptr || total == nullptr) return result(cudaErrorInvalidValue);
  *free = d.total - d.used;
  *total = d.total;
  return result(cudaSuccess);
}

cudaError_t cudaGetDeviceCount(int* count) {
  if (count == nullptr) return result(cudaErrorInvalidValue);
  *count = 1;
  return result(cudaSuccess);
}

namespace {
thread_local int t_device = 0;
}

cudaError_t cudaSetDevice(int dev) {
  if (dev != 0) return result(cudaErrorInvalidDevice);
  t_device = dev;
  return result(cudaSuccess);
}

cudaError_t cudaGetDevice(int* dev) {
  if (dev == nullptr) return result(cudaErrorInvalidValue);
  *dev = t_device;
  return result(cudaSuccess);
}

cudaError_t cudaGetDeviceProperties(cudaDeviceProp* prop, int dev) {
  if (prop == nullptr) return result(cudaErrorInvalidValue);
  if (dev != 0) return result(cudaErrorInvalidDevice);
  auto& d = device();
  std::memset(prop, 0, sizeof *prop);
  std::snprintf(prop->name, sizeof prop->name, "%s", REVENANT_CUDA_SIM_DEVICE_NAME);
  prop->totalGlobalMem = d.total;
  prop->sharedMemPerBlock = cuda_sim::kStaticSharedLimit;
  prop->sharedMemPerBlockOptin = cuda_sim::kDynamicSharedOptIn;
  prop->sharedMemPerMultiprocessor = 228 * 1024;
  prop->regsPerBlock = 65536;
  prop->warpSize = 32;
  prop->maxThreadsPerBlock = cuda_sim::kMaxThreadsPerBlock;
  prop->maxThreadsDim[0] = 1024;
  prop->maxThreadsDim[1] = 1024;
  prop->maxThreadsDim[2] = 64;
  prop->maxGridSize[0] = static_cast<int>(cuda_sim::kMaxGridX);
  prop->maxGridSize[1] = static_cast<int>(cuda_sim::kMaxGridYZ);
  prop->maxGridSize[2] = static_cast<int>(cuda_sim::kMaxGridYZ);
  prop->clockRate = 1755000;
  prop->totalConstMem = 65536;
  prop->major = d.cc_major;
  prop->minor = d.cc_minor;
  prop->multiProcessorCount = 132;
  prop->maxThreadsPerMultiProcessor = 2048;
  prop->memoryBusWidth = 5120;
  prop->memoryClockRate = 2619000;
  prop->l2CacheSize = 50 * 1024 * 1024;
  return result(cudaSuccess);
}

cudaError_t cudaDeviceGetAttribute(int* value, cudaDeviceAttr attr, int dev) {
  if (value == nullptr) return result(cudaErrorInvalidValue);
  cudaDeviceProp p;
  const cudaError_t e = cudaGetDeviceProperties(&p, dev);
  if (e != cudaSuccess) return e;
  switch (attr) {
    case cudaDevAttrMaxThreadsPerBlock: *value = p.maxThreadsPerBlock; break;
    case cudaDevAttrMaxSharedMemoryPerBlock: *value = static_cast<int>(p.sharedMemPerBlock); break;
    case cudaDevAttrWarpSize: *value = p.warpSize; break;
    case cudaDevAttrMultiProcessorCount: *value = p.multiProcessorCount; break;
    case cudaDevAttrComputeCapabilityMajor: *value = p.major; break;
    case cudaDevAttrComputeCapabilityMinor: *value = p.minor; break;
    case cudaDevAttrMaxSharedMemoryPerBlockOptin: *value = static_cast<int>(p.sharedMemPerBlockOptin); break;
    case cudaDevAttrMemoryPoolsSupported: *value = device().memory_pools ? 1 : 0; break;
    default: return result(cudaErrorInvalidValue);
  }
  return result(cudaSuccess);
}

cudaError_t cudaDriverGetVersion(int* v) {
  if (v == nullptr) return result(cudaErrorInvalidValue);
  *v = CUDART_VERSION;
  return cudaSuccess;
}

cudaError_t cudaRuntimeGetVersion(int* v) {
  if (v == nullptr) return result(cudaErrorInvalidValue);
  *v = CUDART_VERSION;
  return cudaSuccess;
}
