// Timings of every op at the default model's training shapes (B=64, T=32, C=64, 4 heads,
// vocab 16) on the CPU backend and, where a device exists, the CUDA backend; then matrix-product
// GFLOP/s (our kernel vs BLAS) and whole-model rollout and training throughput.
#include <algorithm>
#include <cstdio>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "core/backend.h"
#include "core/device_info.h"
#include "core/model.h"
#include "cpu/gemm.h"
#include "harness.h"

namespace rvtest {
using namespace revenant;

namespace {

constexpr int B = 64, T = 32, C = 64, NH = 4, V = 16, N = B * T;

struct Buffers {
  Backend& be;
  std::vector<void*> owned;
  float* f(std::size_t n, Rng& r) {
    std::vector<float> h = cast<float>(r.normals(n, 0.5));
    float* p = static_cast<float*>(be.alloc(n * sizeof(float)));
    be.upload(p, h.data(), n * sizeof(float));
    owned.push_back(p);
    return p;
  }
  int* tokens(std::size_t n, Rng& r) {
    std::vector<int> h(n);
    for (auto& t : h) t = r.below(V);
    int* p = static_cast<int*>(be.alloc(n * sizeof(int)));
    be.upload(p, h.data(), n * sizeof(int));
    owned.push_back(p);
    return p;
  }
  ~Buffers() {
    for (void* p : owned) be.release(p);
  }
};

double ms(Backend& be, const std::function<void()>& fn) {
  return 1e3 * time_per_call([&] {
    fn();
    be.synchronize();
  }, 0.05);
}

// Per-op times in milliseconds, in a fixed order.
std::vector<std::pair<std::string, double>> time_ops(Backend& be) {
  Rng r(1);
  Buffers b{be, {}};
  int* tok = b.tokens(N, r);
  float *x = b.f(N * C, r), *y = b.f(N * C, r), *d = b.f(N * C, r), *w = b.f(4 * C * C, r), *bias = b.f(4 * C, r);
  float *h = b.f(N * 4 * C, r), *dh = b.f(N * 4 * C, r), *qkv = b.f(N * 3 * C, r), *dqkv = b.f(N * 3 * C, r);
  float *att = b.f(B * NH * T * T, r), *mean = b.f(N, r), *rstd = b.f(N, r), *gw = b.f(4 * C * C, r), *gb = b.f(4 * C, r);
  float *wte = b.f(V * C, r), *wpe = b.f(T * C, r), *logits = b.f(N * V, r), *lp = b.f(N, r), *ent = b.f(N, r);
  float *m = b.f(100000, r), *v = b.f(100000, r), *p = b.f(100000, r), *g = b.f(100000, r);
  int* tgt = b.tokens(N, r);
  std::vector<std::pair<std::string, double>> t;
  t.push_back({"embedding_forward", ms(be, [&] { be.embedding_forward(x, tok, wte, wpe, B, T, C, 0); })});
  t.push_back({"embedding_backward", ms(be, [&] { be.embedding_backward(wte, wpe, d, tok, B, T, C, 0); })});
  t.push_back({"layernorm_forward", ms(be, [&] { be.layernorm_forward(y, mean, rstd, x, w, bias, N, C); })});
  t.push_back({"layernorm_backward", ms(be, [&] { be.layernorm_backward(y, gw, gb, d, x, w, mean, rstd, N, C); })});
  t.push_back({"rmsnorm_forward", ms(be, [&] { be.rmsnorm_forward(y, rstd, x, w, N, C, 1e-5f); })});
  t.push_back({"rmsnorm_backward", ms(be, [&] { be.rmsnorm_backward(y, gw, d, x, w, rstd, N, C); })});
  t.push_back({"matmul_forward (fc 64->256)", ms(be, [&] { be.matmul_forward(h, x, w, bias, N, C, 4 * C); })});
  t.push_back({"matmul_backward (fc 64->256)", ms(be, [&] { be.matmul_backward(y, gw, gb, dh, x, w, N, C, 4 * C); })});
  t.push_back({"attention_forward", ms(be, [&] { be.attention_forward(y, att, qkv, B, T, C, NH, NH); })});
  t.push_back({"attention_backward", ms(be, [&] { be.attention_backward(dqkv, d, qkv, att, B, T, C, NH, NH); })});
  t.push_back({"rope_forward (q, k)", ms(be, [&] { be.rope_forward(qkv, B, T, 2 * NH, C / NH, 3 * C, 0, 10000.0f); })});
  t.push_back({"rope_backward (q, k)", ms(be, [&] { be.rope_backward(dqkv, B, T, 2 * NH, C / NH, 3 * C, 0, 10000.0f); })});
  t.push_back({"swiglu_forward (2x128)", ms(be, [&] { be.swiglu_forward(dh, h, N, 2 * C); })});
  t.push_back({"swiglu_backward (2x128)", ms(be, [&] { be.swiglu_backward(h, dh, dh, N, 2 * C); })});
  t.push_back({"gelu_forward", ms(be, [&] { be.gelu_forward(dh, h, N * 4 * C); })});
  t.push_back({"gelu_backward", ms(be, [&] { be.gelu_backward(dh, h, h, N * 4 * C); })});
  t.push_back({"residual_forward", ms(be, [&] { be.residual_forward(y, x, d, N * C); })});
  t.push_back({"residual_backward", ms(be, [&] { be.residual_backward(y, x, d, N * C); })});
  t.push_back({"logprob_forward", ms(be, [&] { be.logprob_forward(lp, ent, logits, tgt, N, V); })});
  t.push_back({"logprob_backward", ms(be, [&] { be.logprob_backward(logits, logits, tgt, lp, ent, N, V); })});
  {
    float *lse = b.f(N, r), *scratch = b.f(revenant::lm_head_scratch(N, V), r), *dx = b.f(N * C, r);
    t.push_back({"lm_head_forward (fused)", ms(be, [&] { be.lm_head_forward(lp, ent, lse, scratch, x, wte, nullptr, nullptr, tgt, N, C, V, V, 1.0f); })});
    t.push_back({"lm_head_backward (fused)",
                 ms(be, [&] { be.lm_head_backward(dx, gw, scratch, x, wte, nullptr, nullptr, tgt, lse, ent, lp, ent, N, C, V, V, 1.0f); })});
  }
  float *scaled = b.f(B * V, r), *filtered = b.f(B * V, r);
  t.push_back({"sampling_filter_forward (64 rows, top-k 8, top-p 0.9)",
               ms(be, [&] { be.sampling_filter_forward(scaled, filtered, logits, B, V, 1.0f, 8, 0.9f); })});
  t.push_back({"adamw_update (100k params)", ms(be, [&] { be.adamw_update(p, g, m, v, 100000, 1e-3f, 0.9f, 0.999f, 1e-8f, 0.0f, 1, nullptr); })});
  t.push_back({"sampling_forward (64 rows)", ms(be, [&] { be.sampling_forward(tok, logits, B, V, 1.0f, 1, 0); })});
  return t;
}

// Attention of one layer against the same layer's MLP products (fc C->4C and proj 4C->C), forward
// and backward, each side's best of five alternating rounds (the machine may be shared). The
// target: attention no slower than the MLP products.
void attention_against_mlp(Backend& be) {
  Rng r(5);
  Buffers b{be, {}};
  float *x = b.f(N * C, r), *y = b.f(N * C, r), *d = b.f(N * C, r), *w = b.f(4 * C * C, r), *w2 = b.f(4 * C * C, r);
  float *bias = b.f(4 * C, r), *h = b.f(N * 4 * C, r), *dh = b.f(N * 4 * C, r), *gw = b.f(4 * C * C, r), *gb = b.f(4 * C, r);
  float *qkv = b.f(N * 3 * C, r), *dqkv = b.f(N * 3 * C, r), *att = b.f(B * NH * T * T, r);
  double af = 1e30, ab = 1e30, mf = 1e30, mb = 1e30;
  for (int round = 0; round < 5; ++round) {
    af = std::min(af, ms(be, [&] { be.attention_forward(y, att, qkv, B, T, C, NH, NH); }));
    mf = std::min(mf, ms(be, [&] {
      be.matmul_forward(h, x, w, bias, N, C, 4 * C);
      be.matmul_forward(y, h, w2, bias, N, 4 * C, C);
    }));
    ab = std::min(ab, ms(be, [&] { be.attention_backward(dqkv, d, qkv, att, B, T, C, NH, NH); }));
    mb = std::min(mb, ms(be, [&] {
      be.matmul_backward(dh, gw, gb, d, h, w2, N, 4 * C, C);
      be.matmul_backward(y, gw, gb, dh, x, w, N, C, 4 * C);
    }));
  }
  std::printf("attention vs the layer's MLP products (fc + proj), best of 5: forward %.3f vs %.3f ms (%.2fx), "
              "backward %.3f vs %.3f ms (%.2fx); target: attention <= MLP (%s)\n",
              af, mf, af / mf, ab, mb, ab / mb, af <= mf && ab <= mb ? "met" : "missed");
}

void model_throughput(const char* device) {
  ModelConfig cfg;  // the default model
  Model m(cfg, make_backend(device));
  std::vector<std::vector<int>> prompts(64, std::vector<int>{1, 2, 3, 4});
  GenerateOptions opt;
  opt.max_new_tokens = 24;
  const double gen = time_per_call([&] { m.generate(prompts, opt); }, 0.5);
  PolicyBatch pb;
  pb.B = 64;
  pb.T = 32;
  pb.tokens.assign(pb.B * pb.T, 3);
  pb.mask.assign(pb.B * pb.T, 1.0f);
  pb.advantages.assign(pb.B * pb.T, 1.0f);
  pb.old_logprobs.assign(pb.B * pb.T, -2.0f);
  const double step = time_per_call([&] { m.policy_step(pb, PolicyLossConfig{}, OptimConfig{}); }, 0.5);
  std::printf("model %-4s  generate: %.0f tokens/s (64 rows x 24 new tokens)   policy_step: %.0f samples/s (64 x 32 tokens)\n",
              device, 64 * 24 / gen, 64 / step);
}

}  // namespace

void run_bench() {
  std::printf("== bench (default model shapes: B=%d T=%d C=%d heads=%d vocab=%d)\n", B, T, C, NH, V);
  auto cpu = make_cpu_backend();
  const auto tc = time_ops(*cpu);
  std::vector<std::pair<std::string, double>> tg;
  const CudaStatus cs = cuda_status();
#ifdef REVENANT_HAVE_CUDA
  if (cs.usable) {
    auto gpu = make_cuda_backend();
    tg = time_ops(*gpu);
  }
#endif
  std::printf("%-32s %12s %12s\n", "op", "cpu ms", cs.usable ? "cuda ms" : "cuda");
  for (std::size_t i = 0; i < tc.size(); ++i) {
    if (tg.empty()) std::printf("%-32s %12.4f %12s\n", tc[i].first.c_str(), tc[i].second, "-");
    else std::printf("%-32s %12.4f %12.4f\n", tc[i].first.c_str(), tc[i].second, tg[i].second);
  }
  if (!cs.usable) std::printf("cuda timings skipped: no CUDA device (%s)\n", cs.reason.c_str());

  std::printf("%-34s %10s %10s\n", "sgemm (M x N x K)", "own GF/s", "BLAS GF/s");
  struct Shape { const char* name; int m, n, k; bool ta, tb; };
  const Shape shapes[] = {{"qkv fwd 2048x192x64", N, 3 * C, C, false, true},
                          {"fc fwd 2048x256x64", N, 4 * C, C, false, true},
                          {"fcproj fwd 2048x64x256", N, C, 4 * C, false, true},
                          {"fc dW 256x64x2048", 4 * C, C, N, true, false},
                          {"decode qkv 64x192x64", B, 3 * C, C, false, true}};
  for (const Shape& s : shapes) {
    Rng r(3);
    const std::vector<float> A = cast<float>(r.normals(std::size_t(s.m) * s.k)), Bm = cast<float>(r.normals(std::size_t(s.k) * s.n));
    std::vector<float> Cm(std::size_t(s.m) * s.n);
    const double flop = 2.0 * s.m * s.n * s.k;
    // Alternate the two kernels over several short rounds and keep each one's best: the machine
    // may be shared, and the best round is the one least disturbed by other work.
    double own = 1e30, blas = cpu::blas_available() ? 1e30 : 0;
    for (int round = 0; round < 5; ++round) {
      own = std::min(own, time_per_call([&] { cpu::sgemm_own(s.ta, s.tb, s.m, s.n, s.k, A.data(), s.ta ? s.m : s.k, Bm.data(), s.tb ? s.k : s.n, false, Cm.data(), s.n); }, 0.04));
      if (blas > 0)
        blas = std::min(blas, time_per_call([&] { cpu::sgemm_blas(s.ta, s.tb, s.m, s.n, s.k, A.data(), s.ta ? s.m : s.k, Bm.data(), s.tb ? s.k : s.n, false, Cm.data(), s.n); }, 0.04));
    }
    std::printf("%-34s %10.1f %10s\n", s.name, flop / own / 1e9, blas > 0 ? std::to_string(flop / blas / 1e9).substr(0, 6).c_str() : "-");
  }
  attention_against_mlp(*cpu);
  model_throughput("cpu");
  if (cs.usable) model_throughput("cuda");
}

}  // namespace rvtest
