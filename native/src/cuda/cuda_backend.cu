// The CUDA backend: device memory through the statically linked runtime and the kernels of
// native/src/cuda. Created only when cuda_status() reports a usable device.
#include <string>

#include "core/backend.h"
#include "cuda/ops.cuh"

namespace revenant {
namespace {

class CudaBackend final : public Backend {
 public:
  CudaBackend() { RV_CUDA_CHECK(cudaSetDevice(0), "cuda backend"); }
  std::string name() const override { return "cuda"; }

  void* alloc(std::size_t bytes) override {
    void* p = nullptr;
    const cudaError_t e = cudaMalloc(&p, bytes == 0 ? 1 : bytes);
    if (e != cudaSuccess) {
      cudaGetLastError();
      RV_FAIL("alloc", "cudaMalloc of " + std::to_string(bytes) + " bytes failed: " + cudaGetErrorString(e) +
                           " (device out of memory? use a smaller batch, or device \"cpu\")");
    }
    RV_CUDA_CHECK(cudaMemset(p, 0, bytes == 0 ? 1 : bytes), "alloc");
    return p;
  }
  void release(void* p) override { cudaFree(p); }
  void upload(void* dst, const void* src, std::size_t bytes) override {
    RV_CUDA_CHECK(cudaMemcpy(dst, src, bytes, cudaMemcpyHostToDevice), "upload");
  }
  void download(void* dst, const void* src, std::size_t bytes) override {
    RV_CUDA_CHECK(cudaMemcpy(dst, src, bytes, cudaMemcpyDeviceToHost), "download");
  }
  void zero(void* p, std::size_t bytes) override { RV_CUDA_CHECK(cudaMemset(p, 0, bytes), "zero"); }
  void copy(void* dst, const void* src, std::size_t bytes) override {
    RV_CUDA_CHECK(cudaMemcpy(dst, src, bytes, cudaMemcpyDeviceToDevice), "copy");
  }
  void synchronize() override { RV_CUDA_CHECK(cudaDeviceSynchronize(), "synchronize"); }
  MemoryBudget free_memory() override {
    std::size_t free = 0, total = 0;
    RV_CUDA_CHECK(cudaMemGetInfo(&free, &total), "free_memory");
    return {free, "free device memory (cudaMemGetInfo)"};
  }

  // Every op forwards to its kernel launcher of the same name in cuda/ops.cuh.
#define REVENANT_CUDA_OP(ret, name, params, args) \
  ret name params override { return cuda::name args; }
  REVENANT_OPS(REVENANT_CUDA_OP)
#undef REVENANT_CUDA_OP
};

}  // namespace

std::unique_ptr<Backend> make_cuda_backend() { return std::make_unique<CudaBackend>(); }

}  // namespace revenant
