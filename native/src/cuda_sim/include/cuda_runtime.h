// The CUDA emulator's cuda_runtime.h: what the kernels of native/src/cuda and the backend use of
// CUDA, for the host compiler. Kernels compile unchanged as host C++; each launch (RV_LAUNCH in
// cuda/ops.cuh) runs the grid here, a block at a time, its threads as fibers (cuda_sim/execute.cc).
//
// Built only with REVENANT_CUDA_SIM (cmake -DREVENANT_CUDA_SIM=ON). Device-side names (threadIdx,
// __syncthreads, __shfl_xor_sync...) are macros or functions that ask the emulator which thread is
// running; shared memory is thread_local storage of the host thread that runs the block, so a
// block's fibers share it and the emulator's memory hooks can tell it apart from global memory.
#pragma once

#include <math.h>

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <tuple>
#include <type_traits>
#include <utility>

// ---- qualifiers --------------------------------------------------------------------------------
#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __restrict__ __restrict
#define __constant__
// Block-scope thread_local has static storage: one copy per host thread, shared by the fibers of
// the block that thread runs. It is also the one spelling valid for both `__shared__ T a[N];` and
// `extern __shared__ T a[];` (the latter's storage: cuda_sim/dynamic_shared.cc).
#define __shared__ thread_local
#define __align__(n) __attribute__((aligned(n)))
// Launch bounds are not recorded: the emulator enforces the device's own limits at launch.
#define __launch_bounds__(...)  // enforced through cuda_sim::register_launch_bounds

#define CUDART_VERSION 13000
#define REVENANT_CUDA_SIM_DEVICE_NAME "Revenant CUDA emulator (sm_90-like)"

struct uint3 {
  unsigned int x, y, z;
};

struct dim3 {
  unsigned int x, y, z;
  constexpr dim3(unsigned int x_ = 1, unsigned int y_ = 1, unsigned int z_ = 1) : x(x_), y(y_), z(z_) {}
  constexpr dim3(uint3 v) : x(v.x), y(v.y), z(v.z) {}
};

// ---- runtime API types -------------------------------------------------------------------------
// Numbers as CUDA defines them, so codes printed by the emulator read like a device's.
enum cudaError {
  cudaSuccess = 0,
  cudaErrorInvalidValue = 1,
  cudaErrorMemoryAllocation = 2,
  cudaErrorInitializationError = 3,
  cudaErrorInvalidConfiguration = 9,
  cudaErrorInvalidDevicePointer = 17,
  cudaErrorInvalidMemcpyDirection = 21,
  cudaErrorInsufficientDriver = 35,
  cudaErrorNoDevice = 100,
  cudaErrorInvalidDevice = 101,
  cudaErrorNoKernelImageForDevice = 209,
  cudaErrorECCUncorrectable = 214,
  cudaErrorNvlinkUncorrectable = 220,
  cudaErrorInvalidResourceHandle = 400,
  cudaErrorNotReady = 600,
  cudaErrorIllegalAddress = 700,
  cudaErrorLaunchOutOfResources = 701,
  cudaErrorLaunchTimeout = 702,
  cudaErrorAssert = 710,
  cudaErrorHardwareStackError = 714,
  cudaErrorIllegalInstruction = 715,
  cudaErrorMisalignedAddress = 716,
  cudaErrorInvalidAddressSpace = 717,
  cudaErrorInvalidPc = 718,
  cudaErrorLaunchFailure = 719,
  cudaErrorNotSupported = 801,
  cudaErrorUnknown = 999,
};
typedef enum cudaError cudaError_t;

enum cudaMemcpyKind {
  cudaMemcpyHostToHost = 0,
  cudaMemcpyHostToDevice = 1,
  cudaMemcpyDeviceToHost = 2,
  cudaMemcpyDeviceToDevice = 3,
  cudaMemcpyDefault = 4,
};

