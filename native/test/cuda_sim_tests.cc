// The CUDA emulator checked (part of the `cuda` section, in builds with REVENANT_CUDA_SIM):
//   - the kernels of native/src/cuda, run by the sections before, drew no checker report;
//   - every __global__ function of native/src/cuda ran at least once (the list printed);
//   - the checkers fail where they must: a removed barrier (in a test kernel here; every barrier of
//     native/src/cuda in barrier_sweep.cc), an off-by-one global read, a missing __syncwarp, a read
//     past the dynamic shared size, two blocks storing to one output, lanes leaving a collective, a
//     null write (the backend's device-lost test); and stay quiet on the corrected kernels;
//   - __launch_bounds__ enforced with CUDA's error code;
//   - warp collectives, atomics, bf16 rounding and launch limits give CUDA's answers and codes.
#include <algorithm>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "harness.h"

#ifdef REVENANT_CUDA_SIM
#include <cuda_runtime.h>

#include "core/backend.h"
#include "core/device_info.h"
#include "core/error.h"
#include "cuda_sim/cuda_sim.h"

namespace rvtest::sim {
void tree_sum(const float* x, float* out, bool with_barrier);
void off_by_one(const float* x, float* out, int n);
void warp_handoff(float* out, bool with_syncwarp);
void dynamic_read(float* out, int n, int read);
void early_exit_shuffle(float* out);
void collectives(int* out);
void atomic_count(int* counter, int blocks, int threads);
void shared_output(float* out, int blocks);
int launch_config(dim3 grid, dim3 block, std::size_t shared, int opt_in);
int launch_bounded(int threads);
unsigned short bf16_bits(float f);
float bf16_value(unsigned short bits);
}  // namespace rvtest::sim
#endif

