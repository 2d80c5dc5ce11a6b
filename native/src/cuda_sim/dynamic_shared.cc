// Storage of the kernels' `extern __shared__` arrays. Under the emulator `__shared__` is
// thread_local (cuda_runtime.h), so `extern __shared__ float smem[];` inside a kernel declares a
// thread_local array defined elsewhere: here, one per name the kernels use, under the symbol GCC
// gives it, each as large as the device allows (227 KiB); the executor checks every access against
// the launch's own dynamic size. A kernel that declares a new name adds a line here (the link
// fails naming the missing symbol otherwise).
#include <cstddef>
#include <cstdint>
#include <utility>
#include <vector>

namespace {
constexpr std::size_t kDynamicSharedBytes = 227 * 1024;
}

// revenant::cuda::(anonymous namespace)::smem, the float array of flash_attention.cu's kernels.
alignas(128) thread_local float rv_sim_flash_smem[kDynamicSharedBytes / sizeof(float)] __asm__(
    "_ZN8revenant4cuda12_GLOBAL__N_14smemE");

namespace cuda_sim {

void dynamic_shared_arrays(std::vector<std::pair<uintptr_t, std::size_t>>& out) {
  out.clear();
  out.emplace_back(reinterpret_cast<uintptr_t>(&rv_sim_flash_smem[0]), sizeof rv_sim_flash_smem);
}

}  // namespace cuda_sim