enum cudaDeviceAttr {
  cudaDevAttrMaxThreadsPerBlock = 1,
  cudaDevAttrMaxSharedMemoryPerBlock = 8,
  cudaDevAttrWarpSize = 10,
  cudaDevAttrMultiProcessorCount = 16,
  cudaDevAttrComputeCapabilityMajor = 75,
  cudaDevAttrComputeCapabilityMinor = 76,
  cudaDevAttrMaxSharedMemoryPerBlockOptin = 97,
  cudaDevAttrMemoryPoolsSupported = 115,
};

enum cudaFuncAttribute {
  cudaFuncAttributeMaxDynamicSharedMemorySize = 8,
};

struct CUstream_st;
struct CUevent_st;
struct CUmemPoolHandle_st;
typedef CUmemPoolHandle_st* cudaMemPool_t;
// The attributes of a memory pool, numbered as CUDA numbers them.
enum cudaMemPoolAttr {
  cudaMemPoolReuseFollowEventDependencies = 1,
  cudaMemPoolReuseAllowOpportunistic = 2,
  cudaMemPoolReuseAllowInternalDependencies = 3,
  cudaMemPoolAttrReleaseThreshold = 4,
  cudaMemPoolAttrReservedMemCurrent = 5,
  cudaMemPoolAttrReservedMemHigh = 6,
  cudaMemPoolAttrUsedMemCurrent = 7,
  cudaMemPoolAttrUsedMemHigh = 8,
};
typedef CUstream_st* cudaStream_t;
typedef CUevent_st* cudaEvent_t;
#define cudaStreamNonBlocking 0x01
#define cudaEventDisableTiming 0x02

struct cudaDeviceProp {
  char name[256];
  std::size_t totalGlobalMem;
  std::size_t sharedMemPerBlock;
  int regsPerBlock;
  int warpSize;
  std::size_t memPitch;
  int maxThreadsPerBlock;
  int maxThreadsDim[3];
  int maxGridSize[3];
  int clockRate;
  std::size_t totalConstMem;
  int major;
  int minor;
  int multiProcessorCount;
  std::size_t sharedMemPerBlockOptin;
  std::size_t sharedMemPerMultiprocessor;
  int maxThreadsPerMultiProcessor;
  int memoryBusWidth;
  int memoryClockRate;
  int l2CacheSize;
};

// ---- runtime API (cuda_sim/runtime.cc) ----------------------------------------------------------
cudaError_t cudaMalloc(void** p, std::size_t bytes);
template <typename T>
cudaError_t cudaMalloc(T** p, std::size_t bytes) {
  return cudaMalloc(reinterpret_cast<void**>(p), bytes);
}
cudaError_t cudaFree(void* p);
// The stream-ordered allocator: the device's default pool, whose allocations the memory checker
// knows like cudaMalloc's; every call completes at once, so a free is immediate. The pool's
// attributes are kept: the release threshold as set, used memory as allocated (uint64_t values).
cudaError_t cudaMallocAsync(void** p, std::size_t bytes, cudaStream_t stream);
template <typename T>
cudaError_t cudaMallocAsync(T** p, std::size_t bytes, cudaStream_t stream) {
  return cudaMallocAsync(reinterpret_cast<void**>(p), bytes, stream);
}
cudaError_t cudaFreeAsync(void* p, cudaStream_t stream);
cudaError_t cudaDeviceGetDefaultMemPool(cudaMemPool_t* pool, int device);
cudaError_t cudaMemPoolSetAttribute(cudaMemPool_t pool, cudaMemPoolAttr attr, void* value);
cudaError_t cudaMemPoolGetAttribute(cudaMemPool_t pool, cudaMemPoolAttr attr, void* value);
cudaError_t cudaMallocHost(void** p, std::size_t bytes);
template <typename T>
cudaError_t cudaMallocHost(T** p, std::size_t bytes, unsigned int = 0) {
  return cudaMallocHost(reinterpret_cast<void**>(p), bytes);
}
cudaError_t cudaFreeHost(void* p);
cudaError_t cudaHostAlloc(void** p, std::size_t bytes, unsigned int flags);
#define cudaHostAllocDefault 0x00
cudaError_t cudaMemcpy(void* dst, const void* src, std::size_t bytes, cudaMemcpyKind kind);
cudaError_t cudaMemcpyAsync(void* dst, const void* src, std::size_t bytes, cudaMemcpyKind kind,
                            cudaStream_t stream = nullptr);
