// The CPU backend: host memory and the reference ops of native/src/cpu at float precision.
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <new>
#include <unordered_map>

#if defined(__linux__)
#include <sys/mman.h>
#endif

#include "core/backend.h"
#include "core/error.h"
#include "cpu/ops.h"

namespace revenant {
namespace {

class CpuBackend final : public Backend {
 public:
  std::string name() const override { return "cpu"; }

  void* alloc(std::size_t bytes) override {
#if defined(MADV_HUGEPAGE)
    if (bytes >= kHugePage) return alloc_huge(bytes);
#endif
    void* p = std::calloc(1, bytes == 0 ? 1 : bytes);
    RV_CHECK(p != nullptr, "alloc", "out of host memory allocating " + std::to_string(bytes) + " bytes");
    return p;
  }
  void release(void* p) override {
#if defined(MADV_HUGEPAGE)
    {
      std::lock_guard<std::mutex> lock(mu_);
      const auto it = mapped_.find(p);
      if (it != mapped_.end()) {
        munmap(p, it->second);
        mapped_.erase(it);
        return;
      }
    }
#endif
    std::free(p);
  }
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

#if defined(MADV_HUGEPAGE)
 private:
  // Buffers of a huge page or more (weights, gradients, moments, activations, KV caches) get a
  // mapping of their own, aligned to 2 MiB and advised into transparent huge pages. A decoding
  // step streams every weight once: in 4 KiB pages that is a TLB miss, and a stop for the hardware
  // prefetcher, every 64 cache lines, and a 20M-parameter model decoded 12-25% slower. Zero-filled
  // and faulted in on first touch like calloc's memory; where THP is off the advice is ignored.
  static constexpr std::size_t kHugePage = std::size_t{2} << 20;

  void* alloc_huge(std::size_t bytes) {
    const std::size_t len = (bytes + kHugePage - 1) / kHugePage * kHugePage;
    void* base = mmap(nullptr, len + kHugePage, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    RV_CHECK(base != MAP_FAILED, "alloc", "out of host memory allocating " + std::to_string(bytes) + " bytes");
    // Keep the 2 MiB-aligned run of len bytes; give back what lies before and after it.
    const std::uintptr_t b = reinterpret_cast<std::uintptr_t>(base);
    const std::uintptr_t a = (b + kHugePage - 1) / kHugePage * kHugePage;
    if (a > b) munmap(base, a - b);
    if (b + kHugePage > a) munmap(reinterpret_cast<void*>(a + len), b + kHugePage - a);
    void* p = reinterpret_cast<void*>(a);
    madvise(p, len, MADV_HUGEPAGE);
    std::lock_guard<std::mutex> lock(mu_);
    mapped_.emplace(p, len);
    return p;
  }

  std::mutex mu_;
  std::unordered_map<void*, std::size_t> mapped_;  // huge-page buffers and their mapped length
#endif
};

}  // namespace

std::unique_ptr<Backend> make_cpu_backend() { return std::make_unique<CpuBackend>(); }

}  // namespace revenant
