// The compute backend interface: a short, fixed op list (tinygrad style, core/op_list.h) that the
// model is written against once. "cpu" (native/src/cpu) is the readable reference; "cuda"
// (native/src/cuda) mirrors it op by op under the same names. All pointers are in the backend's
// own memory (host for cpu, device for cuda); upload/download move data across.
#pragma once
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "core/memory.h"
#include "core/op_list.h"

namespace revenant {

class Backend {
 public:
  virtual ~Backend() = default;
  virtual std::string name() const = 0;

  // ---- memory ----
  virtual void* alloc(std::size_t bytes) = 0;  // zero-filled; throws on out-of-memory
  virtual void release(void* p) = 0;
  virtual void upload(void* dst, const void* host_src, std::size_t bytes) = 0;
  virtual void download(void* host_dst, const void* src, std::size_t bytes) = 0;
  virtual void zero(void* p, std::size_t bytes) = 0;
  virtual void copy(void* dst, const void* src, std::size_t bytes) = 0;
  virtual void synchronize() = 0;
  // Bytes that can still be allocated, and where the figure comes from.
  virtual MemoryBudget free_memory() = 0;
  // A read of one int that does not wait for the device: true with *value set when a read of `src`
  // asked for by an earlier call has arrived; each call asks for a fresh one when none is in
  // flight. An upload or a download drops the read in flight. The CPU (this default) reads at once.
  virtual bool poll(const int* src, int* value) {
    download(value, src, sizeof(int));
    return true;
  }

  // Test hook: fails as a lost device does, with a DeviceLostError (core/error.h). The CUDA
  // backend makes a kernel fault for real, so that its sticky-error check is what raises it; other
  // backends raise it directly.
  virtual void test_device_lost();

  // Floats of the `att` buffer that attention_forward fills and attention_backward reads, for B rows
  // of T positions and NH query heads over C channels: the [B,NH,T,T] softmax of core/op_list.h, or
  // less where the backend's attention saves less (the CUDA backend's flash attention: a
  // log-sum-exp and one scratch value per query, B*NH*T*2). Computed in 64 bits.
  virtual std::size_t attention_scratch_floats(int B, int T, int C, int NH);

  // ---- ops (core/op_list.h documents each) ----
  using F = float;  // the element type the op list is written in
#define REVENANT_BACKEND_OP(ret, name, params, args) virtual ret name params = 0;
  REVENANT_OPS(REVENANT_BACKEND_OP)
#undef REVENANT_BACKEND_OP
};

// A backend and the device it runs on, as chosen from a device string.
struct BackendChoice {
  std::unique_ptr<Backend> backend;
  std::string device;    // "cpu" or "cuda:N"
  std::string fallback;  // "auto" only: why it runs on the CPU ("" when it did not fall back)
};

// `device` is "cpu", "cuda" (device 0), "cuda:N", or "auto" (cuda:0 when usable, else cpu, saying
// why in `fallback`). Throws revenant::Error naming the reason when CUDA is asked for and cannot
// be used (no device, driver too old, N not below the device count) and for any other string:
// only "auto" falls back.
BackendChoice choose_backend(const std::string& device);
// choose_backend(device).backend.
std::unique_ptr<Backend> make_backend(const std::string& device);
std::unique_ptr<Backend> make_cpu_backend();
#ifdef REVENANT_HAVE_CUDA
// The CUDA backend on device `device` (0-based), selected in every thread that uses it. Its matmul
// and attention run on the tensor-core GEMM and flash attention (fast_kernels) or on the fp32
// kernels; the first form takes the default, fast unless REVENANT_CUDA_TENSOR_CORES=0.
std::unique_ptr<Backend> make_cuda_backend(int device = 0);
std::unique_ptr<Backend> make_cuda_backend(int device, bool fast_kernels);
#endif

// A typed buffer in backend memory, freed with its owner; or a borrowed view of memory someone
// else owns (borrowed()), which it never frees.
template <typename T>
class DeviceBuffer {
 public:
  DeviceBuffer() = default;
  DeviceBuffer(Backend* be, std::size_t n) : be_(be), n_(n) {
    p_ = static_cast<T*>(be->alloc(n * sizeof(T) + 1));
  }
  static DeviceBuffer borrowed(T* p, std::size_t n) {
    DeviceBuffer b;
    b.p_ = p;
    b.n_ = n;
    return b;
  }
  ~DeviceBuffer() { reset(); }
  DeviceBuffer(DeviceBuffer&& o) noexcept { *this = std::move(o); }
  DeviceBuffer& operator=(DeviceBuffer&& o) noexcept {
    reset();
    be_ = o.be_; p_ = o.p_; n_ = o.n_;
    o.p_ = nullptr; o.n_ = 0;
    return *this;
  }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
  void reset() {
    if (p_ && be_) be_->release(p_);
    p_ = nullptr;
    n_ = 0;
  }
  T* get() const { return p_; }
  std::size_t size() const { return n_; }
  bool owned() const { return be_ != nullptr; }

 private:
  Backend* be_ = nullptr;
  T* p_ = nullptr;
  std::size_t n_ = 0;
};

}  // namespace revenant