cudaError_t cudaMemset(void* p, int value, std::size_t bytes);
cudaError_t cudaMemsetAsync(void* p, int value, std::size_t bytes, cudaStream_t stream = nullptr);
cudaError_t cudaGetLastError();
cudaError_t cudaPeekAtLastError();
const char* cudaGetErrorName(cudaError_t e);
const char* cudaGetErrorString(cudaError_t e);
cudaError_t cudaDeviceSynchronize();
cudaError_t cudaDeviceReset();
cudaError_t cudaStreamCreate(cudaStream_t* s);
cudaError_t cudaStreamCreateWithFlags(cudaStream_t* s, unsigned int flags);
cudaError_t cudaStreamDestroy(cudaStream_t s);
cudaError_t cudaStreamSynchronize(cudaStream_t s);
cudaError_t cudaStreamWaitEvent(cudaStream_t s, cudaEvent_t e, unsigned int flags = 0);
cudaError_t cudaEventCreate(cudaEvent_t* e);
cudaError_t cudaEventCreateWithFlags(cudaEvent_t* e, unsigned int flags);
cudaError_t cudaEventRecord(cudaEvent_t e, cudaStream_t s = nullptr);
cudaError_t cudaEventSynchronize(cudaEvent_t e);
cudaError_t cudaEventQuery(cudaEvent_t e);
cudaError_t cudaEventElapsedTime(float* ms, cudaEvent_t start, cudaEvent_t end);
cudaError_t cudaEventDestroy(cudaEvent_t e);
cudaError_t cudaMemGetInfo(std::size_t* free, std::size_t* total);
cudaError_t cudaGetDeviceCount(int* count);
cudaError_t cudaSetDevice(int device);
cudaError_t cudaGetDevice(int* device);
cudaError_t cudaGetDeviceProperties(cudaDeviceProp* prop, int device);
cudaError_t cudaDeviceGetAttribute(int* value, cudaDeviceAttr attr, int device);
cudaError_t cudaDriverGetVersion(int* version);
cudaError_t cudaRuntimeGetVersion(int* version);
namespace cuda_sim {
cudaError_t set_function_attribute(const void* kernel, cudaFuncAttribute attr, int value);
}
template <typename F>
cudaError_t cudaFuncSetAttribute(F* kernel, cudaFuncAttribute attr, int value) {
  return cuda_sim::set_function_attribute(reinterpret_cast<const void*>(kernel), attr, value);
}

// ---- execution (cuda_sim/execute.cc) -------------------------------------------------------------
namespace cuda_sim {

// One launch as the emulator runs it: entry(context) is the kernel body of one thread.
struct KernelRun {
  const char* name;
  const void* kernel;
  void (*entry)(void*);
  void* context;
  dim3 grid, block;
  std::size_t shared_bytes;
  cudaStream_t stream;
};
// Checks the configuration against the device's limits, then runs every block to completion
// before returning (launches are ordered host work). Errors land where CUDA puts them:
// cudaGetLastError for a bad configuration, a sticky error for a kernel that faulted.
void launch(const KernelRun& run);

// A kernel's __launch_bounds__ (its maximum threads per block), which the host compiler drops:
// registered by the file CMakeLists.txt generates around each kernel file that declares one, so
// that launch() refuses a block of more threads with cudaErrorLaunchOutOfResources, as a device
// does (the bound is the kernel's maxThreadsPerBlock attribute). Returns 0, for use in a static
// initializer.
int register_launch_bounds(const void* kernel, int max_threads);

// RV_LAUNCH(kernel, grid, block[, shared, stream])(args...): the parameters are converted and
// copied once, as CUDA copies kernel parameters at the launch.
template <typename... P>
class Launch {
 public:
  Launch(const char* name, void (*kernel)(P...), dim3 grid, dim3 block, std::size_t shared = 0,
         cudaStream_t stream = nullptr)
      : name_(name), kernel_(kernel), grid_(grid), block_(block), shared_(shared), stream_(stream) {}

