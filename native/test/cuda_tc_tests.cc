// Tensor-core GEMM (cuda/gemm_tc.cu) and flash attention (cuda/flash_attention.cu) against the CPU
// reference ops run in double, on ragged shapes, plus a determinism check (two runs, same bits).
// Part of the `cuda` section; skipped, with the reason, without a usable device (and the GEMM
// without bf16 tensor cores, compute capability below 8.0).
//
// Tolerances.
// GEMM: each operand is rounded to bf16 (8 significant bits, unit roundoff u = 2^-8), so a product
//   a_k b_k carries a relative error d_k of at most ~2u; the fp32 sums add ~K * 2^-24, negligible.
//   An output's error sum_k a_k b_k d_k has standard deviation ~ sqrt(2/3) u ||a_k b_k||_2
//   (||a_k b_k||_2 = sqrt(sum_k (a_k b_k)^2)): for terms of one size, the sqrt(K) * 2^-8 relative
//   error of a K-long dot product. Every output is held to
//     |c - ref| <= 6 u ||a_k b_k||_2 + 1e-5 (1 + |ref|)
//   (about 7 standard deviations, so the worst of ~10^5 outputs passes; the second term covers
//   fp32 rounding of the bias and accumulate adds and of tanhf in the GELU, whose slope is at most
//   1.13 and is covered by the margin of the first). The check prints the worst ratio of error
//   to allowance (<= 1 passes); a wrong tile, transpose or edge misses by orders of magnitude.
// Flash attention: fp32 throughout, like the fp32 kernels of cuda_tests.cc, but the online softmax
//   rescales partial sums and the backward recomputes probabilities from the log-sum-exp, a few
//   ulp more per value: scaled error 1e-5 for the forward, 2e-5 for the backward.
#include <cmath>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "core/backend.h"
#include "core/device_info.h"
#include "harness.h"

#ifdef REVENANT_HAVE_CUDA
#include "cpu/ops.h"
#include "cuda/flash_attention.cuh"
#include "cuda/gemm_tc.cuh"
#endif

