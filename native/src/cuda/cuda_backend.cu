// The CUDA backend: device memory through the statically linked runtime and the kernels of
// native/src/cuda, on one device chosen by index. Created only when cuda_status() reports that
// device usable.
//
// The current device is per host thread, and a model's calls run on whichever libuv worker picks
// them up (and the JavaScript thread frees the weights), so every entry point selects the device
// itself (bind()) instead of trusting what the thread was last set to.
#include <cstdlib>
#include <string>

#include "core/backend.h"
#include "cuda/flash_attention.cuh"
#include "cuda/gemm_tc.cuh"
#include "cuda/host_staging.cuh"
#include "cuda/ops.cuh"

namespace revenant {
namespace {

// The fast kernels are the default: matmul on the bf16 tensor-core GEMM (gemm_tc.cu) on devices of
// compute capability 8.0+, attention on flash attention (flash_attention.cu, fp32, every
// architecture). REVENANT_CUDA_TENSOR_CORES=0 (read once) selects the fp32 kernels of matmul.cu
// and attention.cu instead, the fallback.
bool tensor_cores_default() {
  static const bool on = [] {
    const char* v = std::getenv("REVENANT_CUDA_TENSOR_CORES");
    const std::string s = v == nullptr ? "" : v;
    RV_CHECK(s.empty() || s == "0" || s == "1", "cuda backend",
             "REVENANT_CUDA_TENSOR_CORES must be 1 (tensor-core GEMM and flash attention, the default) or 0 (the "
             "fp32 kernels), got \"" + s + "\"");
    return s != "0";
  }();
  return on;
}

// The ops the switch reroutes. Every other op name resolves to cuda:: through the using-directive
// (a qualified lookup that finds a name declared here ignores the directive).
namespace routed {
using namespace cuda;

// The calling backend's choice of kernels: set with the device by every entry point (bind()), as
// a model's calls run on whichever thread picks them up.
thread_local bool fast_kernels = false;

bool gemm_on_tensor_cores() { return fast_kernels && cuda::tensor_cores_supported(); }

// Flash attention keeps its log-sum-exp in the first B*NH*T floats of att and the backward's delta
// scratch in the next B*NH*T: attention_scratch_floats() sizes att so, and T >= 2 keeps a caller
// that sized it B*NH*T*T (the op list's contract) safe too. The forward and the backward decide
// alike, so att always holds what the backward expects.
bool flash(int T, int C, int NH) { return fast_kernels && T >= 2 && cuda::flash_attention_supports(C, NH); }

void matmul_forward(float* out, const float* inp, const float* w, const float* bias, int N, int C, int OC) {
  if (gemm_on_tensor_cores()) cuda::matmul_forward_tc(out, inp, w, bias, N, C, OC);
  else cuda::matmul_forward(out, inp, w, bias, N, C, OC);
}

void matmul_backward(float* dinp, float* dw, float* dbias, const float* dout, const float* inp, const float* w, int N,
                     int C, int OC) {
  if (gemm_on_tensor_cores()) cuda::matmul_backward_tc(dinp, dw, dbias, dout, inp, w, N, C, OC);
  else cuda::matmul_backward(dinp, dw, dbias, dout, inp, w, N, C, OC);
}

void attention_forward(float* out, float* att, const float* qkv, int B, int T, int C, int NH, int NKV) {
  if (flash(T, C, NH)) cuda::flash_attention_forward(out, att, qkv, B, T, C, NH, NKV);
  else cuda::attention_forward(out, att, qkv, B, T, C, NH, NKV);
}

void attention_backward(float* dqkv, const float* dout, const float* qkv, const float* att, int B, int T, int C, int NH,
                        int NKV) {
  if (!flash(T, C, NH)) return cuda::attention_backward(dqkv, dout, qkv, att, B, T, C, NH, NKV);
  float* delta = const_cast<float*>(att) + static_cast<long>(B) * NH * T;  // the layer's own scratch, see flash()
  cuda::flash_attention_backward(dqkv, delta, dout, qkv, att, B, T, C, NH, NKV);
}

}  // namespace routed

// Writes through a null pointer: an illegal address, the commonest sticky error.
__global__ void fault_kernel(float* p) { p[threadIdx.x] = 1.0f; }

class CudaBackend final : public Backend {
 public:
  CudaBackend(int device, bool fast_kernels) : device_(device), fast_kernels_(fast_kernels) {
    bind("cuda backend");
    // A device that cannot even report its memory is not usable; say so now, not at the first op.
    std::size_t free = 0, total = 0;
    RV_CUDA_CHECK(cudaMemGetInfo(&free, &total), "cuda backend");
  }
  // The staging buffers (destroyed after this body) are freed with this backend's device current.
  ~CudaBackend() override { cudaSetDevice(device_); }
  std::string name() const override { return "cuda"; }

