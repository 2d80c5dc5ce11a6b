// The fused LM head (cpu/lm_head.cc) and the sampling filter (cpu/sampling_filter.cc):
// - lm_head against finite differences, and against the unfused computation it replaces
//   (matmul_forward + logprob_forward, logprob_backward + matmul_backward) in float64 and float32;
// - bit-identical results for any thread count;
// - a bfloat16 head, widened chunk by chunk, bit-identical to the head of its values;
// - the memory it holds, counted by the allocator itself (a backend that records every byte it
//   hands out), at no point a [B*T, V] tensor;
// - the sampling filter against Hugging Face's top-k / top-p written out its own way.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include "core/backend.h"
#include "core/model.h"
#include "core/threads.h"
#include "cpu/ops.h"
#include "counting_backend.h"
#include "harness.h"
#include "model_helpers.h"

namespace rvtest {
namespace cpu = revenant::cpu;
using revenant::Backend;
using Tensors64 = std::vector<std::vector<double>>;

namespace {

// A problem for the head: N rows of width C, an embedding of Vw rows of which the first V are
// scored, chunks of `chunk` ids, temperature 1 / inv_temp; targets in 0..V-1 or -1 (unscored).
struct HeadCase {
  int N, C, Vw, V, chunk;
  float inv_temp;
  std::vector<int> targets;
  std::vector<double> inp, w, dlp, dent;
};

HeadCase make_case(int N, int C, int Vw, int V, int chunk, float inv_temp, uint64_t seed) {
  Rng rng(seed);
  HeadCase h{N, C, Vw, V, chunk, inv_temp, {}, rng.normals(N * C), rng.normals(static_cast<std::size_t>(Vw) * C, 0.7),
             rng.normals(N), rng.normals(N, 0.1)};
  for (int n = 0; n < N; ++n) h.targets.push_back(n % 5 == 2 ? -1 : rng.below(V));
  return h;
}

struct HeadOut {
  std::vector<double> lp, ent, dinp, dw;
};

// The fused op, in T, forward then backward.
template <typename T>
HeadOut fused(const HeadCase& h) {
  const std::vector<T> inp = cast<T>(h.inp), w = cast<T>(h.w), dlp = cast<T>(h.dlp), dent = cast<T>(h.dent);
  std::vector<T> lp(h.N), ent(h.N), lse(h.N), scratch(revenant::lm_head_scratch(h.N, h.chunk));
  std::vector<T> dinp(inp.size(), T(0)), dw(w.size(), T(0));
  cpu::lm_head_forward<T>(lp.data(), ent.data(), lse.data(), scratch.data(), inp.data(), w.data(), nullptr, nullptr, h.targets.data(), h.N,
                          h.C, h.V, h.chunk, h.inv_temp);
  cpu::lm_head_backward<T>(dinp.data(), dw.data(), scratch.data(), inp.data(), w.data(), nullptr, nullptr, h.targets.data(), lse.data(),
                           ent.data(), dlp.data(), dent.data(), h.N, h.C, h.V, h.chunk, h.inv_temp);
  return {cast<double>(lp), cast<double>(ent), cast<double>(dinp), cast<double>(dw)};
}

// What the fused op replaces, in float64: the [N, V] logits materialised, scaled, logprob on
// them, and the matrix product's backward from the whole dlogits.
HeadOut unfused(const HeadCase& h) {
  const std::size_t NV = static_cast<std::size_t>(h.N) * h.V;
  std::vector<double> logits(NV), dlogits(NV), lp(h.N), ent(h.N);
  cpu::matmul_forward<double>(logits.data(), h.inp.data(), h.w.data(), nullptr, h.N, h.C, h.V);
  for (double& x : logits) x *= double(h.inv_temp);
  cpu::logprob_forward<double>(lp.data(), ent.data(), logits.data(), h.targets.data(), h.N, h.V);
  cpu::logprob_backward<double>(dlogits.data(), logits.data(), h.targets.data(), h.dlp.data(), h.dent.data(), h.N, h.V);
  for (double& g : dlogits) g *= double(h.inv_temp);
  std::vector<double> dinp(h.inp.size(), 0.0), dw(h.w.size(), 0.0);
  cpu::matmul_backward<double>(dinp.data(), dw.data(), nullptr, dlogits.data(), h.inp.data(), h.w.data(), h.N, h.C, h.V);
  return {lp, ent, dinp, dw};
}

void compare(const std::string& what, const HeadOut& got, const HeadOut& want, double tol) {
  check_close(what + ": log-probs", scaled_error(got.lp, want.lp), tol);
  check_close(what + ": entropy", scaled_error(got.ent, want.ent), tol);
  check_close(what + ": dinp", scaled_error(got.dinp, want.dinp), tol);
  check_close(what + ": dw", scaled_error(got.dw, want.dw), tol);
}

void lm_head_gradient_check() {
  // 9 of 11 embedding rows scored, chunks of 4 (the last one short), temperature 0.7.
  const int N = 5, C = 4, Vw = 11, V = 9, chunk = 4;
  const float inv_temp = 1.0f / 0.7f;
  const std::vector<int> targets = {2, 0, -1, 8, 3};
  Rng rng(61);
  const Tensors64 inputs = {rng.normals(N * C), rng.normals(Vw * C)};
  const auto fwd = [=](const auto& x) {
    using E = typename std::decay_t<decltype(x)>::value_type::value_type;
    std::vector<E> out(2 * N), lse(N), scratch(revenant::lm_head_scratch(N, chunk));
    cpu::lm_head_forward<E>(out.data(), out.data() + N, lse.data(), scratch.data(), x[0].data(), x[1].data(), nullptr, nullptr,
                            targets.data(), N, C, V, chunk, inv_temp);
    return out;
  };
  const auto bwd = [=](const auto& x, const auto& d) {
    using E = typename std::decay_t<decltype(x)>::value_type::value_type;
    std::vector<E> lp(N), ent(N), lse(N), scratch(revenant::lm_head_scratch(N, chunk));
    cpu::lm_head_forward<E>(lp.data(), ent.data(), lse.data(), scratch.data(), x[0].data(), x[1].data(), nullptr, nullptr, targets.data(),
                            N, C, V, chunk, inv_temp);
    std::vector<std::vector<E>> g = {std::vector<E>(N * C), std::vector<E>(Vw * C)};
    cpu::lm_head_backward<E>(g[0].data(), g[1].data(), scratch.data(), x[0].data(), x[1].data(), nullptr, nullptr, targets.data(),
                             lse.data(), ent.data(), d.data(), d.data() + N, N, C, V, chunk, inv_temp);
    return g;
  };
  // Finite differences and float32 vs float64, as every op is checked (op_tests.cc); a float32
  // log-sum-exp over 9 terms and 4-term products stay within a few ulp of 1e-7.
  Rng r(62);
  const std::vector<double> out = fwd(inputs), R = r.normals(out.size());
  const Tensors64 grads = bwd(inputs, R);
  for (int i = 0; i < 2; ++i) {
    Tensors64 x = inputs;
    std::vector<double> fd(x[i].size());
    const double h = 1e-6;  // truncation O(h^2) ~ 1e-12, rounding ~ 1e-10: far below 1e-6
    for (std::size_t j = 0; j < x[i].size(); ++j) {
      const double keep = x[i][j];
      double up = 0, down = 0;
      x[i][j] = keep + h;
      const std::vector<double> o_up = fwd(x);
      x[i][j] = keep - h;
      const std::vector<double> o_down = fwd(x);
      for (std::size_t k = 0; k < R.size(); ++k) {
        up += o_up[k] * R[k];
        down += o_down[k] * R[k];
      }
      x[i][j] = keep;
      fd[j] = (up - down) / (2 * h);
    }
    check_close(std::string("lm_head_backward d") + (i == 0 ? "inp" : "w") + " vs float64 finite differences",
                scaled_error(grads[i], fd), 1e-6);
  }
  bool padding_untouched = true;
  for (int j = V * C; j < Vw * C; ++j) padding_untouched &= grads[1][j] == 0.0;
  check(padding_untouched, "lm_head_backward: embedding rows past V get no gradient", "");
}

void lm_head_unfused_check() {
  // Several chunks, a short last chunk and padding rows: float64 fused against float64 unfused
  // differ only by the order of the sums (online rescaling), ~1e-15.
  const HeadCase small = make_case(13, 6, 40, 37, 5, 1.0f / 0.7f, 63);
  compare("lm_head float64 (chunks of 5) vs the unfused matmul + logprob", fused<double>(small), unfused(small), 1e-12);
  // The model's chunk (2048) over 5000 ids at width 64. float32 products of 64 terms (~1e-6
  // relative) and a log-sum-exp over 5000 terms (~1e-6) bound every output near 1e-6; the
  // gradients of w sum 200 rows of them, so 2e-5 of their scale leaves room without hiding a
  // wrong term (those are off by 1e-2 or more).
  const HeadCase big = make_case(200, 64, 5003, 5000, revenant::kLmHeadChunk, 1.0f, 64);
  const HeadOut ref = unfused(big);
  compare("lm_head float32 (chunks of 2048) vs the unfused float64 path", fused<float>(big), ref, 2e-5);
  HeadCase one = big;
  one.chunk = 5000;  // one chunk: the plain, unchunked log-sum-exp
  compare("lm_head float32 in one chunk vs the unfused float64 path", fused<float>(one), ref, 2e-5);
}

// A bfloat16 head (w16, widened chunk by chunk into `wide`), here in float64 (the gradient checks'
// precision), must give what the float64 head of the same values gives, bit for bit (dw null: a
// frozen head). The float32 path is checked on both backends in cuda_tests.cc and in the model.
void lm_head_bf16_check() {
  HeadCase h = make_case(13, 6, 40, 37, 5, 1.0f / 0.7f, 67);
  std::vector<uint16_t> w16(h.w.size());
  for (std::size_t i = 0; i < h.w.size(); ++i) {
    const float f = static_cast<float>(h.w[i]);
    uint32_t u;
    std::memcpy(&u, &f, sizeof u);
    w16[i] = static_cast<uint16_t>(u >> 16);
    u &= 0xffff0000u;
    float back;
    std::memcpy(&back, &u, sizeof back);
    h.w[i] = back;
  }
  const HeadOut plain = fused<double>(h);
  std::vector<double> lp(h.N), ent(h.N), lse(h.N), scratch(revenant::lm_head_scratch(h.N, h.chunk));
  std::vector<double> wide(static_cast<std::size_t>(h.chunk) * h.C), dinp(h.inp.size(), 0.0);
  cpu::lm_head_forward<double>(lp.data(), ent.data(), lse.data(), scratch.data(), h.inp.data(), nullptr, w16.data(),
                               wide.data(), h.targets.data(), h.N, h.C, h.V, h.chunk, h.inv_temp);
  cpu::lm_head_backward<double>(dinp.data(), nullptr, scratch.data(), h.inp.data(), nullptr, w16.data(), wide.data(),
                                h.targets.data(), lse.data(), ent.data(), h.dlp.data(), h.dent.data(), h.N, h.C, h.V,
                                h.chunk, h.inv_temp);
  check(lp == plain.lp && ent == plain.ent && dinp == plain.dinp,
        "lm_head float64 with a bfloat16 head (chunks of 5 widened) equals the head of its values bit for bit", "");
}

void lm_head_thread_check() {
  const HeadCase h = make_case(150, 64, 4500, 4500, revenant::kLmHeadChunk, 1.0f / 1.3f, 65);
  const int keep = revenant::num_threads();
  revenant::set_num_threads(1);
  const HeadOut one = fused<float>(h);
  bool same = true;
  for (int t : {2, 3, 7}) {
    revenant::set_num_threads(t);
    const HeadOut many = fused<float>(h);
    same &= many.lp == one.lp && many.ent == one.ent && many.dinp == one.dinp && many.dw == one.dw;
  }
  revenant::set_num_threads(keep);
  check(same, "lm_head forward and backward are bit-identical on 1, 2, 3 and 7 threads", "");
}

// ---- the memory the model holds, counted where it is allocated ----

void lm_head_memory_check() {
  using namespace revenant;
  ModelConfig c;
  c.arch = Arch::Llama;
  c.vocab = 60000;
  c.context = 64;
  c.width = 64;
  c.layers = 1;
  c.heads = 4;
  c.seed = 5;
  auto owned = std::make_unique<CountingBackend>(make_cpu_backend());
  CountingBackend* be = owned.get();
  Model m(c, std::move(owned));
  const std::size_t held = be->live_;  // weights, gradients, AdamW moments
  const int B = 8, T = 64;
  const std::size_t NV = std::size_t(B) * T * c.vocab * sizeof(float);
  Rng rng(66);
  PolicyBatch b;
  fill_tokens(b, B, T, c.vocab, T / 2, rng);
  fill_advantages(b, rng);
  b.old_logprobs = m.logprobs(b);
  m.policy_step(b, PolicyLossConfig{}, OptimConfig{});
  const std::size_t extra = be->peak_ - held;
  const std::size_t acts = activation_cost(m.config(), B, T).bytes;
  // The 3 MB scratch of the finite-update check (model.cc kProbeChunk) and the +1 byte per buffer.
  const std::size_t probe = 3 * (std::size_t{1} << 18) * sizeof(float) + 4096;
  check(extra <= acts + probe, "logprobs then policyStep allocate no more than activation_cost says",
        std::to_string(extra) + " bytes beyond the weights, activation_cost " + std::to_string(acts));
  check(extra < NV / 4, "logprobs then policyStep never hold a [B*T, V] logits tensor (nor a quarter of one)",
        std::to_string(extra) + " bytes beyond the weights; one [B*T, V] tensor is " + std::to_string(NV));
  // At a real vocabulary (Qwen's 151,936 ids, width 64, one layer, B x T = 32 x 128) the same
  // accounting puts weights, gradients, moments and activations under 1 GB.
  ModelConfig q = c;
  q.vocab = 151936;
  q.context = 128;
  const ModelConfig qr = resolve_config(q);
  const std::size_t total = 4 * count_params(qr) * sizeof(float) + activation_cost(qr, 32, 128).bytes;
  check(total < (std::size_t{1} << 30), "vocab 151936, 32 x 128 tokens: weights, moments and activations under 1 GiB",
        std::to_string(total) + " bytes");
}

// ---- sampling filter ----

// Hugging Face's warpers, written as they are (TopKLogitsWarper, TopPLogitsWarper): top-k masks
// scores below the k-th largest; top-p sorts ascending, and removes the ids whose cumulative
// probability from the bottom is <= 1 - top_p. Returns the kept ids.
std::vector<int> hf_kept(const std::vector<float>& row, float temperature, int top_k, float top_p) {
  const int V = static_cast<int>(row.size());
  std::vector<double> s(V);
  for (int j = 0; j < V; ++j) s[j] = double(row[j] * (1.0f / temperature));
  if (top_k > 0 && top_k < V) {
    std::vector<double> sorted = s;
    std::sort(sorted.begin(), sorted.end(), std::greater<double>());
    for (double& x : s)
      if (x < sorted[top_k - 1]) x = -INFINITY;
  }
  if (top_p < 1) {
    std::vector<int> idx(V);
    for (int j = 0; j < V; ++j) idx[j] = j;
    std::stable_sort(idx.begin(), idx.end(), [&](int a, int b) { return s[a] < s[b]; });
    double mx = -INFINITY, z = 0;
    for (double x : s) mx = std::max(mx, x);
    for (double x : s) z += std::exp(x - mx);
    double cum = 0;
    for (int k = 0; k < V - 1; ++k) {  // the most likely id is always kept (min_tokens_to_keep 1)
      cum += std::exp(s[idx[k]] - mx) / z;
      if (cum <= 1 - double(top_p)) s[idx[k]] = -INFINITY;
    }
  }
  std::vector<int> kept;
  for (int j = 0; j < V; ++j)
    if (s[j] > -INFINITY) kept.push_back(j);
  return kept;
}

std::vector<int> filter_kept(const std::vector<float>& row, float temperature, int top_k, float top_p) {
  const int V = static_cast<int>(row.size());
  std::vector<float> scaled(V), filtered(V);
  cpu::sampling_filter_forward(scaled.data(), filtered.data(), row.data(), 1, V, temperature, top_k, top_p);
  std::vector<int> kept;
  for (int j = 0; j < V; ++j)
    if (filtered[j] > -INFINITY) kept.push_back(j);
  return kept;
}

void sampling_filter_check() {
  const std::vector<float> row = {0.5f, -1.0f, 2.0f, 0.0f, 1.0f};
  check(filter_kept(row, 1.0f, 2, 1.0f) == std::vector<int>{2, 4}, "sampling_filter top_k 2 keeps the two largest", "");
  check(filter_kept({1, 1, 1, 0}, 1.0f, 2, 1.0f) == std::vector<int>{0, 1, 2},
        "sampling_filter top_k keeps every id tied with the k-th (as Hugging Face)", "");
  check(filter_kept(row, 1.0f, 0, 1.0f).size() == 5 && filter_kept(row, 1.0f, 9, 1.0f).size() == 5,
        "sampling_filter top_k 0 or >= V and top_p 1 keep everything", "");
  check(filter_kept(row, 0.0f, 1, 0.1f).size() == 5, "sampling_filter leaves greedy (temperature 0) rows alone", "");
  // p = softmax(row) = .126 .028 .563 .076 .207: by probability ids 2, 4, 0, 3, 1 with mass before
  // them 0, .563, .770, .896, .972. An id is kept while the mass before it is below top_p.
  check(filter_kept(row, 1.0f, 0, 0.5f) == std::vector<int>{2}, "sampling_filter top_p 0.5 keeps the top id", "");
  check(filter_kept(row, 1.0f, 0, 0.7f) == std::vector<int>{2, 4}, "sampling_filter top_p 0.7 keeps two", "");
  check(filter_kept(row, 1.0f, 0, 0.8f) == std::vector<int>{0, 2, 4}, "sampling_filter top_p 0.8 keeps three", "");
  check(filter_kept(row, 1.0f, 2, 0.8f) == std::vector<int>{2, 4},
        "sampling_filter top_k 2 then top_p 0.8 renormalises over the two (.731 .269): keeps both", "");
  Rng rng(67);
  int agree = 0, cases = 0;
  for (int trial = 0; trial < 300; ++trial) {
    const int V = 2 + rng.below(300);
    const std::vector<float> x = cast<float>(rng.normals(V, 0.5 + 3 * rng.uniform()));
    const float temperature = static_cast<float>(0.3 + 1.5 * rng.uniform());
    const int top_k = rng.below(3) == 0 ? 0 : 1 + rng.below(V);
    const float top_p = rng.below(4) == 0 ? 1.0f : static_cast<float>(0.05 + 0.9 * rng.uniform());
    ++cases;
    agree += filter_kept(x, temperature, top_k, top_p) == hf_kept(x, temperature, top_k, top_p);
  }
  check(agree == cases, "sampling_filter keeps exactly Hugging Face's top-k then top-p set (300 random rows)",
        std::to_string(agree) + " of " + std::to_string(cases));
  // Draws from the filtered rows: only kept ids, at their renormalised probabilities.
  const int N = 4000;
  std::vector<float> logits, scaled(N * 5), filtered(N * 5);
  for (int n = 0; n < N; ++n) logits.insert(logits.end(), row.begin(), row.end());
  cpu::sampling_filter_forward(scaled.data(), filtered.data(), logits.data(), N, 5, 1.0f, 2, 1.0f);
  std::vector<int> out(N);
  cpu::sampling_forward(out.data(), filtered.data(), N, 5, 1.0f, 42, 3);
  const double p2 = std::exp(2.0) / (std::exp(2.0) + std::exp(1.0));
  const double f2 = std::count(out.begin(), out.end(), 2) / double(N);
  const bool only_kept = std::all_of(out.begin(), out.end(), [](int t) { return t == 2 || t == 4; });
  // Within 5 standard errors of the renormalised probability (fails by chance ~1e-6).
  check(only_kept && std::fabs(f2 - p2) < 5 * std::sqrt(p2 * (1 - p2) / N),
        "sampling after top_k 2 draws only the kept ids, at their renormalised probabilities",
        "frequency of id 2 " + std::to_string(f2) + ", expected " + std::to_string(p2));
  // The same kept sets for any thread count.
  const int M = 64, W = 3000;
  const std::vector<float> many = cast<float>(rng.normals(static_cast<std::size_t>(M) * W, 2.0));
  const int keep = revenant::num_threads();
  std::vector<float> a(M * W), fa(M * W), fb(M * W);
  revenant::set_num_threads(1);
  cpu::sampling_filter_forward(a.data(), fa.data(), many.data(), M, W, 0.8f, 500, 0.9f);
  revenant::set_num_threads(3);
  cpu::sampling_filter_forward(a.data(), fb.data(), many.data(), M, W, 0.8f, 500, 0.9f);
  revenant::set_num_threads(keep);
  check(fa == fb, "sampling_filter gives the same rows on 1 and 3 threads", "");
}

}  // namespace

// The actor scores the whole batch, then updates over mini-batches: a smaller shape after a
// larger one runs in the buffers already held (no allocation), with the same bits as a fresh model.
void activation_reuse_check() {
  using namespace revenant;
  ModelConfig c;
  c.arch = Arch::Llama;
  c.vocab = 97;
  c.context = 32;
  c.width = 32;
  c.layers = 2;
  c.heads = 4;
  c.kv_heads = 2;
  c.seed = 9;
  const auto batch = [&](int B, int T, uint64_t seed) {
    Rng rng(seed);
    TokenBatch b;
    fill_tokens(b, B, T, c.vocab, 2, rng);
    return b;
  };
  auto owned = std::make_unique<CountingBackend>(make_cpu_backend());
  CountingBackend* be = owned.get();
  Model m(c, std::move(owned));
  Model fresh(c, make_cpu_backend());
  m.logprobs(batch(4, 24, 1));
  const std::size_t allocs = be->allocs_, live = be->live_;
  const TokenBatch small = batch(2, 16, 2), longer = batch(1, 24, 3);
  const std::vector<float> a = m.logprobs(small), b = m.logprobs(longer);
  check(be->allocs_ == allocs && be->live_ == live, "logprobs of a smaller shape after a larger one allocate nothing",
        std::to_string(be->allocs_ - allocs) + " allocations");
  check(a == fresh.logprobs(small) && b == fresh.logprobs(longer),
        "logprobs in reused, larger buffers equal a fresh model's bit for bit", "");
  m.logprobs(batch(4, 32, 4));  // a larger shape is allocated anew, the old one given back first
  check(be->allocs_ > allocs, "a larger shape than the held one allocates", "");
}

void run_lm_head_tests() {
  std::printf("== fused LM head and sampling filter (cpu reference)\n");
  lm_head_gradient_check();
  lm_head_unfused_check();
  lm_head_thread_check();
  lm_head_bf16_check();
  lm_head_memory_check();
  activation_reuse_check();
  sampling_filter_check();
}

}  // namespace rvtest