namespace rvtest {

#ifdef REVENANT_HAVE_CUDA
namespace {
using revenant::Backend;
using revenant::DeviceBuffer;
namespace cpu = revenant::cpu;
namespace cuda = revenant::cuda;

using Vec = std::vector<double>;

std::string shape_name(const char* what, std::initializer_list<int> dims) {
  std::string s = what;
  const char* sep = " ";
  for (int d : dims) {
    s += sep + std::to_string(d);
    sep = "x";
  }
  return s;
}

// A float copy of host values in device memory.
DeviceBuffer<float> to_device(Backend& gpu, const Vec& v) {
  DeviceBuffer<float> d(&gpu, v.size());
  const std::vector<float> f = cast<float>(v);
  gpu.upload(d.get(), f.data(), f.size() * sizeof(float));
  return d;
}

std::vector<float> to_host(Backend& gpu, const DeviceBuffer<float>& d) {
  std::vector<float> h(d.size());
  gpu.download(h.data(), d.get(), h.size() * sizeof(float));
  return h;
}

// The inputs as the GPU sees them (rounded to float), in double for the reference.
Vec as_float(const Vec& v) { return cast<double>(cast<float>(v)); }

Vec squares(const Vec& v) {
  Vec s(v.size());
  for (std::size_t i = 0; i < v.size(); ++i) s[i] = v[i] * v[i];
  return s;
}

// Worst |got - ref| / allowance over the outputs (header: the bf16 GEMM bound); norm2[i] is
// sum_k (a_k b_k)^2 of output i.
double bf16_ratio(const std::vector<float>& got, const Vec& ref, const Vec& norm2) {
  const double u = std::ldexp(1.0, -8);
  double worst = 0;
  for (std::size_t i = 0; i < ref.size(); ++i) {
    const double allow = 6 * u * std::sqrt(norm2[i]) + 1e-5 * (1 + std::fabs(ref[i]));
    worst = std::fmax(worst, std::fabs(got[i] - ref[i]) / allow);
  }
  return got.size() == ref.size() ? worst : INFINITY;
}

bool same_bits(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

// matmul_forward_tc and matmul_backward_tc (dinp: A B, dw: A^T B, dbias) on one shape, with
// gradients accumulated onto nonzero values, run twice.
void gemm_matmul_case(Backend& gpu, int N, int C, int OC) {
  Rng r(1000 + N + C + OC);
  const Vec inp = as_float(r.normals(std::size_t(N) * C)), w = as_float(r.normals(std::size_t(OC) * C, 0.5)),
            bias = as_float(r.normals(OC)), dout = as_float(r.normals(std::size_t(N) * OC)),
            dinp0 = as_float(r.normals(std::size_t(N) * C, 0.1)), dw0 = as_float(r.normals(std::size_t(OC) * C, 0.1)),
            db0 = as_float(r.normals(OC, 0.1));
  Vec out(std::size_t(N) * OC), dinp = dinp0, dw = dw0, db = db0;
  cpu::matmul_forward<double>(out.data(), inp.data(), w.data(), bias.data(), N, C, OC);
  cpu::matmul_backward<double>(dinp.data(), dw.data(), db.data(), dout.data(), inp.data(), w.data(), N, C, OC);
  // Sums of squared terms: the same products on squared operands.
  const Vec inp2 = squares(inp), w2 = squares(w), dout2 = squares(dout);
  Vec out_n(out.size()), dinp_n(dinp.size()), dw_n(dw.size());
  cpu::matmul_forward<double>(out_n.data(), inp2.data(), w2.data(), nullptr, N, C, OC);
  cpu::matmul_backward<double>(dinp_n.data(), dw_n.data(), nullptr, dout2.data(), inp2.data(), w2.data(), N, C, OC);

  const DeviceBuffer<float> g_inp = to_device(gpu, inp), g_w = to_device(gpu, w), g_bias = to_device(gpu, bias),
                            g_dout = to_device(gpu, dout);
  std::vector<float> runs[2][4];
  for (auto& run : runs) {
    DeviceBuffer<float> g_out(&gpu, out.size());
    DeviceBuffer<float> g_dinp = to_device(gpu, dinp0), g_dw = to_device(gpu, dw0), g_db = to_device(gpu, db0);
    cuda::matmul_forward_tc(g_out.get(), g_inp.get(), g_w.get(), g_bias.get(), N, C, OC);
    cuda::matmul_backward_tc(g_dinp.get(), g_dw.get(), g_db.get(), g_dout.get(), g_inp.get(), g_w.get(), N, C, OC);
    run[0] = to_host(gpu, g_out);
    run[1] = to_host(gpu, g_dinp);
    run[2] = to_host(gpu, g_dw);
    run[3] = to_host(gpu, g_db);
  }
  const std::string s = shape_name("", {N, C, OC});
  check_close("gemm_tc matmul_forward (bias) vs cpu, error/bound," + s, bf16_ratio(runs[0][0], out, out_n), 1.0);
  check_close("gemm_tc matmul_backward dinp (A B) vs cpu, error/bound," + s, bf16_ratio(runs[0][1], dinp, dinp_n), 1.0);
  check_close("gemm_tc matmul_backward dw (A^T B) vs cpu, error/bound," + s, bf16_ratio(runs[0][2], dw, dw_n), 1.0);
  check_close("gemm_tc matmul_backward dbias (fp32) vs cpu," + s, scaled_error(runs[0][3], db), 1e-5);
  bool same = true;
  for (int i = 0; i < 4; ++i) same = same && same_bits(runs[0][i], runs[1][i]);
  check(same, "gemm_tc matmul forward+backward deterministic (two runs, same bits)," + s, "");
}

// gemm_tc's fused epilogue, gelu(A B^T + bias), against the reference matmul then gelu.
void gemm_gelu_case(Backend& gpu, int M, int N, int K) {
  Rng r(77 + M + N + K);
  const Vec a = as_float(r.normals(std::size_t(M) * K)), b = as_float(r.normals(std::size_t(N) * K, 0.3)),
            bias = as_float(r.normals(N));
  Vec pre(std::size_t(M) * N), ref(pre.size()), norm2(pre.size());
  cpu::matmul_forward<double>(pre.data(), a.data(), b.data(), bias.data(), M, K, N);
  cpu::gelu_forward<double>(ref.data(), pre.data(), static_cast<int>(pre.size()));
  const Vec a2 = squares(a), b2 = squares(b);
  cpu::matmul_forward<double>(norm2.data(), a2.data(), b2.data(), nullptr, M, K, N);
  const DeviceBuffer<float> ga = to_device(gpu, a), gb = to_device(gpu, b), gbias = to_device(gpu, bias);
  DeviceBuffer<float> gc(&gpu, ref.size());
  cuda::gemm_tc(gc.get(), ga.get(), false, gb.get(), true, M, N, K, false, gbias.get(), true, "test");
  check_close("gemm_tc bias+GELU epilogue vs cpu, error/bound," + shape_name("", {M, N, K}),
              bf16_ratio(to_host(gpu, gc), ref, norm2), 1.0);
}

void gemm_tests(Backend& gpu) {
  if (!cuda::tensor_cores_supported()) {
    std::printf("skipped: tensor-core GEMM needs compute capability 8.0 or newer\n");
    return;
  }
  // (N, C, OC): one element; all below one 16x16 fragment's multiple; across block tiles with K
  // not a multiple of the 32 k-step; exact multiples of the 128 tile; a long ragged K.
  const int shapes[][3] = {{1, 1, 1}, {17, 48, 67}, {130, 200, 129}, {256, 128, 384}, {300, 1030, 140}};
  for (const auto& s : shapes) gemm_matmul_case(gpu, s[0], s[1], s[2]);
  gemm_gelu_case(gpu, 150, 260, 72);
}

// Flash attention forward and backward on one shape against attention_forward/backward in double.
void flash_case(Backend& gpu, int B, int T, int C, int NH, int NKV) {
  const int hs = C / NH, QKV = C + 2 * NKV * hs;
  Rng r(500 + B * T + C + NH + NKV);
  const Vec qkv = as_float(r.normals(std::size_t(B) * T * QKV)), dout = as_float(r.normals(std::size_t(B) * T * C)),
            dqkv0 = as_float(r.normals(qkv.size(), 0.1));
  Vec out(dout.size()), att(std::size_t(B) * NH * T * T), dqkv = dqkv0;
  cpu::attention_forward<double>(out.data(), att.data(), qkv.data(), B, T, C, NH, NKV);
  cpu::attention_backward<double>(dqkv.data(), dout.data(), qkv.data(), att.data(), B, T, C, NH, NKV);
  // The gradient alone: the accumulated values minus where they started (a kernel that overwrote
  // instead of adding is off by the start).
  Vec grad(dqkv.size());
  for (std::size_t i = 0; i < grad.size(); ++i) grad[i] = dqkv[i] - dqkv0[i];

  const DeviceBuffer<float> g_qkv = to_device(gpu, qkv), g_dout = to_device(gpu, dout);
  std::vector<float> runs[2][2];
  for (auto& run : runs) {
    DeviceBuffer<float> g_out(&gpu, out.size()), g_lse(&gpu, std::size_t(B) * NH * T),
        g_delta(&gpu, std::size_t(B) * NH * T), g_dqkv = to_device(gpu, dqkv0);
    cuda::flash_attention_forward(g_out.get(), g_lse.get(), g_qkv.get(), B, T, C, NH, NKV);
    cuda::flash_attention_backward(g_dqkv.get(), g_delta.get(), g_dout.get(), g_qkv.get(), g_lse.get(), B, T, C, NH,
                                   NKV);
    run[0] = to_host(gpu, g_out);
    run[1] = to_host(gpu, g_dqkv);
  }
  std::vector<float> g_grad(grad.size());
  for (std::size_t i = 0; i < grad.size(); ++i) g_grad[i] = static_cast<float>(runs[0][1][i] - dqkv0[i]);
  const std::string s = " B" + std::to_string(B) + " T" + std::to_string(T) + " C" + std::to_string(C) + " heads " +
                        std::to_string(NH) + "/" + std::to_string(NKV) + " (hs " + std::to_string(hs) + ")";
  check_close("flash_attention_forward vs cpu" + s, scaled_error(runs[0][0], out), 1e-5);
  check_close("flash_attention_backward dqkv vs cpu" + s, scaled_error(g_grad, grad), 2e-5);
  check(same_bits(runs[0][0], runs[1][0]) && same_bits(runs[0][1], runs[1][1]),
        "flash_attention forward+backward deterministic (two runs, same bits)" + s, "");
}

void flash_tests(Backend& gpu) {
  // T below, across and not a multiple of the 8-query blocks and 32-key tiles; grouped (4/2),
  // multi-query (6/1) and plain (4/4, 3/3) heads; head sizes 12 (not a multiple of 16) to 128,
  // the widest the kernels take; a single position.
  const int shapes[][5] = {{2, 17, 48, 4, 2}, {1, 70, 64, 4, 4}, {2, 33, 96, 6, 1},
                           {3, 100, 96, 3, 3}, {1, 130, 256, 2, 1}, {2, 1, 32, 1, 1}};
  for (const auto& s : shapes) flash_case(gpu, s[0], s[1], s[2], s[3], s[4]);
}

}  // namespace
#endif

void run_cuda_tc_tests() {
  const revenant::CudaStatus s = cuda_section("cuda tensor-core GEMM and flash attention vs cpu");
  if (!s.usable) return;
#ifdef REVENANT_HAVE_CUDA
  std::printf("device: %s (compute capability %d.%d)\n", s.name.c_str(), s.compute_major, s.compute_minor);
  auto gpu = revenant::make_cuda_backend();
  unit("tensor-core gemm", [&] { gemm_tests(*gpu); });
  unit("flash attention", [&] { flash_tests(*gpu); });
#endif
}

}  // namespace rvtest
