// The CPU backend: host memory and the reference ops of native/src/cpu at float precision.
#include <cstdlib>
#include <cstring>
#include <new>

#include "core/backend.h"
#include "core/error.h"
#include "cpu/ops.h"

namespace revenant {
namespace {

class CpuBackend final : public Backend {
 public:
  std::string name() const override { return "cpu"; }

  void* alloc(std::size_t bytes) override {
    void* p = std::calloc(1, bytes == 0 ? 1 : bytes);
    RV_CHECK(p != nullptr, "alloc", "out of host memory allocating " + std::to_string(bytes) + " bytes");
    return p;
  }
  void release(void* p) override { std::free(p); }
  void upload(void* dst, const void* src, std::size_t bytes) override { std::memcpy(dst, src, bytes); }
  void download(void* dst, const void* src, std::size_t bytes) override { std::memcpy(dst, src, bytes); }
  void zero(void* p, std::size_t bytes) override { std::memset(p, 0, bytes); }
  void copy(void* dst, const void* src, std::size_t bytes) override { std::memmove(dst, src, bytes); }
  void synchronize() override {}
  MemoryBudget free_memory() override { return host_memory_available(); }

  // Every op forwards to its reference of the same name in cpu/ops.h.
#define REVENANT_CPU_OP(ret, name, params, args) \
  ret name params override { return cpu::name args; }
  REVENANT_OPS(REVENANT_CPU_OP)
#undef REVENANT_CPU_OP
};

}  // namespace

std::unique_ptr<Backend> make_cpu_backend() { return std::make_unique<CpuBackend>(); }

}  // namespace revenant