  template <typename... A>
  void operator()(A&&... args) const {
    static_assert(sizeof...(A) == sizeof...(P), "kernel launched with the wrong number of arguments");
    using Params = std::tuple<std::decay_t<P>...>;
    struct Context {
      void (*kernel)(P...);
      Params params;
    } context{kernel_, Params(std::forward<A>(args)...)};
    launch(KernelRun{name_, reinterpret_cast<const void*>(kernel_),
                     [](void* c) {
                       Context* x = static_cast<Context*>(c);
                       std::apply(x->kernel, x->params);
                     },
                     &context, grid_, block_, shared_, stream_});
  }

 private:
  const char* name_;
  void (*kernel_)(P...);
  dim3 grid_, block_;
  std::size_t shared_;
  cudaStream_t stream_;
};

// The running thread's coordinates (outside a kernel: a host-code error, reported and aborted).
uint3 thread_index();
uint3 block_index();
dim3 block_dim();
dim3 grid_dim();
int lane_id();

// Block barrier and warp collectives; `site` (file:line) tells call sites apart for the divergence
// check and names them in reports.
void syncthreads(const char* site);
int syncthreads_count(int predicate, int op, const char* site);
void syncwarp(unsigned mask);
enum class Shuffle { Index, Xor, Down, Up };
uint64_t shuffle(Shuffle kind, unsigned mask, uint64_t value, int arg, int width);
enum class Vote { Ballot, Any, All };
unsigned vote(Vote kind, unsigned mask, int predicate);
unsigned active_mask();

// Atomics on global or shared memory: checked like any access, never a race among themselves. The
// bytes move here, outside the instrumented kernel code, so that the race check sees an atomic and
// not a plain load and store.
void atomic_read(const void* p, void* out, std::size_t bytes);
void atomic_write(void* p, const void* in, std::size_t bytes);

template <typename T>
T shuffle_t(Shuffle kind, unsigned mask, T value, int arg, int width) {
  static_assert(sizeof(T) <= 8 && std::is_trivially_copyable<T>::value, "shuffles move at most 8 bytes");
  uint64_t bits = 0;
  std::memcpy(&bits, &value, sizeof(T));
  bits = shuffle(kind, mask, bits, arg, width);
  T out;
  std::memcpy(&out, &bits, sizeof(T));
  return out;
}

}  // namespace cuda_sim

// ---- device-side names --------------------------------------------------------------------------
#define threadIdx (::cuda_sim::thread_index())
#define blockIdx (::cuda_sim::block_index())
#define blockDim (::cuda_sim::block_dim())
#define gridDim (::cuda_sim::grid_dim())
constexpr int warpSize = 32;

#define CUDA_SIM_STR2(x) #x
#define CUDA_SIM_STR(x) CUDA_SIM_STR2(x)
#define __syncthreads() ::cuda_sim::syncthreads(__FILE__ ":" CUDA_SIM_STR(__LINE__))
#define __syncthreads_count(p) ::cuda_sim::syncthreads_count((p), 0, __FILE__ ":" CUDA_SIM_STR(__LINE__))
#define __syncthreads_and(p) ::cuda_sim::syncthreads_count((p), 1, __FILE__ ":" CUDA_SIM_STR(__LINE__))
#define __syncthreads_or(p) ::cuda_sim::syncthreads_count((p), 2, __FILE__ ":" CUDA_SIM_STR(__LINE__))

inline void __syncwarp(unsigned mask = 0xffffffffu) { cuda_sim::syncwarp(mask); }
inline unsigned __activemask() { return cuda_sim::active_mask(); }
inline unsigned __ballot_sync(unsigned mask, int p) { return cuda_sim::vote(cuda_sim::Vote::Ballot, mask, p); }
inline int __any_sync(unsigned mask, int p) { return cuda_sim::vote(cuda_sim::Vote::Any, mask, p) != 0; }
inline int __all_sync(unsigned mask, int p) { return cuda_sim::vote(cuda_sim::Vote::All, mask, p) != 0; }

