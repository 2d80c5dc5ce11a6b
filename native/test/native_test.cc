// Native test and benchmark executable: runs without any JavaScript runtime, so a GPU node that
// has only a compiler can check the native library.
//   revenant_native_test [ops] [model] [cuda] [generate] [bench]   (no argument: all; cuda includes generate)
// Prints one line per check and ends with "N passed, M failed"; exits non-zero on any failure.
// In an emulated build, `cuda` ends with the barrier sweep, which runs this program again as
//   revenant_native_test cuda --unit NAME --remove-barrier FILE.cu:LINE
// to run one unit alone with one barrier removed: exit status 3 when the unit fails (a failed
// check, a checker report or an exception), 0 when it passes, 4 when no unit has that name.
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <exception>
#include <string>
#include <vector>

#include "core/device_info.h"
#include "harness.h"

#ifdef REVENANT_CUDA_SIM
#include "cuda_sim/cuda_sim.h"
#endif

namespace rvtest {
namespace {

std::string g_only_unit;  // --unit: run this unit alone and exit with its verdict
bool g_in_only_unit = false;
std::vector<UnitRun> g_runs;

// The --unit child's verdict "fails", given at the first failed check or checker report: the
// failure is all the sweep needs to know, and the rest of the unit would only cost time.
[[noreturn]] void unit_fails() {
  std::printf("unit %s: fails\n", g_only_unit.c_str());
  std::fflush(stdout);
  std::fflush(stderr);
  _exit(3);
}

}  // namespace

Counts& counts() {
  static Counts c;
  return c;
}

void check(bool ok, const std::string& name, const std::string& detail) {
  if (ok) ++counts().passed;
  else ++counts().failed;
  std::printf("%s %s%s%s\n", ok ? "ok  " : "FAIL", name.c_str(), detail.empty() ? "" : ": ", detail.c_str());
  if (!ok && g_in_only_unit) unit_fails();
}

void unit(const std::string& name, const std::function<void()>& fn) {
  if (!g_only_unit.empty() && name != g_only_unit) return;
  const int failed = counts().failed;
#ifdef REVENANT_CUDA_SIM
  cuda_sim::take_barrier_hits();
  if (!g_only_unit.empty()) {  // the child's verdict is this unit's alone
    cuda_sim::take_findings();
    cuda_sim::on_finding(unit_fails);
  }
#endif
  g_in_only_unit = !g_only_unit.empty();
  Timer t;
  bool threw = false;
  try {
    fn();
  } catch (const std::exception& e) {
    threw = true;
    check(false, name + ": exception", e.what());
  }
  UnitRun run{name, t.seconds(), {}};
#ifdef REVENANT_CUDA_SIM
  run.barriers = cuda_sim::take_barrier_hits();
#endif
  if (g_only_unit.empty()) {
    std::printf("unit %s: %.1f s\n", name.c_str(), run.seconds);
    return g_runs.push_back(run);
  }
  bool reported = false;
#ifdef REVENANT_CUDA_SIM
  reported = !cuda_sim::take_findings().empty();
#endif
  if (threw || reported || counts().failed > failed) unit_fails();
  std::printf("unit %s: passes\n", name.c_str());
  std::fflush(stdout);
  _exit(0);  // now, without the sections after it or the leak check at exit
}

const std::vector<UnitRun>& unit_runs() { return g_runs; }

void set_only_unit(const std::string& name) { g_only_unit = name; }

revenant::CudaStatus cuda_section(const char* heading) {
  std::printf("== %s\n", heading);
  revenant::CudaStatus s = revenant::cuda_status();
  if (!s.usable) std::printf("skipped: no CUDA device (%s)\n", s.reason.c_str());
  return s;
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
  std::vector<std::string> sections;
  std::string only_unit;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if ((a == "--unit" || a == "--remove-barrier") && i + 1 < argc) {
      const std::string value = argv[++i];
      if (a == "--unit") only_unit = value;
#ifdef REVENANT_CUDA_SIM
      else cuda_sim::remove_barrier(value);
#endif
    } else {
      sections.push_back(a);
    }
  }
  auto wants = [&](const char* section) {
    if (sections.empty()) return true;
    for (const auto& s : sections)
      if (s == section) return true;
    return false;
  };
  rvtest::set_only_unit(only_unit);
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
    if (wants("cuda") && only_unit.empty()) rvtest::run_barrier_sweep();
    if (wants("bench")) rvtest::run_bench();
    if (wants("bench")) rvtest::run_bench_tc();
  } catch (const std::exception& e) {
    rvtest::check(false, "uncaught exception", e.what());
  }
  if (!only_unit.empty()) {
    std::printf("no unit named \"%s\" ran\n", only_unit.c_str());
    return 4;
  }
  const rvtest::Counts& c = rvtest::counts();
  std::printf("%d passed, %d failed\n", c.passed, c.failed);
  return c.failed == 0 ? 0 : 1;
}