namespace rvtest {

#ifdef REVENANT_CUDA_SIM
namespace {

// Device memory for a test, freed at scope end.
template <typename T>
struct Dev {
  T* p = nullptr;
  std::size_t n;
  explicit Dev(std::size_t n_, const std::vector<T>& init = {}) : n(n_) {
    cudaMalloc(&p, n * sizeof(T));
    if (!init.empty()) cudaMemcpy(p, init.data(), n * sizeof(T), cudaMemcpyHostToDevice);
  }
  ~Dev() { cudaFree(p); }
  std::vector<T> host() const {
    std::vector<T> h(n);
    cudaMemcpy(h.data(), p, n * sizeof(T), cudaMemcpyDeviceToHost);
    return h;
  }
};

std::string joined(const std::vector<std::string>& v) {
  std::string s;
  for (const auto& x : v) s += (s.empty() ? "" : " | ") + x;
  return s;
}

bool mentions(const std::vector<std::string>& findings, const std::vector<std::string>& words) {
  for (const auto& f : findings) {
    bool all = true;
    for (const auto& w : words) all = all && f.find(w) != std::string::npos;
    if (all) return true;
  }
  return false;
}

// Runs `fn`, then expects a report holding every word and (when `error`) that sticky error,
// which is cleared afterwards as a restarted process would have it.
template <typename Fn>
void expect_caught(const std::string& name, Fn fn, const std::vector<std::string>& words,
                   cudaError_t error = cudaSuccess) {
  cuda_sim::take_findings();
  fn();
  const cudaError_t got = cudaGetLastError();
  const std::vector<std::string> f = cuda_sim::take_findings();
  check(mentions(f, words) && (error == cudaSuccess || got == error), "emulator catches " + name,
        f.empty() ? "no report (error " + std::string(cudaGetErrorName(got)) + ")" : f[0]);
  cuda_sim::reset_device();
}

// Reports drawn since the last take, by kernels that should draw none.
void expect_no_reports(const std::string& what) {
  const std::vector<std::string> f = cuda_sim::take_findings();
  check(f.empty(), "emulator: no checker report from " + what, f.empty() ? "" : f[0]);
}

template <typename Fn>
void expect_quiet(const std::string& name, Fn fn) {
  cuda_sim::take_findings();
  fn();
  const cudaError_t got = cudaGetLastError();
  const std::vector<std::string> f = cuda_sim::take_findings();
  check(f.empty() && got == cudaSuccess, "emulator passes " + name, f.empty() ? cudaGetErrorName(got) : f[0]);
  cuda_sim::reset_device();
}

void checker_tests() {
  std::vector<float> ones(64, 1.0f);
  Dev<float> x(64, ones), out(64);
  expect_caught("a removed barrier (racecheck)", [&] { sim::tree_sum(x.p, out.p, false); },
                {"racecheck", "tree_sum_kernel", "block (0,0,0)", "thread (", "hazard on shared byte 0x"});
  expect_quiet("the tree sum with its barrier", [&] { sim::tree_sum(x.p, out.p, true); });
  check(out.host()[0] == 64.0f, "emulator: tree sum with barriers gives 64", std::to_string(out.host()[0]));

  Dev<float> in(40, std::vector<float>(40, 2.0f)), copy(40);
  expect_caught("an off-by-one global read (memcheck)", [&] { sim::off_by_one(in.p, copy.p, 40); },
                {"memcheck", "off_by_one_kernel", "block (1,0,0)", "thread (8,0,0)", "invalid global read of 4 bytes",
                 "0 bytes past the end of the 160-byte allocation"},
                cudaErrorIllegalAddress);
  expect_caught("a missing __syncwarp (racecheck, same warp)", [&] { sim::warp_handoff(out.p, false); },
                {"racecheck", "warp_handoff_kernel", "thread (1,0,0)", "read-after-write", "nor __syncwarp"});
  expect_quiet("the hand-off with __syncwarp", [&] { sim::warp_handoff(out.p, true); });
  expect_caught("a read past the dynamic shared size (memcheck)", [&] { sim::dynamic_read(out.p, 100, 100); },
                {"memcheck", "dynamic_read_kernel", "thread (0,0,0)", "dynamic shared memory, which has 400 bytes"},
                cudaErrorIllegalAddress);
  expect_quiet("a read inside the dynamic shared size", [&] { sim::dynamic_read(out.p, 100, 99); });
  check(out.host()[0] == 99.0f, "emulator: dynamic shared memory read back", std::to_string(out.host()[0]));
  expect_caught("two blocks storing to one output (racecheck, global)", [&] { sim::shared_output(out.p, 2); },
                {"racecheck", "shared_output_kernel", "block (1,0,0)", "thread (0,0,0)", "write-after-write hazard on global",
                 "of block (0,0,0) also stored there"});
  expect_quiet("one block storing its outputs", [&] { sim::shared_output(out.p, 1); });
  expect_caught("lanes leaving a full-mask shuffle (synccheck)", [&] { sim::early_exit_shuffle(out.p); },
                {"synccheck", "early_exit_shuffle_kernel", "exited"});

  // The backend's own fault: a write through a null pointer becomes a sticky illegal address.
  bool lost = false;
  std::string what;
  try {
    revenant::make_cuda_backend()->test_device_lost();
  } catch (const revenant::DeviceLostError& e) {
    lost = true;
    what = e.what();
  } catch (const std::exception& e) {
    what = e.what();
  }
  const std::vector<std::string> f = cuda_sim::take_findings();
  check(lost && mentions(f, {"memcheck", "fault_kernel", "invalid global write of 4 bytes at 0x0"}),
        "emulator: a null write in fault_kernel is a memcheck report and a DeviceLostError", f.empty() ? what : f[0]);
  cuda_sim::reset_device();
}

void collective_tests() {
  Dev<int> out(9 * 32);
  sim::collectives(out.p);
  const std::vector<int> r = out.host();
  bool ok[9] = {true, true, true, true, true, true, true, true, true};
  unsigned ballot = 0;
  for (int l = 0; l < 32; ++l)
    if (l % 3 == 0) ballot |= 1u << l;
  for (int l = 0; l < 32; ++l) {
    const int v = 100 + l;
    ok[0] = ok[0] && r[l] == 105;
    ok[1] = ok[1] && r[32 + l] == 100 + (l / 8) * 8 + (l + 3) % 8;
    ok[2] = ok[2] && r[64 + l] == 100 + (l ^ 6);
    ok[3] = ok[3] && r[96 + l] == (l + 3 < 32 ? v + 3 : v);
    ok[4] = ok[4] && r[128 + l] == (l % 16 >= 2 ? v - 2 : v);
    ok[5] = ok[5] && static_cast<unsigned>(r[160 + l]) == ballot;
    ok[6] = ok[6] && r[192 + l] == 1;  // any(lane == 7) true, all(lane < 31) false
    ok[7] = ok[7] && r[224 + l] == (l < 16 ? 120 : 376);
    ok[8] = ok[8] && r[256 + l] == 8;
  }
  const char* names[9] = {"__shfl_sync", "__shfl_sync width 8", "__shfl_xor_sync", "__shfl_down_sync",
                          "__shfl_up_sync width 16", "__ballot_sync", "__any_sync/__all_sync",
                          "half-warp masks (two reductions)", "__syncthreads_count"};
  for (int i = 0; i < 9; ++i) check(ok[i], std::string("emulator: ") + names[i] + " as CUDA defines it", "");
  expect_no_reports("the collectives");

  Dev<int> counter(1, {0});
  sim::atomic_count(counter.p, 3, 100);
  check(counter.host()[0] == 300, "emulator: atomicAdd from 3 blocks of 100 threads", std::to_string(counter.host()[0]));
  expect_no_reports("atomics on one address");
}

void bf16_tests() {
  struct Case {
    float in;
    unsigned short bits;
    const char* why;
  };
  const Case cases[] = {
      {1.0f, 0x3f80, "exact"},
      {1.0f + 1.0f / 256, 0x3f80, "tie between 1 and 1+2^-7 goes to the even 1"},
      {1.0f + 3.0f / 256, 0x3f82, "tie between 1+2^-7 and 1+2^-6 goes to the even 1+2^-6"},
      {1.0f + 1.0f / 256 + 1.0f / 65536, 0x3f81, "above the tie rounds up"},
      {-2.5f, 0xc020, "negative exact"},
      {3.0e38f, 0x7f62, "large finite"},
      {3.4028235e38f, 0x7f80, "FLT_MAX rounds to infinity"},
      {INFINITY, 0x7f80, "infinity"},
      {1e-40f, 0x0001, "subnormal"},
      {NAN, 0x7fff, "NaN is canonical"},
  };
  for (const Case& c : cases) {
    const unsigned short got = sim::bf16_bits(c.in);
    char detail[96];
    std::snprintf(detail, sizeof detail, "got 0x%04x, want 0x%04x", got, c.bits);
    check(got == c.bits, std::string("emulator: __float2bfloat16_rn ") + c.why, detail);
  }
  check(sim::bf16_value(0x3f81) == 1.0f + 1.0f / 128, "emulator: __bfloat162float is exact", "");
}

void limit_tests() {
  struct Case {
    const char* what;
    dim3 grid, block;
    std::size_t shared;
    int opt_in;
    cudaError_t want;
  };
  const Case cases[] = {
      {"1024 threads per block", dim3(1), dim3(1024), 0, 0, cudaSuccess},
      {"1025 threads per block", dim3(1), dim3(1025), 0, 0, cudaErrorInvalidConfiguration},
      {"block z of 65", dim3(1), dim3(1, 1, 65), 0, 0, cudaErrorInvalidConfiguration},
      {"grid y of 65536", dim3(1, 65536), dim3(32), 0, 0, cudaErrorInvalidConfiguration},
      {"grid z of 65536", dim3(1, 1, 65536), dim3(32), 0, 0, cudaErrorInvalidConfiguration},
      {"a zero grid", dim3(0), dim3(32), 0, 0, cudaErrorInvalidConfiguration},
      {"48 KiB dynamic shared memory", dim3(1), dim3(32), 48 * 1024, 0, cudaSuccess},
      {"48 KiB + 4 dynamic shared memory without opt-in", dim3(1), dim3(32), 48 * 1024 + 4, 0, cudaErrorInvalidValue},
      {"227 KiB dynamic shared memory with opt-in", dim3(1), dim3(32), 227 * 1024, 227 * 1024, cudaSuccess},
      {"an opt-in above 227 KiB", dim3(1), dim3(32), 0, 227 * 1024 + 4, cudaErrorInvalidValue},
  };
  for (const Case& c : cases) {
    const cudaError_t got = static_cast<cudaError_t>(sim::launch_config(c.grid, c.block, c.shared, c.opt_in));
    check(got == c.want, std::string("emulator limit: ") + c.what + " -> " + cudaGetErrorName(c.want),
          cudaGetErrorName(got));
  }
  // __launch_bounds__(64): 64 threads run, 65 are refused as a device refuses them.
  const cudaError_t within = static_cast<cudaError_t>(sim::launch_bounded(64));
  const cudaError_t past = static_cast<cudaError_t>(sim::launch_bounded(65));
  check(within == cudaSuccess && past == cudaErrorLaunchOutOfResources,
        "emulator limit: 65 threads for a kernel of __launch_bounds__(64) -> cudaErrorLaunchOutOfResources",
        std::string(cudaGetErrorName(within)) + ", " + cudaGetErrorName(past));
  // Those of native/src/cuda too: flash attention's three kernels, gemm_tc_kernel, and the test's.
  check(cuda_sim::registered_launch_bounds() >= 5, "emulator: the __launch_bounds__ of the kernels are registered",
        std::to_string(cuda_sim::registered_launch_bounds()) + " kernels");
  int cc = 0;
  cudaDeviceGetAttribute(&cc, cudaDevAttrComputeCapabilityMajor, 0);
  std::size_t free = 0, total = 0;
  cudaMemGetInfo(&free, &total);
  check(cc == 9 && total > 0 && free <= total, "emulator: an sm_90-like device with memory to report",
        "compute capability major " + std::to_string(cc));
  expect_no_reports("the launches of the limit checks");
}

// A card the build has no code for (sm_70, sm_61) is refused with the reason, so "auto" takes the
// CPU instead of failing at the first op; one it has code for (machine code for 7.5 to 8.9 and
// their minors, PTX for 9.0 and newer) is used.
void architecture_tests() {
  struct Case {
    int major, minor;
    bool usable;
  };
  const Case cases[] = {{7, 0, false}, {6, 1, false}, {7, 5, true}, {8, 6, true}, {8, 7, true}, {9, 0, true}, {12, 0, true}};
  for (const Case& c : cases) {
    cuda_sim::set_compute_capability(c.major, c.minor);
    const revenant::CudaStatus st = revenant::cuda_status(0);
    const std::string cc = std::to_string(c.major) + "." + std::to_string(c.minor);
    const bool named = c.usable || st.reason.find("compute capability " + cc) != std::string::npos;
    check(st.usable == c.usable && named,
          "cuda_status on a compute capability " + cc + " part: " + (c.usable ? "usable" : "refused, with the reason"),
          st.usable ? "usable" : st.reason);
    if (!c.usable) {
      const revenant::BackendChoice auto_choice = revenant::choose_backend("auto");
      check(auto_choice.device == "cpu" && auto_choice.fallback == st.reason,
            "device \"auto\" on a compute capability " + cc + " part falls back to the CPU", auto_choice.device);
    }
  }
  cuda_sim::set_compute_capability(9, 0);
}

// An op on zero elements does nothing, as on the CPU, instead of launching a grid without blocks;
// on the fp32 kernels and on the fast ones (tensor-core GEMM, flash attention).
void zero_element_tests(bool fast) {
  auto g = revenant::make_cuda_backend(0, fast);
  float* buf = static_cast<float*>(g->alloc(1024 * sizeof(float)));
  int* tok = static_cast<int*>(g->alloc(64 * sizeof(int)));
  std::string failed;
  auto run = [&](const char* op, auto fn) {
    try {
      fn();
    } catch (const std::exception& e) {
      failed += std::string(failed.empty() ? "" : "; ") + op + ": " + e.what();
    }
  };
  run("embedding_forward", [&] { g->embedding_forward(buf, tok, buf, buf, 0, 4, 8, 0); });
  run("layernorm_forward", [&] { g->layernorm_forward(buf, buf, buf, buf, buf, buf, 0, 8); });
  run("layernorm_backward", [&] { g->layernorm_backward(buf, buf, buf, buf, buf, buf, buf, buf, 0, 8); });
  run("matmul_forward", [&] { g->matmul_forward(buf, buf, buf, buf, 0, 8, 8); });
  run("matmul_backward", [&] { g->matmul_backward(buf, buf, buf, buf, buf, buf, 0, 8, 8); });
  run("attention_forward", [&] { g->attention_forward(buf, buf, buf, 0, 4, 8, 2, 2); });
  run("attention_backward", [&] { g->attention_backward(buf, buf, buf, buf, 0, 4, 8, 2, 2); });
  run("gelu_forward", [&] { g->gelu_forward(buf, buf, 0); });
  run("gelu_backward", [&] { g->gelu_backward(buf, buf, buf, 0); });
  run("residual_forward", [&] { g->residual_forward(buf, buf, buf, 0); });
  run("swiglu_forward", [&] { g->swiglu_forward(buf, buf, 0, 8); });
  run("rmsnorm_forward", [&] { g->rmsnorm_forward(buf, buf, buf, buf, 0, 8, 1e-5f); });
  run("logprob_forward", [&] { g->logprob_forward(buf, buf, buf, tok, 0, 8); });
  run("sampling_forward", [&] { g->sampling_forward(tok, buf, 0, 8, 1.0f, 1, 0); });
  run("adamw_update", [&] { g->adamw_update(buf, buf, buf, buf, 0, 1e-3f, 0.9f, 0.999f, 1e-8f, 0.0f, 1, nullptr); });
  double ss = -1;
  run("sum_squares", [&] { ss = g->sum_squares(buf, 0); });
  check(failed.empty() && ss == 0.0,
        std::string("cuda ops on zero elements do nothing, as on the CPU") + (fast ? " [tensor cores + flash]" : " [fp32 kernels]"),
        failed);
  expect_no_reports("the zero-element ops");
  g->release(tok);
  g->release(buf);
}

// Every __global__ function of native/src/cuda (REVENANT_SIM_KERNELS, found by CMake in the
// sources) must have run.
void coverage_test() {
  std::vector<std::string> all, missing;
  const std::string list = REVENANT_SIM_KERNELS;
  for (std::size_t at = 0; at < list.size();) {
    const std::size_t comma = list.find(',', at);
    all.push_back(list.substr(at, comma == std::string::npos ? std::string::npos : comma - at));
    at = comma == std::string::npos ? list.size() : comma + 1;
  }
  const std::vector<std::string> ran = cuda_sim::executed_kernels();
  std::printf("kernels of native/src/cuda (%zu):", all.size());
  for (const auto& k : all) {
    const bool hit = std::find(ran.begin(), ran.end(), k) != ran.end();
    std::printf(" %s%s", k.c_str(), hit ? "" : " (NOT RUN)");
    if (!hit) missing.push_back(k);
  }
  std::printf("\n");
  check(all.size() >= 30 && missing.empty(), "emulator: every __global__ function of native/src/cuda ran",
        missing.empty() ? std::to_string(all.size()) + " kernels" : "not run: " + joined(missing));
}

}  // namespace
#endif

void run_cuda_sim_tests() {
  std::printf("== cuda emulator: checker reports, coverage, the checkers themselves\n");
#ifdef REVENANT_CUDA_SIM
  // Reports drawn by the kernels of native/src/cuda in the sections before.
  const std::vector<std::string> found = cuda_sim::take_findings();
  check(found.empty(), "emulator: no racecheck/memcheck/synccheck/initcheck report from the kernels run above",
        found.empty() ? "" : std::to_string(found.size()) + " reports: " + joined(found));
  collective_tests();
  bf16_tests();
  limit_tests();
  architecture_tests();
  zero_element_tests(false);
  zero_element_tests(true);
  checker_tests();
  coverage_test();  // last: the checker tests run fault_kernel
#else
  std::printf("skipped: not an emulated build (cmake -DREVENANT_CUDA_SIM=ON)\n");
#endif
}

}  // namespace rvtest