template <typename T>
T __shfl_sync(unsigned mask, T v, int src, int width = 32) {
  return cuda_sim::shuffle_t(cuda_sim::Shuffle::Index, mask, v, src, width);
}
template <typename T>
T __shfl_xor_sync(unsigned mask, T v, int lane_mask, int width = 32) {
  return cuda_sim::shuffle_t(cuda_sim::Shuffle::Xor, mask, v, lane_mask, width);
}
template <typename T>
T __shfl_down_sync(unsigned mask, T v, unsigned delta, int width = 32) {
  return cuda_sim::shuffle_t(cuda_sim::Shuffle::Down, mask, v, static_cast<int>(delta), width);
}
template <typename T>
T __shfl_up_sync(unsigned mask, T v, unsigned delta, int width = 32) {
  return cuda_sim::shuffle_t(cuda_sim::Shuffle::Up, mask, v, static_cast<int>(delta), width);
}

// Fibers never preempt each other between an atomic's read and its write, so a read-modify-write
// is atomic here.
template <typename T, typename F>
T cuda_sim_atomic_rmw(T* p, F update) {
  T old;
  cuda_sim::atomic_read(p, &old, sizeof(T));
  const T now = update(old);
  cuda_sim::atomic_write(p, &now, sizeof(T));
  return old;
}
template <typename T> T atomicAdd(T* p, T v) { return cuda_sim_atomic_rmw(p, [v](T o) { return static_cast<T>(o + v); }); }
template <typename T> T atomicSub(T* p, T v) { return cuda_sim_atomic_rmw(p, [v](T o) { return static_cast<T>(o - v); }); }
template <typename T> T atomicMax(T* p, T v) { return cuda_sim_atomic_rmw(p, [v](T o) { return o < v ? v : o; }); }
template <typename T> T atomicMin(T* p, T v) { return cuda_sim_atomic_rmw(p, [v](T o) { return v < o ? v : o; }); }
template <typename T> T atomicExch(T* p, T v) { return cuda_sim_atomic_rmw(p, [v](T) { return v; }); }
template <typename T>
T atomicCAS(T* p, T compare, T v) {
  return cuda_sim_atomic_rmw(p, [compare, v](T o) { return o == compare ? v : o; });
}

// ---- device math -------------------------------------------------------------------------------
// Host libm in place of the device's: results agree to a few ulp, which the tests' tolerances
// state; bit-exact agreement with a GPU is not modelled.
inline float rsqrtf(float x) { return 1.0f / sqrtf(x); }
inline double rsqrt(double x) { return 1.0 / sqrt(x); }
inline float __expf(float x) { return expf(x); }
inline float __logf(float x) { return logf(x); }
inline float __fdividef(float a, float b) { return a / b; }
inline float __saturatef(float x) { return x < 0.0f ? 0.0f : (x > 1.0f ? 1.0f : x); }
// Bit reinterpretations: exact, as on the device.
inline unsigned __float_as_uint(float x) { unsigned u; std::memcpy(&u, &x, sizeof u); return u; }
inline int __float_as_int(float x) { int i; std::memcpy(&i, &x, sizeof i); return i; }
inline float __uint_as_float(unsigned u) { float x; std::memcpy(&x, &u, sizeof x); return x; }
inline float __int_as_float(int i) { float x; std::memcpy(&x, &i, sizeof x); return x; }
inline int min(int a, int b) { return a < b ? a : b; }
inline int max(int a, int b) { return a > b ? a : b; }
inline unsigned min(unsigned a, unsigned b) { return a < b ? a : b; }
inline unsigned max(unsigned a, unsigned b) { return a > b ? a : b; }
inline long min(long a, long b) { return a < b ? a : b; }
inline long max(long a, long b) { return a > b ? a : b; }
inline long long min(long long a, long long b) { return a < b ? a : b; }
inline long long max(long long a, long long b) { return a > b ? a : b; }
inline float min(float a, float b) { return fminf(a, b); }
inline float max(float a, float b) { return fmaxf(a, b); }
template <typename T>
T __ldg(const T* p) {
  return *p;
}
