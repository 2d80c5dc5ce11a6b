// Native test and benchmark executable: runs without any JavaScript runtime, so a GPU node that
// has only a compiler can check the native library.
//   revenant_native_test [ops] [model] [cuda] [generate] [bench]   (no argument: all; cuda includes generate)
// Prints one line per check and ends with "N passed, M failed"; exits non-zero on any failure.
#include <cstdio>
#include <cstring>
#include <exception>
#include <string>

#include "core/device_info.h"
#include "harness.h"

namespace rvtest {

Counts& counts() {
  static Counts c;
  return c;
}

void check(bool ok, const std::string& name, const std::string& detail) {
  if (ok) ++counts().passed;
  else ++counts().failed;
  std::printf("%s %s%s%s\n", ok ? "ok  " : "FAIL", name.c_str(), detail.empty() ? "" : ": ", detail.c_str());
}

void check_close(const std::string& name, double err, double tol) {
  char buf[96];
  std::snprintf(buf, sizeof buf, "error %.3g (tolerance %.1g)", err, tol);
  check(err <= tol, name, buf);
}

}  // namespace rvtest

static void print_device_info() {
  const revenant::DeviceInfo d = revenant::device_info();
  std::printf("backends:");
  for (const auto& b : d.backends) std::printf(" %s", b.c_str());
  std::printf("\ncuda: %s, %s\n", d.cuda.compiled ? "compiled" : "not compiled",
              d.cuda.usable ? d.cuda.name.c_str() : d.cuda.reason.c_str());
  std::printf("blas: %s %s\nthreads: %d of %d\n", d.blas.vendor.c_str(), d.blas.config.c_str(), d.threads,
              d.hardware_threads);
  rvtest::check(!d.backends.empty() && d.backends[0] == "cpu", "device_info: cpu backend listed", "");
  rvtest::check(!(d.cuda.compiled && !d.cuda.usable && d.cuda.reason.empty()),
                "device_info: unusable CUDA comes with a reason", "");
}

int main(int argc, char** argv) {
  auto wants = [&](const char* section) {
    if (argc < 2) return true;
    for (int i = 1; i < argc; ++i)
      if (std::strcmp(argv[i], section) == 0) return true;
    return false;
  };
  try {
    print_device_info();
    if (wants("ops")) rvtest::run_op_tests();
    if (wants("model")) rvtest::run_model_tests();
    if (wants("model")) rvtest::run_refusal_tests();
    if (wants("model")) rvtest::run_lora_tests();
    if (wants("cuda")) rvtest::run_cuda_tests();
    if (wants("cuda")) rvtest::run_cuda_tc_tests();
    if (wants("cuda")) rvtest::run_cuda_reduction_tests();
    if (wants("cuda")) rvtest::run_cuda_step_tests();
    if (wants("cuda") || wants("generate")) rvtest::run_generate_tests();
    if (wants("cuda")) rvtest::run_cuda_memory_tests();
    if (wants("cuda")) rvtest::run_cuda_sim_tests();
    if (wants("bench")) rvtest::run_bench();
    if (wants("bench")) rvtest::run_bench_tc();
  } catch (const std::exception& e) {
    rvtest::check(false, "uncaught exception", e.what());
  }
  const rvtest::Counts& c = rvtest::counts();
  std::printf("%d passed, %d failed\n", c.passed, c.failed);
  return c.failed == 0 ? 0 : 1;
}
