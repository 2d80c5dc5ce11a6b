// Native test and benchmark executable: runs without any JavaScript runtime, so a GPU node that
// has only a compiler can check the native library. Exit code 0 means every check passed.
#include <cstdio>

#include "core/device_info.h"

int main() {
  const revenant::DeviceInfo d = revenant::device_info();
  std::printf("backends:");
  for (const auto& b : d.backends) std::printf(" %s", b.c_str());
  std::printf("\ncuda: %s, %s\n", d.cuda.compiled ? "compiled" : "not compiled",
              d.cuda.usable ? d.cuda.name.c_str() : d.cuda.reason.c_str());
  if (d.cuda.usable) {
    std::printf("cuda device: %s, cc %d.%d, %.1f GiB\n", d.cuda.name.c_str(), d.cuda.compute_major,
                d.cuda.compute_minor, d.cuda.total_memory / 1073741824.0);
  }
  std::printf("blas: %s %s\nthreads: %d of %d\n", d.blas.vendor.c_str(), d.blas.config.c_str(),
              d.threads, d.hardware_threads);
  int failures = 0;
  if (d.backends.empty() || d.backends[0] != "cpu") {
    std::printf("FAIL: cpu backend missing\n");
    ++failures;
  }
  if (d.cuda.compiled && !d.cuda.usable && d.cuda.reason.empty()) {
    std::printf("FAIL: unusable CUDA without a reason\n");
    ++failures;
  }
  std::printf("%d passed, %d failed\n", 2 - failures, failures);
  return failures == 0 ? 0 : 1;
}