  void* alloc(std::size_t bytes) override {
    bind("alloc");
    void* p = nullptr;
    const cudaError_t e = cudaMalloc(&p, bytes == 0 ? 1 : bytes);
    if (e != cudaSuccess)
      cuda::throw_cuda_error(e, "alloc", __FILE__, __LINE__,
                             "cudaMalloc of " + std::to_string(bytes) + " bytes on cuda:" + std::to_string(device_) +
                                 "; device out of memory? use a smaller batch, or device \"cpu\"");
    RV_CUDA_CHECK(cudaMemset(p, 0, bytes == 0 ? 1 : bytes), "alloc");
    return p;
  }
  // Called from destructors: never throws. A failed free after a sticky error changes nothing,
  // since the process is about to end.
  void release(void* p) override {
    cudaSetDevice(device_);
    cudaFree(p);
  }
  // Through pinned host memory kept for the backend's life (cuda/host_staging.cu).
  void upload(void* dst, const void* src, std::size_t bytes) override {
    bind("upload");
    staging_.upload(dst, src, bytes);
  }
  void download(void* dst, const void* src, std::size_t bytes) override {
    bind("download");
    staging_.download(dst, src, bytes);
  }
  bool poll(const int* src, int* value) override {
    bind("poll");
    return staging_.poll(src, value);
  }
  void zero(void* p, std::size_t bytes) override {
    bind("zero");
    RV_CUDA_CHECK(cudaMemset(p, 0, bytes), "zero");
  }
  void copy(void* dst, const void* src, std::size_t bytes) override {
    bind("copy");
    RV_CUDA_CHECK(cudaMemcpy(dst, src, bytes, cudaMemcpyDeviceToDevice), "copy");
  }
  void synchronize() override {
    bind("synchronize");
    RV_CUDA_CHECK(cudaDeviceSynchronize(), "synchronize");
  }
  MemoryBudget free_memory() override {
    bind("free_memory");
    std::size_t free = 0, total = 0;
    RV_CUDA_CHECK(cudaMemGetInfo(&free, &total), "free_memory");
    return {free, "free device memory on cuda:" + std::to_string(device_) + " (cudaMemGetInfo)"};
  }

  // A real fault: the launch succeeds, the kernel faults, and the synchronize returns
  // cudaErrorIllegalAddress, which RV_CUDA_CHECK must classify as sticky.
  void test_device_lost() override {
    bind("test_device_lost");
    RV_LAUNCH(fault_kernel, 1, 32)(nullptr);
    RV_CUDA_CHECK(cudaGetLastError(), "test_device_lost");
    RV_CUDA_CHECK(cudaDeviceSynchronize(), "test_device_lost");
    RV_FAIL("test_device_lost", "a kernel writing through a null pointer did not fault on cuda:" + std::to_string(device_));
  }

  std::size_t attention_scratch_floats(int B, int T, int C, int NH) override {
    bind("attention_scratch_floats");
    if (!routed::flash(T, C, NH)) return Backend::attention_scratch_floats(B, T, C, NH);
    return 2 * static_cast<std::size_t>(B) * NH * T;  // log-sum-exp, then delta (see routed::flash)
  }

  // Every op selects the device, then forwards to its kernel launcher of the same name in
  // cuda/ops.cuh (or, for the ops in routed, to the switch's choice).
#define REVENANT_CUDA_OP(ret, name, params, args) \
  ret name params override {                      \
    bind(#name);                                  \
    return routed::name args;                     \
  }
  REVENANT_OPS(REVENANT_CUDA_OP)
#undef REVENANT_CUDA_OP

 private:
  // Makes this backend's device current on the calling thread (cheap when it already is), and its
  // choice of kernels the one the routed ops see.
  void bind(const char* op) const {
    RV_CUDA_CHECK(cudaSetDevice(device_), op);
    routed::fast_kernels = fast_kernels_;
  }

  int device_;
  bool fast_kernels_;
  cuda::HostStaging staging_;
};

}  // namespace

std::unique_ptr<Backend> make_cuda_backend(int device) { return make_cuda_backend(device, tensor_cores_default()); }

std::unique_ptr<Backend> make_cuda_backend(int device, bool fast_kernels) {
  return std::make_unique<CudaBackend>(device, fast_kernels);
}

}  // namespace revenant
