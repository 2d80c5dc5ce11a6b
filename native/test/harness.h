// Minimal test harness for the native test executable: pass/fail counting, seeded random
// fixtures, tolerance comparisons and a timer. No dependencies beyond the library's device query, so
// it builds on any GPU node.
#pragma once
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <functional>
#include <string>
#include <vector>

#include "core/device_info.h"

namespace rvtest {

struct Counts {
  int passed = 0, failed = 0;
};
Counts& counts();

// Records one check; prints a line either way so a failure names what broke.
void check(bool ok, const std::string& name, const std::string& detail);

// Deterministic fixtures (splitmix64), independent of the library under test.
class Rng {
 public:
  explicit Rng(uint64_t seed) : s_(seed) {}
  uint64_t next() {
    uint64_t z = (s_ += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }
  double uniform() { return (next() >> 11) * (1.0 / 9007199254740992.0); }
  double normal() {
    const double u1 = uniform() + 1e-300, u2 = uniform();
    return std::sqrt(-2.0 * std::log(u1)) * std::cos(6.283185307179586 * u2);
  }
  int below(int n) { return static_cast<int>(next() % static_cast<uint64_t>(n)); }
  std::vector<double> normals(std::size_t n, double scale = 1.0) {
    std::vector<double> v(n);
    for (auto& x : v) x = normal() * scale;
    return v;
  }

 private:
  uint64_t s_;
};

template <typename To, typename From>
std::vector<To> cast(const std::vector<From>& v) {
  return std::vector<To>(v.begin(), v.end());
}

// max |a - b| / max(1, max |b|): error relative to the tensor's scale, so tiny entries of a large
// tensor are not held to an impossible relative bound.
template <typename A, typename B>
double scaled_error(const std::vector<A>& a, const std::vector<B>& b) {
  double maxb = 1.0, err = 0.0;
  for (std::size_t i = 0; i < b.size(); ++i) maxb = std::fmax(maxb, std::fabs(double(b[i])));
  for (std::size_t i = 0; i < a.size() && i < b.size(); ++i) err = std::fmax(err, std::fabs(double(a[i]) - double(b[i])));
  if (a.size() != b.size()) return INFINITY;
  return err / maxb;
}

void check_close(const std::string& name, double err, double tol);

class Timer {
 public:
  Timer() : t0_(std::chrono::steady_clock::now()) {}
  double seconds() const {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0_).count();
  }

 private:
  std::chrono::steady_clock::time_point t0_;
};

// Runs fn repeatedly for about `budget` seconds (at least twice) and returns seconds per call.
template <typename F>
double time_per_call(F&& fn, double budget = 0.2) {
  fn();  // warm up
  Timer t;
  int n = 0;
  do {
    fn();
    ++n;
  } while (t.seconds() < budget);
  return t.seconds() / n;
}

// A named piece of a section, the grain the barrier sweep (barrier_sweep.cc) reruns alone. An
// exception it throws is a failed check naming it. In an emulated build each run records its time
// and the __syncthreads() sites its kernels executed.
void unit(const std::string& name, const std::function<void()>& fn);
struct UnitRun {
  std::string name;
  double seconds = 0;
  std::vector<std::string> barriers;  // "file.cu:line"
};
const std::vector<UnitRun>& unit_runs();
void set_only_unit(const std::string& name);  // --unit: every other unit is skipped

// Opens a section that needs a CUDA device: prints its heading and, where no device is usable, that
// the section is skipped and why. The section runs only where the returned status is usable.
revenant::CudaStatus cuda_section(const char* heading);

// Sections, each defined in its own file.
void run_op_tests();
void run_lm_head_tests();
void run_model_tests();
void run_lora_tests();
void run_refusal_tests();
void run_cuda_tests();
void run_cuda_tc_tests();
void run_cuda_reduction_tests();
void run_cuda_step_tests();
void run_generate_tests();
void run_cuda_memory_tests();
void run_cuda_sim_tests();
void run_barrier_sweep();
void run_bench();
void run_bench_tc();

}  // namespace rvtest
