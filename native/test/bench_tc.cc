// Tensor-core GEMM and flash attention timings at the update step of a d_model 1024, 24-layer
// GPT-2 style model on 8 sequences of 512 tokens (M = B*T = 4096 rows), against the fp32 CUDA
// kernels they would replace, with the fraction of the device's dense bf16 tensor-core peak.
// Part of the `bench` section; skipped, with the reason, without a usable device.
#include <cstdio>
#include <functional>
#include <string>

#include "core/backend.h"
#include "core/device_info.h"
#include "harness.h"

#ifdef REVENANT_HAVE_CUDA
#include "cuda/flash_attention.cuh"
#include "cuda/gemm_tc.cuh"
#include "cuda/ops.cuh"
#endif

namespace rvtest {

#ifdef REVENANT_HAVE_CUDA
namespace {
using revenant::Backend;
using revenant::DeviceBuffer;
namespace cuda = revenant::cuda;

constexpr int kB = 8, kT = 512, kC = 1024, kLayers = 24, kNH = 16, kM = kB * kT;

// Dense (no sparsity) bf16 tensor-core peaks in TFLOP/s from NVIDIA's data sheets, matched by
// compute capability and a part of the device name, the first match winning (so "H100 PCIe"
// before the SXM part's plain "H100").
struct Peak {
  int major, minor;
  const char* name_part;
  double tflops;
};
constexpr Peak kPeaks[] = {{9, 0, "H200", 989}, {9, 0, "GH200", 989}, {9, 0, "H100 PCIe", 756},
                           {9, 0, "H100", 989}, {8, 0, "A100", 312},  {8, 9, "L40S", 362},
                           {8, 9, "L4", 121},   {8, 6, "A10", 125}};

// 0 when the device is not in the table.
double bf16_peak(const revenant::CudaStatus& s) {
  for (const Peak& p : kPeaks)
    if (p.major == s.compute_major && p.minor == s.compute_minor && s.name.find(p.name_part) != std::string::npos)
      return p.tflops;
  return 0;
}

DeviceBuffer<float> random_device(Backend& gpu, std::size_t n, Rng& r) {
  DeviceBuffer<float> d(&gpu, n);
  const std::vector<float> h = cast<float>(r.normals(n, 0.5));
  gpu.upload(d.get(), h.data(), n * sizeof(float));
  return d;
}

double seconds(Backend& gpu, const std::function<void()>& fn) {
  return time_per_call([&] {
    fn();
    gpu.synchronize();
  }, 0.1);
}

// Each weight matrix of a layer: the forward product, the weight gradient alone, and the whole
// backward (input and weight gradients), on tensor cores and on the fp32 kernel; forward plus
// backward, summed over the matrices and times the layers, is the GEMM time of one update step.
void bench_gemm(Backend& gpu, double peak) {
  struct Weight { const char* name; int C, OC; };
  const Weight weights[] = {{"qkv", kC, 3 * kC}, {"attn proj", kC, kC}, {"fc", kC, 4 * kC}, {"fc proj", 4 * kC, kC}};
  std::printf("%-40s %10s %10s %9s %8s\n", "GEMM (rows x out x in)", "bf16 TF/s", "fp32 TF/s", "speedup", "of peak");
  double step_tc = 0, step_fp32 = 0;
  Rng r(9);
  for (const Weight& w : weights) {
    const DeviceBuffer<float> inp = random_device(gpu, std::size_t(kM) * w.C, r),
                              wt = random_device(gpu, std::size_t(w.OC) * w.C, r),
                              dout = random_device(gpu, std::size_t(kM) * w.OC, r);
    DeviceBuffer<float> out(&gpu, std::size_t(kM) * w.OC), dinp(&gpu, std::size_t(kM) * w.C),
        dw(&gpu, std::size_t(w.OC) * w.C);
    const double flop = 2.0 * kM * w.C * w.OC;  // one product
    struct Product { const char* what; int products; bool in_step; std::function<void()> tc, fp32; };
    const Product rows[] = {
        {"fwd", 1, true, [&] { cuda::matmul_forward_tc(out.get(), inp.get(), wt.get(), nullptr, kM, w.C, w.OC); },
         [&] { cuda::matmul_forward(out.get(), inp.get(), wt.get(), nullptr, kM, w.C, w.OC); }},
        {"dW", 1, false,
         [&] { cuda::matmul_backward_tc(nullptr, dw.get(), nullptr, dout.get(), inp.get(), wt.get(), kM, w.C, w.OC); },
         [&] { cuda::matmul_backward(nullptr, dw.get(), nullptr, dout.get(), inp.get(), wt.get(), kM, w.C, w.OC); }},
        {"bwd (dinp + dW)", 2, true,
         [&] { cuda::matmul_backward_tc(dinp.get(), dw.get(), nullptr, dout.get(), inp.get(), wt.get(), kM, w.C, w.OC); },
         [&] { cuda::matmul_backward(dinp.get(), dw.get(), nullptr, dout.get(), inp.get(), wt.get(), kM, w.C, w.OC); }}};
    for (const Product& p : rows) {
      const double f = p.products * flop, tc = seconds(gpu, p.tc), fp32 = seconds(gpu, p.fp32);
      if (p.in_step) {
        step_tc += tc;
        step_fp32 += fp32;
      }
      const std::string name = std::string(w.name) + " " + p.what + " " + std::to_string(kM) + "x" +
                               std::to_string(w.OC) + "x" + std::to_string(w.C);
      char frac[16] = "-";
      if (peak > 0) std::snprintf(frac, sizeof frac, "%.1f%%", 100 * f / tc / 1e12 / peak);
      std::printf("%-40s %10.1f %10.1f %8.1fx %8s\n", name.c_str(), f / tc / 1e12, f / fp32 / 1e12, fp32 / tc, frac);
    }
  }
  std::printf("GEMMs of one update step (%d layers, forward + backward): %.1f ms bf16 tensor cores, %.1f ms fp32\n",
              kLayers, 1e3 * kLayers * step_tc, 1e3 * kLayers * step_fp32);
}

void bench_attention(Backend& gpu, int NKV) {
  const int hs = kC / kNH, QKV = kC + 2 * NKV * hs;
  Rng r(11);
  const DeviceBuffer<float> qkv = random_device(gpu, std::size_t(kM) * QKV, r), dout = random_device(gpu, std::size_t(kM) * kC, r);
  DeviceBuffer<float> out(&gpu, std::size_t(kM) * kC), dqkv(&gpu, std::size_t(kM) * QKV),
      att(&gpu, std::size_t(kB) * kNH * kT * kT), lse(&gpu, std::size_t(kB) * kNH * kT), delta(&gpu, std::size_t(kB) * kNH * kT);
  const double fwd = seconds(gpu, [&] { cuda::attention_forward(out.get(), att.get(), qkv.get(), kB, kT, kC, kNH, NKV); });
  const double bwd = seconds(gpu, [&] { cuda::attention_backward(dqkv.get(), dout.get(), qkv.get(), att.get(), kB, kT, kC, kNH, NKV); });
  const double ffwd = seconds(gpu, [&] { cuda::flash_attention_forward(out.get(), lse.get(), qkv.get(), kB, kT, kC, kNH, NKV); });
  const double fbwd = seconds(gpu, [&] {
    cuda::flash_attention_backward(dqkv.get(), delta.get(), dout.get(), qkv.get(), lse.get(), kB, kT, kC, kNH, NKV);
  });
  std::printf("attention B%d T%d C%d heads %d/%d: forward %.3f ms flash vs %.3f ms existing (%.1fx); backward %.3f ms "
              "flash vs %.3f ms existing (%.1fx)\n",
              kB, kT, kC, kNH, NKV, 1e3 * ffwd, 1e3 * fwd, fwd / ffwd, 1e3 * fbwd, 1e3 * bwd, bwd / fbwd);
}

}  // namespace
#endif

void run_bench_tc() {
  const revenant::CudaStatus s =
      cuda_section("bench tensor cores (update step: d_model 1024, 24 layers, 8 x 512 tokens)");
  if (!s.usable) return;
#ifdef REVENANT_HAVE_CUDA
  auto gpu = revenant::make_cuda_backend();
  const double peak = bf16_peak(s);
  std::printf("device: %s (compute capability %d.%d); dense bf16 peak: ", s.name.c_str(), s.compute_major, s.compute_minor);
  if (peak > 0) std::printf("%.0f TFLOP/s\n", peak);
  else std::printf("unknown for this device (not in the table), fraction not printed\n");
  if (cuda::tensor_cores_supported()) bench_gemm(*gpu, peak);
  else std::printf("GEMM skipped: bf16 tensor cores need compute capability 8.0 or newer\n");
  bench_attention(*gpu, kNH);
  bench_attention(*gpu, 4);
#endif
}

}  // namespace rvtest
