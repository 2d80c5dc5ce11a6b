// Op tests on the CPU reference: every backward op against central finite differences computed
// in float64, then the float32 build of the same op against the float64 one, plus the forward-only
// ops (KV-cache attention, sampling, AdamW) and the matrix-product kernels.
#include <algorithm>
#include <cmath>
#include <functional>
#include <map>
#include <string>
#include <utility>

#include "core/kv_cache.h"
#include "core/philox.h"
#include "cpu/fast_exp.h"
#include "cpu/gemm.h"
#include "core/threads.h"
#include "cpu/ops.h"
#include "harness.h"

namespace rvtest {
namespace cpu = revenant::cpu;
using Tensors64 = std::vector<std::vector<double>>;

namespace {

template <typename T>
using Fwd = std::function<std::vector<T>(const std::vector<std::vector<T>>&)>;
template <typename T>
using Bwd = std::function<std::vector<std::vector<T>>(const std::vector<std::vector<T>>&, const std::vector<T>&)>;

double dot(const std::vector<double>& a, const std::vector<double>& b) {
  double s = 0;
  for (std::size_t i = 0; i < a.size(); ++i) s += a[i] * b[i];
  return s;
}

// The loss is L = sum(out * R) with fixed random R, so dL/dout = R.
// 1. float64 analytic gradients vs float64 central differences (h = 1e-6): truncation error is
//    O(h^2) ~ 1e-12 and rounding ~ 1e-16 / h ~ 1e-10, so 1e-6 (scaled) leaves a wide margin
//    while still catching any wrong term in the math.
// 2. float32 forward and backward vs float64: float32 keeps ~7 digits, and these ops sum at most a
//    few hundred terms, so errors stay near 1e-6; each op states its bound (tol32).
struct OpCheck {
  std::string name;
  Tensors64 inputs;
  std::vector<std::string> names;  // gradient outputs, one per input ("" = not differentiable)
  double tol32 = 1e-5;
  Fwd<double> fwd64;
  Bwd<double> bwd64;
  Fwd<float> fwd32;
  Bwd<float> bwd32;
};

void run_check(const OpCheck& op, uint64_t seed) {
  Rng rng(seed);
  const std::vector<double> out = op.fwd64(op.inputs);
  const std::vector<double> R = rng.normals(out.size());
  const Tensors64 grads = op.bwd64(op.inputs, R);
  for (std::size_t i = 0; i < op.inputs.size(); ++i) {
    if (op.names[i].empty()) continue;
    Tensors64 x = op.inputs;
    std::vector<double> fd(x[i].size());
    const double h = 1e-6;
    for (std::size_t j = 0; j < x[i].size(); ++j) {
      const double keep = x[i][j];
      x[i][j] = keep + h;
      const double up = dot(op.fwd64(x), R);
      x[i][j] = keep - h;
      const double down = dot(op.fwd64(x), R);
      x[i][j] = keep;
      fd[j] = (up - down) / (2 * h);
    }
    check_close(op.name + "_backward d" + op.names[i] + " vs float64 finite differences", scaled_error(grads[i], fd), 1e-6);
  }
  std::vector<std::vector<float>> in32;
  for (const auto& t : op.inputs) in32.push_back(cast<float>(t));
  const std::vector<float> out32 = op.fwd32(in32);
  check_close(op.name + "_forward float32 vs float64", scaled_error(out32, out), op.tol32);
  const auto grads32 = op.bwd32(in32, cast<float>(R));
  for (std::size_t i = 0; i < op.inputs.size(); ++i) {
    if (op.names[i].empty()) continue;
    check_close(op.name + "_backward d" + op.names[i] + " float32 vs float64", scaled_error(grads32[i], grads[i]), op.tol32);
  }
}

// Builds an OpCheck from one pair of generic lambdas, instantiated for float and double.
template <typename F, typename G>
void op_check(const std::string& name, Tensors64 inputs, std::vector<std::string> names, double tol32, F fwd,
              G bwd, uint64_t seed) {
  OpCheck c;
  c.name = name;
  c.inputs = std::move(inputs);
  c.names = std::move(names);
  c.tol32 = tol32;
  c.fwd64 = [=](const std::vector<std::vector<double>>& x) { return fwd(x); };
  c.fwd32 = [=](const std::vector<std::vector<float>>& x) { return fwd(x); };
  c.bwd64 = [=](const std::vector<std::vector<double>>& x, const std::vector<double>& d) { return bwd(x, d); };
  c.bwd32 = [=](const std::vector<std::vector<float>>& x, const std::vector<float>& d) { return bwd(x, d); };
  run_check(c, seed);
}

template <typename V>
using T_of = typename std::decay_t<V>::value_type::value_type;

void gradient_checks() {
  Rng rng(1234);
  uint64_t seed = 1;

  {  // embedding: B=2, T=3, C=4, V=5, repeated tokens so rows of dwte get several contributions
    const int B = 2, T = 3, C = 4, V = 5;
    const std::vector<int> tok = {1, 3, 1, 4, 1, 0};
    op_check("embedding", (Tensors64{rng.normals(V * C), rng.normals(T * C)}), (std::vector<std::string>{"wte", "wpe"}),
                1e-6,  // a single add per element: float32 rounding only
                [=](const auto& x) {
                  std::vector<T_of<decltype(x)>> out(B * T * C);
                  cpu::embedding_forward(out.data(), tok.data(), x[0].data(), x[1].data(), B, T, C, 0);
                  return out;
                },
                [=](const auto& x, const auto& d) {
                  using E = T_of<decltype(x)>;
                  std::vector<std::vector<E>> g = {std::vector<E>(V * C), std::vector<E>(T * C)};
                  cpu::embedding_backward(g[0].data(), g[1].data(), d.data(), tok.data(), B, T, C, 0);
                  return g;
                },
                seed++);
  }
  {  // layernorm: N=3 rows of C=8
    const int N = 3, C = 8;
    op_check("layernorm", (Tensors64{rng.normals(N * C, 2.0), rng.normals(C), rng.normals(C)}),
                (std::vector<std::string>{"inp", "w", "b"}),
                2e-5,  // normalisation divides by a float32 std; errors ~1e-6 relative per row
                [=](const auto& x) {
                  using E = T_of<decltype(x)>;
                  std::vector<E> out(N * C), mean(N), rstd(N);
                  cpu::layernorm_forward(out.data(), mean.data(), rstd.data(), x[0].data(), x[1].data(), x[2].data(), N, C);
                  return out;
                },
                [=](const auto& x, const auto& d) {
                  using E = T_of<decltype(x)>;
                  std::vector<E> out(N * C), mean(N), rstd(N);
                  cpu::layernorm_forward(out.data(), mean.data(), rstd.data(), x[0].data(), x[1].data(), x[2].data(), N, C);
                  std::vector<std::vector<E>> g = {std::vector<E>(N * C), std::vector<E>(C), std::vector<E>(C)};
                  cpu::layernorm_backward(g[0].data(), g[1].data(), g[2].data(), d.data(), x[0].data(), x[1].data(),
                                          mean.data(), rstd.data(), N, C);
                  return g;
                },
                seed++);
  }
  {  // matmul: odd sizes (N=7, C=9, OC=37) so every edge tile of the blocked kernel is exercised
    const int N = 7, C = 9, OC = 37;
    op_check("matmul", (Tensors64{rng.normals(N * C), rng.normals(OC * C), rng.normals(OC)}),
                (std::vector<std::string>{"inp", "w", "bias"}),
                1e-5,  // dot products of <= 37 float32 terms: ~1e-6 relative
                [=](const auto& x) {
                  std::vector<T_of<decltype(x)>> out(N * OC);
                  cpu::matmul_forward(out.data(), x[0].data(), x[1].data(), x[2].data(), N, C, OC);
                  return out;
                },
                [=](const auto& x, const auto& d) {
                  using E = T_of<decltype(x)>;
                  std::vector<std::vector<E>> g = {std::vector<E>(N * C), std::vector<E>(OC * C), std::vector<E>(OC)};
                  cpu::matmul_backward(g[0].data(), g[1].data(), g[2].data(), d.data(), x[0].data(), x[1].data(), N, C, OC);
                  return g;
                },
                seed++);
  }
  {  // lora: an adapter of rank 3 writing columns 0..5 of rows 10 wide (a block of packed rows), so
     // the row stride and the untouched columns are exercised; scale 1.7 as alpha / rank would give.
    const int N = 5, C = 7, OC = 6, ld = 10, r = 3;
    const float scale = 1.7f;
    op_check("lora", (Tensors64{rng.normals(N * C), rng.normals(r * C), rng.normals(OC * r)}),
             (std::vector<std::string>{"inp", "A", "B"}),
             1e-5,  // two chained dot products of <= 7 float32 terms: ~1e-6 relative
             [=](const auto& x) {
               using E = T_of<decltype(x)>;
               std::vector<E> out(N * ld), u(N * r);
               cpu::lora_forward(out.data(), u.data(), x[0].data(), x[1].data(), x[2].data(), N, C, OC, ld, r, scale);
               return out;
             },
             [=](const auto& x, const auto& d) {
               using E = T_of<decltype(x)>;
               std::vector<E> u(N * r), du(N * r);
               std::vector<std::vector<E>> g = {std::vector<E>(N * C), std::vector<E>(r * C), std::vector<E>(OC * r)};
               cpu::lora_backward(g[0].data(), g[1].data(), g[2].data(), u.data(), du.data(), d.data(), x[0].data(),
                                  x[1].data(), x[2].data(), N, C, OC, ld, r, scale);
               return g;
             },
             seed++);
  }
  {  // lora_dropout: p = 0.3 over 6 x 11 entries; the mask is fixed by (seed, stream), so the op is
     // linear in inp and its finite differences are exact up to rounding.
    const int N = 6, C = 11;
    const float p = 0.3f;
    op_check("lora_dropout", (Tensors64{rng.normals(N * C)}), (std::vector<std::string>{"inp"}),
             1e-6,  // one multiply per entry: float32 rounding only
             [=](const auto& x) {
               std::vector<T_of<decltype(x)>> out(N * C);
               cpu::lora_dropout_forward(out.data(), x[0].data(), N, C, p, 77, 5);
               return out;
             },
             [=](const auto& x, const auto& d) {
               using E = T_of<decltype(x)>;
               std::vector<std::vector<E>> g = {std::vector<E>(N * C)};
               cpu::lora_dropout_backward(g[0].data(), d.data(), N, C, p, 77, 5);
               return g;
             },
             seed++);
    // The mask drops about p of the entries (66 draws: 20 expected; 8..34 is beyond 3.5 sigma).
    std::vector<float> ones(N * C, 1.0f), out(N * C);
    cpu::lora_dropout_forward(out.data(), ones.data(), N, C, p, 77, 5);
    const long dropped = std::count(out.begin(), out.end(), 0.0f);
    check(dropped >= 8 && dropped <= 34, "lora_dropout drops about p of the entries", std::to_string(dropped) + " of 66 dropped at p 0.3");
    std::vector<float> other(N * C);
    cpu::lora_dropout_forward(other.data(), ones.data(), N, C, p, 77, 6);
    check(other != out, "lora_dropout: another stream, another mask", "");
  }
  // attention: B=2, T=11, C=8; NH=2 plain multi-head, then NH=4 over NKV=2 and NKV=1 kv heads
  // (grouped-query: several query heads add into one kv head's gradient). T = 11 is one group of
  // 8 query rows computed side by side and 3 rows on their own.
  for (const std::pair<int, int> heads : {std::pair{2, 2}, std::pair{4, 2}, std::pair{4, 1}}) {
    const int NH = heads.first, NKV = heads.second;  // plain ints: lambdas below capture them
    const int B = 2, T = 11, C = 8, QKV = C + 2 * NKV * (C / NH);
    const std::string name = NH == NKV ? "attention" : "attention (NH " + std::to_string(NH) + ", NKV " + std::to_string(NKV) + ")";
    op_check(name, (Tensors64{rng.normals(B * T * QKV)}), (std::vector<std::string>{"qkv"}),
                2e-5,  // softmax exp and sums over <= 11 keys: ~1e-6; margin for exp's float error
                [=](const auto& x) {
                  using E = T_of<decltype(x)>;
                  std::vector<E> out(B * T * C), att(B * NH * T * T);
                  cpu::attention_forward(out.data(), att.data(), x[0].data(), B, T, C, NH, NKV);
                  return out;
                },
                [=](const auto& x, const auto& d) {
                  using E = T_of<decltype(x)>;
                  std::vector<E> out(B * T * C), att(B * NH * T * T);
                  cpu::attention_forward(out.data(), att.data(), x[0].data(), B, T, C, NH, NKV);
                  std::vector<std::vector<E>> g = {std::vector<E>(B * T * QKV)};
                  cpu::attention_backward(g[0].data(), d.data(), x[0].data(), att.data(), B, T, C, NH, NKV);
                  return g;
                },
                seed++);
  }
  {  // rmsnorm: N=3 rows of C=8, eps 1e-5
    const int N = 3, C = 8;
    op_check("rmsnorm", (Tensors64{rng.normals(N * C, 2.0), rng.normals(C)}), (std::vector<std::string>{"inp", "w"}),
                2e-5,  // normalisation divides by a float32 rms; errors ~1e-6 relative per row
                [=](const auto& x) {
                  using E = T_of<decltype(x)>;
                  std::vector<E> out(N * C), rstd(N);
                  cpu::rmsnorm_forward(out.data(), rstd.data(), x[0].data(), x[1].data(), N, C, 1e-5f);
                  return out;
                },
                [=](const auto& x, const auto& d) {
                  using E = T_of<decltype(x)>;
                  std::vector<E> out(N * C), rstd(N);
                  cpu::rmsnorm_forward(out.data(), rstd.data(), x[0].data(), x[1].data(), N, C, 1e-5f);
                  std::vector<std::vector<E>> g = {std::vector<E>(N * C), std::vector<E>(C)};
                  cpu::rmsnorm_backward(g[0].data(), g[1].data(), d.data(), x[0].data(), x[1].data(), rstd.data(), N, C);
                  return g;
                },
                seed++);
  }
  {  // rope: B=2, T=4 from position 3, three heads of hd=6 in rows of stride 22 (the last 4
     // columns, like a v part, must come through untouched), theta 500 so angles vary a lot
    const int B = 2, T = 4, heads = 3, hd = 6, stride = 22, pos0 = 3;
    const float theta = 500.0f;
    op_check("rope", (Tensors64{rng.normals(B * T * stride)}), (std::vector<std::string>{"x"}),
                1e-5,  // one rotation per pair: float32 cos/sin of angles < 10 and a 2-term sum
                [=](const auto& x) {
                  auto out = x[0];
                  cpu::rope_forward(out.data(), B, T, heads, hd, stride, pos0, theta);
                  return out;
                },
                [=](const auto&, const auto& d) {
                  auto g = d;  // the untouched columns pass their gradient through as is
                  cpu::rope_backward(g.data(), B, T, heads, hd, stride, pos0, theta);
                  return std::vector<std::decay_t<decltype(d)>>{g};
                },
                seed++);
  }
  {  // rope_llama3: as rope, hd=8 with theta 100 and original_context 32 (low 1, high 4), so the
     // pairs' wavelengths 6.3, 20, 63, 199 fall in all three regimes: kept (< 8), blended
     // (8..32) and divided by the factor (> 32)
    const int B = 2, T = 4, heads = 3, hd = 8, stride = 28, pos0 = 5;
    const float theta = 100.0f;
    const revenant::RopeScaling sc{8.0f, 1.0f, 4.0f, 32.0f};
    op_check("rope_llama3", (Tensors64{rng.normals(B * T * stride)}), (std::vector<std::string>{"x"}),
                1e-5,  // one rotation per pair: float32 cos/sin of angles < 10 and a 2-term sum
                [=](const auto& x) {
                  auto out = x[0];
                  cpu::rope_llama3_forward(out.data(), B, T, heads, hd, stride, pos0, theta, sc);
                  return out;
                },
                [=](const auto&, const auto& d) {
                  auto g = d;  // the untouched columns pass their gradient through as is
                  cpu::rope_llama3_backward(g.data(), B, T, heads, hd, stride, pos0, theta, sc);
                  return std::vector<std::decay_t<decltype(d)>>{g};
                },
                seed++);
  }
  {  // head_rmsnorm: N=3 rows of stride 23 holding 3 heads of hd=6 (the last 5 columns, like the
     // k and v parts, must come through untouched), eps 1e-6
    const int N = 3, heads = 3, hd = 6, stride = 23;
    op_check("head_rmsnorm", (Tensors64{rng.normals(N * stride, 2.0), rng.normals(hd)}), (std::vector<std::string>{"inp", "w"}),
                2e-5,  // as rmsnorm: division by a float32 rms over 6 values, ~1e-6 relative per head
                [=](const auto& x) {
                  using E = T_of<decltype(x)>;
                  std::vector<E> out = x[0], rstd(N * heads);
                  cpu::head_rmsnorm_forward(out.data(), rstd.data(), x[0].data(), x[1].data(), N, heads, hd, stride, 1e-6f);
                  return out;
                },
                [=](const auto& x, const auto& d) {
                  using E = T_of<decltype(x)>;
                  std::vector<E> out = x[0], rstd(N * heads);
                  cpu::head_rmsnorm_forward(out.data(), rstd.data(), x[0].data(), x[1].data(), N, heads, hd, stride, 1e-6f);
                  std::vector<std::vector<E>> g = {d, std::vector<E>(hd)};  // in place: dx starts as dout
                  cpu::head_rmsnorm_backward(g[0].data(), g[1].data(), x[0].data(), x[1].data(), rstd.data(), N, heads, hd, stride);
                  return g;
                },
                seed++);
  }
  {  // swiglu: N=3 rows of gate|up with I=5, inputs over [-4, 4] so silu's curved part is covered
    const int N = 3, I = 5;
    op_check("swiglu", (Tensors64{rng.normals(N * 2 * I, 2.0)}), (std::vector<std::string>{"inp"}),
                1e-5,  // elementwise sigmoid through the fast exp (a few ulp) times a product
                [=](const auto& x) {
                  std::vector<T_of<decltype(x)>> out(N * I);
                  cpu::swiglu_forward(out.data(), x[0].data(), N, I);
                  return out;
                },
                [=](const auto& x, const auto& d) {
                  using E = T_of<decltype(x)>;
                  std::vector<std::vector<E>> g = {std::vector<E>(N * 2 * I)};
                  cpu::swiglu_backward(g[0].data(), x[0].data(), d.data(), N, I);
                  return g;
                },
                seed++);
  }
  {  // embedding without a position table (llama): only wte is read and gets gradient
    const int B = 2, T = 3, C = 4, V = 5;
    const std::vector<int> tok = {1, 3, 1, 4, 1, 0};
    op_check("embedding (no position table)", (Tensors64{rng.normals(V * C)}), (std::vector<std::string>{"wte"}),
                1e-6,  // a copy per element: exact in float32
                [=](const auto& x) {
                  using E = T_of<decltype(x)>;
                  std::vector<E> out(B * T * C);
                  cpu::embedding_forward(out.data(), tok.data(), x[0].data(), static_cast<const E*>(nullptr), B, T, C, 0);
                  return out;
                },
                [=](const auto& x, const auto& d) {
                  using E = T_of<decltype(x)>;
                  std::vector<std::vector<E>> g = {std::vector<E>(V * C)};
                  cpu::embedding_backward(g[0].data(), static_cast<E*>(nullptr), d.data(), tok.data(), B, T, C, 0);
                  return g;
                },
                seed++);
  }
  {  // gelu over [-3, 3]
    const int N = 24;
    std::vector<double> x(N);
    for (int i = 0; i < N; ++i) x[i] = -3.0 + 6.0 * i / (N - 1) + 0.01;
    op_check("gelu", (Tensors64{x}), (std::vector<std::string>{"inp"}),
                1e-6,  // elementwise tanh: float32 libm is within a few ulp
                [=](const auto& x) {
                  std::vector<T_of<decltype(x)>> out(N);
                  cpu::gelu_forward(out.data(), x[0].data(), N);
                  return out;
                },
                [=](const auto& x, const auto& d) {
                  using E = T_of<decltype(x)>;
                  std::vector<std::vector<E>> g = {std::vector<E>(N)};
                  cpu::gelu_backward(g[0].data(), x[0].data(), d.data(), N);
                  return g;
                },
                seed++);
  }
  {  // residual
    const int N = 10;
    op_check("residual", (Tensors64{rng.normals(N), rng.normals(N)}), (std::vector<std::string>{"a", "b"}),
                1e-6,  // one add: float32 rounding only
                [=](const auto& x) {
                  std::vector<T_of<decltype(x)>> out(N);
                  cpu::residual_forward(out.data(), x[0].data(), x[1].data(), N);
                  return out;
                },
                [=](const auto& x, const auto& d) {
                  using E = T_of<decltype(x)>;
                  std::vector<std::vector<E>> g = {std::vector<E>(N), std::vector<E>(N)};
                  cpu::residual_backward(g[0].data(), g[1].data(), d.data(), N);
                  return g;
                },
                seed++);
  }
  {  // logprob: N=5 rows of V=7 logits, one row without a target; output = [lp..., entropy...]
    const int N = 5, V = 7;
    const std::vector<int> targets = {2, 0, -1, 6, 3};
    op_check("logprob", (Tensors64{rng.normals(N * V, 2.0)}), (std::vector<std::string>{"logits"}),
                1e-5,  // log-sum-exp over 7 terms; float32 exp/log within a few ulp
                [=](const auto& x) {
                  using E = T_of<decltype(x)>;
                  std::vector<E> out(2 * N);
                  cpu::logprob_forward(out.data(), out.data() + N, x[0].data(), targets.data(), N, V);
                  return out;
                },
                [=](const auto& x, const auto& d) {
                  using E = T_of<decltype(x)>;
                  std::vector<std::vector<E>> g = {std::vector<E>(N * V)};
                  cpu::logprob_backward(g[0].data(), x[0].data(), targets.data(), d.data(), d.data() + N, N, V);
                  return g;
                },
                seed++);
  }
}

// The cached attention must give the same numbers as the full causal pass, with and without
// grouped kv heads: one position at a time, and a prefill of several positions followed by steps.
// T = 11, width 24: the full pass computes 8 query rows side by side and 3 on their own, with heads
// of 6 and 4 channels (the cache's generic weighted sum); groups of 1, 2, 3, 4 and 6 query heads per
// kv head. T = 70, width 128: five key blocks (four side by side, then one), heads of 16, 32 and 64
// channels (the weighted sums in registers).
void attention_decode_check() {
  struct Shape {
    int C, T, NH, NKV;
  };
  for (const Shape sh : {Shape{24, 11, 4, 4}, Shape{24, 11, 4, 2}, Shape{24, 11, 6, 2}, Shape{24, 11, 4, 1},
                         Shape{24, 11, 6, 1}, Shape{128, 70, 8, 2}, Shape{128, 70, 4, 4}, Shape{128, 70, 2, 1}}) {
    const int NH = sh.NH, NKV = sh.NKV, B = 3, T = sh.T, C = sh.C, kvC = NKV * (C / NH), QKV = C + 2 * kvC;
    Rng rng(77);
    const std::vector<float> qkv = cast<float>(rng.normals(B * T * QKV));
    std::vector<float> full(B * T * C), att(B * NH * T * T), kc(revenant::kv_cache_floats(B, T, kvC)), vc(kc.size()), step(B * T * C),
        rows(B * T * QKV);
    cpu::attention_forward(full.data(), att.data(), qkv.data(), B, T, C, NH, NKV);
    // Positions [t0, t0 + n) of every row through the cache; returns the largest difference from `full`.
    const auto cached = [&](int t0, int n) {
      for (int b = 0; b < B; ++b)
        std::copy(qkv.begin() + (b * T + t0) * QKV, qkv.begin() + (b * T + t0 + n) * QKV, rows.begin() + b * n * QKV);
      cpu::attention_decode(step.data(), kc.data(), vc.data(), rows.data(), B, n, C, NH, NKV, t0, T);
      double err = 0;
      for (int b = 0; b < B; ++b)
        for (int t = 0; t < n; ++t)
          for (int c = 0; c < C; ++c)
            err = std::fmax(err, std::fabs(step[(b * n + t) * C + c] - full[(b * T + t0 + t) * C + c]));
      return err;
    };
    double one = 0, prefill = cached(0, 4);
    for (int t = 4; t < T; ++t) prefill = std::fmax(prefill, cached(t, 1));
    for (int t = 0; t < T; ++t) one = std::fmax(one, cached(t, 1));
    // Same arithmetic in the same order, but the compiler may contract a*b+c into an FMA in one
    // loop and not the other (-march=native, -ffp-contract=fast): equal to float32 rounding.
    const std::string tag = " (C " + std::to_string(C) + ", NH " + std::to_string(NH) + ", NKV " + std::to_string(NKV) + ")";
    check(one <= 1e-6, "attention_decode equals attention_forward row by row" + tag, "max diff " + std::to_string(one));
    check(prefill <= 1e-6, "attention_decode: a 4-position prefill then steps equals attention_forward" + tag,
          "max diff " + std::to_string(prefill));
  }
}

// RoPE against Hugging Face's formula written out directly (rotate_half: pairs i and i + hd/2,
// inv_freq[i] = theta^(-2i/hd)) in float64, and decoding at position p equal to row p of a full pass.
void rope_reference_check() {
  const int T = 7, hd = 8, heads = 2, stride = heads * hd;
  const double theta = 10000.0;
  Rng rng(31);
  const std::vector<double> x = rng.normals(T * stride);
  std::vector<double> got = x, want(x.size());
  cpu::rope_forward(got.data(), 1, T, heads, hd, stride, 0, float(theta));
  for (int t = 0; t < T; ++t)
    for (int h = 0; h < heads; ++h)
      for (int j = 0; j < hd; ++j) {
        const int i = j % (hd / 2);
        const double angle = t * std::pow(theta, -2.0 * i / hd);
        const double* v = x.data() + t * stride + h * hd;
        const double rotated = j < hd / 2 ? -v[j + hd / 2] : v[j - hd / 2];  // rotate_half
        want[t * stride + h * hd + j] = v[j] * std::cos(angle) + rotated * std::sin(angle);
      }
  check_close("rope_forward vs the rotate_half formula (float64)", scaled_error(got, want), 1e-12);
  std::vector<float> full = cast<float>(x), one(stride);
  cpu::rope_forward(full.data(), 1, T, heads, hd, stride, 0, float(theta));
  double err = 0;
  for (int p = 0; p < T; ++p) {
    std::copy(x.begin() + p * stride, x.begin() + (p + 1) * stride, one.begin());
    cpu::rope_forward(one.data(), 1, 1, heads, hd, stride, p, float(theta));
    for (int c = 0; c < stride; ++c) err = std::fmax(err, std::fabs(one[c] - full[p * stride + c]));
  }
  check(err == 0, "rope_forward at pos0 = p equals row p of a full pass", "max diff " + std::to_string(err));
}

// rope_llama3 against Hugging Face's _compute_llama3_parameters written out in float64 (the
// wavelength rule and the smooth blend), over pairs in all three regimes; and with a factor of 1
// and every pair in the divided regime (original_context 1) it is plain rope.
void rope_llama3_reference_check() {
  const int T = 9, hd = 16, heads = 2, stride = heads * hd, pos0 = 40;
  const double theta = 10000.0, factor = 8, low = 1, high = 4, old_context = 32;
  Rng rng(37);
  const std::vector<double> x = rng.normals(T * stride);
  std::vector<double> got = x, want(x.size());
  cpu::rope_llama3_forward(got.data(), 1, T, heads, hd, stride, pos0, float(theta),
                           revenant::RopeScaling{float(factor), float(low), float(high), float(old_context)});
  int kept = 0, blended = 0, divided = 0;
  std::vector<double> inv(hd / 2);
  for (int i = 0; i < hd / 2; ++i) {
    const double f = std::pow(theta, -2.0 * i / hd), wavelen = 2 * M_PI / f;
    if (wavelen < old_context / high) {
      inv[i] = f, ++kept;
    } else if (wavelen > old_context / low) {
      inv[i] = f / factor, ++divided;
    } else {
      const double smooth = (old_context / wavelen - low) / (high - low);
      inv[i] = (1 - smooth) * f / factor + smooth * f, ++blended;
    }
  }
  for (int t = 0; t < T; ++t)
    for (int h = 0; h < heads; ++h)
      for (int j = 0; j < hd; ++j) {
        const double angle = (pos0 + t) * inv[j % (hd / 2)];
        const double* v = x.data() + t * stride + h * hd;
        const double rotated = j < hd / 2 ? -v[j + hd / 2] : v[j - hd / 2];  // rotate_half
        want[t * stride + h * hd + j] = v[j] * std::cos(angle) + rotated * std::sin(angle);
      }
  check(kept > 0 && blended > 0 && divided > 0, "rope_llama3 reference covers kept, blended and divided frequencies",
        std::to_string(kept) + "/" + std::to_string(blended) + "/" + std::to_string(divided));
  check_close("rope_llama3_forward vs Hugging Face's llama3 inv_freq formula (float64)", scaled_error(got, want), 1e-12);
  std::vector<float> a = cast<float>(x), b = cast<float>(x);
  cpu::rope_llama3_forward(a.data(), 1, T, heads, hd, stride, pos0, float(theta), revenant::RopeScaling{1.0f, 1.0f, 4.0f, 1.0f});
  cpu::rope_forward(b.data(), 1, T, heads, hd, stride, pos0, float(theta));
  check(a == b, "rope_llama3 with factor 1 and nothing to blend equals rope bit for bit", "");
}

void adamw_check() {
  Rng rng(5);
  const int n = 50;
  std::vector<float> p = cast<float>(rng.normals(n)), g = cast<float>(rng.normals(n)), m(n, 0.0f), v(n, 0.0f);
  std::vector<double> p64(p.begin(), p.end()), m64(n, 0), v64(n, 0);
  const float lr = 0.01f, b1 = 0.9f, b2 = 0.95f, eps = 1e-8f, wd = 0.1f, scale = 0.5f;
  for (int step = 1; step <= 3; ++step) {
    cpu::adamw_update(p.data(), g.data(), m.data(), v.data(), n, lr, b1, b2, eps, wd, step, &scale);
    for (int i = 0; i < n; ++i) {
      const double gi = double(g[i]) * scale;
      m64[i] = b1 * m64[i] + (1 - double(b1)) * gi;
      v64[i] = b2 * v64[i] + (1 - double(b2)) * gi * gi;
      const double mh = m64[i] / (1 - std::pow(double(b1), step)), vh = v64[i] / (1 - std::pow(double(b2), step));
      p64[i] -= lr * (mh / (std::sqrt(vh) + eps) + wd * p64[i]);
    }
  }
  // Three float32 updates of size ~lr: rounding ~1e-7 per step.
  check_close("adamw_update float32 vs float64 formula (3 steps)", scaled_error(p, p64), 1e-6);
}

// The finite-update probe against the update itself (200,000 values: four blocks, the last one
// partial): 0 when what adamw_update then writes is all finite, and it writes nothing; not finite
// when one second moment is pushed past float's range, or one gradient is NaN.
void adamw_probe_check() {
  Rng rng(6);
  const std::size_t n = 200000;
  const std::vector<float> p0 = cast<float>(rng.normals(n)), g = cast<float>(rng.normals(n)), m0 = cast<float>(rng.normals(n));
  std::vector<float> v0 = cast<float>(rng.normals(n));
  for (float& x : v0) x = x * x;
  const float lr = 0.01f, b1 = 0.9f, b2 = 0.95f, eps = 1e-8f, wd = 0.1f, scale = 0.5f;
  const int step = 4;
  std::vector<float> p = p0, m = m0, v = v0;
  double probe = 0;
  cpu::adamw_probe(&probe, p.data(), g.data(), m.data(), v.data(), n, lr, b1, b2, eps, wd, step, &scale);
  check(p == p0 && m == m0 && v == v0, "adamw_probe writes nothing", "");
  cpu::adamw_update(p.data(), g.data(), m.data(), v.data(), n, lr, b1, b2, eps, wd, step, &scale);
  const double written = cpu::sum_squares(p.data(), n) + cpu::sum_squares(m.data(), n) + cpu::sum_squares(v.data(), n);
  check(probe == 0 && std::isfinite(written), "adamw_probe is 0 when the update writes finite values", "got " + std::to_string(probe));
  std::vector<float> huge = g;
  huge[123457] = 3e38f;  // g * g overflows float: that weight's second moment becomes infinite
  double inf = 0;
  cpu::adamw_probe(&inf, p0.data(), huge.data(), m0.data(), v0.data(), n, lr, b1, b2, eps, wd, step, &scale);
  check(!std::isfinite(inf), "adamw_probe is not finite when an updated moment overflows", "got " + std::to_string(inf));
  std::vector<float> nan_grad = g;
  nan_grad[7] = NAN;
  double nan = 0;
  cpu::adamw_probe(&nan, p0.data(), nan_grad.data(), m0.data(), v0.data(), n, lr, b1, b2, eps, wd, step, &scale);
  check(!std::isfinite(nan), "adamw_probe is not finite when a gradient is NaN", "got " + std::to_string(nan));
}

// The vectorisable exp used by GELU and the attention softmax, against float64 exp over the range
// the ops use. float32 expf itself is within ~1 ulp (6e-8); a 4-ulp bound (5e-7) still catches a
// wrong coefficient or exponent, which are off by 1e-3 or more.
void exp_check() {
  double worst = 0;
  for (int i = 0; i <= 200000; ++i) {
    const double x = -87.0 + 175.0 * i / 200000.0;
    const double want = std::exp(double(float(x)));
    worst = std::fmax(worst, std::fabs(cpu::exp_branchless(float(x)) - want) / want);
  }
  check_close("exp_branchless vs float64 exp on [-87, 88] (relative)", worst, 5e-7);
}

// Each draw is the inverse of the softmax's CDF at the row's Philox uniform: the id j whose mass
// interval [cdf(j-1), cdf(j)) holds u (within float rounding, float64 reference), over several
// blocks of the row's weights and a ragged last one, never an id the filter removed (-infinity).
void sampling_inverse_cdf_check() {
  const int V = 53, N = 3000;
  const uint64_t seed = 5;
  const int step = 3;
  Rng rng(11);
  const std::vector<double> normal = rng.normals(V);
  std::vector<float> row(V);
  for (int j = 0; j < V; ++j) row[j] = j % 7 == 3 ? -INFINITY : float(2 * normal[j]);
  std::vector<float> logits(static_cast<std::size_t>(N) * V);
  for (int n = 0; n < N; ++n) std::copy(row.begin(), row.end(), logits.begin() + static_cast<long>(n) * V);
  std::vector<int> out(N);
  cpu::sampling_forward(out.data(), logits.data(), N, V, 0.7f, seed, step);
  double maxv = -INFINITY, z = 0;
  for (float x : row) maxv = std::fmax(maxv, x);
  std::vector<double> cdf(V + 1, 0.0);
  for (int j = 0; j < V; ++j) cdf[j + 1] = cdf[j] + std::exp((double(row[j]) - maxv) / 0.7);
  z = cdf[V];
  int bad = 0, removed = 0;
  for (int n = 0; n < N; ++n) {
    const double u = revenant::philox_uniform(revenant::philox4x32(seed, static_cast<uint32_t>(n), step, 0, 0).v[0]);
    const int j = out[n];
    if (j < 0 || j >= V || row[j] == -INFINITY) {
      ++removed;
      continue;
    }
    if (u < cdf[j] / z - 1e-5 || u > cdf[j + 1] / z + 1e-5) ++bad;
  }
  check(removed == 0, "sampling_forward never draws an id the filter removed", std::to_string(removed) + " of " + std::to_string(N));
  check(bad == 0, "sampling_forward draws the inverse CDF at each row's uniform (53 ids: 4 blocks)",
        std::to_string(bad) + " of " + std::to_string(N) + " draws outside their mass interval");
}

void sampling_check() {
  const int V = 5, N = 4000;
  std::vector<float> logits(static_cast<std::size_t>(N) * V);
  const float row[V] = {0.5f, -1.0f, 2.0f, 0.0f, 1.0f};
  for (int n = 0; n < N; ++n) std::copy(row, row + V, logits.begin() + n * V);
  std::vector<int> a(N), b(N), c(N);
  cpu::sampling_forward(a.data(), logits.data(), N, V, 1.0f, 42, 7);
  cpu::sampling_forward(b.data(), logits.data(), N, V, 1.0f, 42, 7);
  cpu::sampling_forward(c.data(), logits.data(), N, V, 1.0f, 43, 7);
  check(a == b, "sampling_forward same seed and step give the same tokens", "");
  check(a != c, "sampling_forward a different seed gives different tokens", "");
  double z = 0;
  for (float x : row) z += std::exp(double(x));
  double worst = 0;
  for (int j = 0; j < V; ++j) {
    const double p = std::exp(double(row[j])) / z;
    const double freq = std::count(a.begin(), a.end(), j) / double(N);
    worst = std::fmax(worst, std::fabs(freq - p) / std::sqrt(p * (1 - p) / N));
  }
  // Frequencies within 5 standard errors of the softmax probabilities (fails by chance ~1e-6).
  check(worst < 5.0, "sampling_forward frequencies match softmax", "worst z-score " + std::to_string(worst));
  cpu::sampling_forward(a.data(), logits.data(), N, V, 0.0f, 42, 7);
  check(std::all_of(a.begin(), a.end(), [](int t) { return t == 2; }), "sampling_forward temperature 0 is argmax", "");
  // Known-answer test for Philox4x32-10 (Random123 test vector for counter 0, key 0).
  const revenant::Philox4 r = revenant::philox4x32(0, 0, 0, 0, 0);
  check(r.v[0] == 0x6627e8d5u && r.v[1] == 0xe169c58du && r.v[2] == 0xbc57ac4cu && r.v[3] == 0x9b00dbd8u,
        "philox4x32-10 known-answer vector", "");
}

// Our blocked kernel and BLAS against a float64 product, over every transpose combination,
// with and without accumulation, on sizes that are not multiples of the tile.
void gemm_check() {
  Rng rng(9);
  const int M = 53, K = 300;  // K > KC exercises the K split; M % 6 != 0 the packed edge rows
  for (int N : {70, 13})       // two-vector and one-vector tile widths
  for (int ta = 0; ta < 2; ++ta)
    for (int tb = 0; tb < 2; ++tb)
      for (int acc = 0; acc < 2; ++acc) {
        const std::vector<double> A = rng.normals(M * K), B = rng.normals(K * N), C0 = rng.normals(M * N);
        std::vector<double> want = C0;
        cpu::gemm<double>(ta, tb, M, N, K, A.data(), ta ? M : K, B.data(), tb ? K : N, acc, want.data(), N);
        const std::vector<float> Af = cast<float>(A), Bf = cast<float>(B);
        std::vector<float> got = cast<float>(C0);
        cpu::sgemm_own(ta, tb, M, N, K, Af.data(), ta ? M : K, Bf.data(), tb ? K : N, acc, got.data(), N);
        const std::string shape = std::string(ta ? "A^T" : "A") + (tb ? " B^T" : " B") + (acc ? " +=" : " =") +
                                  " N=" + std::to_string(N);
        // 300-term float32 dot products of unit normals: error ~ sqrt(300) * 6e-8 * |terms| ~ 2e-5.
        check_close("sgemm_own " + shape + " vs float64", scaled_error(got, want), 1e-4);
        if (cpu::blas_available()) {
          std::vector<float> blas = cast<float>(C0);
          cpu::sgemm_blas(ta, tb, M, N, K, Af.data(), ta ? M : K, Bf.data(), tb ? K : N, acc, blas.data(), N);
          check_close("sgemm_blas " + shape + " vs float64", scaled_error(blas, want), 1e-4);
        }
      }
}

// The few-row product of decoding steps (sgemm_skinny_nt) against float64, and each element's sum
// independent of how many rows come with it, of where its row sits among them and of the thread
// count: a row decoded alone or beside 15 others gets the same bits. N = 1003 is 250 blocks of 4
// columns and 3 edge columns, so blocks fetch the rows of blocks ahead of them up to the end of a
// thread's range; K = 2001 leaves a tail after the last whole vector (each sum is finished one at
// a time), K = 2000 none (four at a time), with and without a bias; either K makes even one row's
// product large enough to be split over the threads.
void skinny_product_check(int K, bool with_bias) {
  Rng rng(23);
  const int N = 1003, Mmax = 21;
  const std::string tag = " (K " + std::to_string(K) + (with_bias ? ", bias)" : ", no bias)");
  const std::vector<double> A = rng.normals(Mmax * K), B = rng.normals(N * K),
                            bias = with_bias ? rng.normals(N) : std::vector<double>(N, 0.0);
  const std::vector<float> Af = cast<float>(A), Bf = cast<float>(B), bf = cast<float>(bias);
  std::vector<double> want(Mmax * N);
  cpu::gemm<double>(false, true, Mmax, N, K, A.data(), K, B.data(), K, false, want.data(), N);
  for (int i = 0; i < Mmax; ++i)
    for (int j = 0; j < N; ++j) want[i * N + j] += bias[j];
  const int keep = revenant::num_threads();
  revenant::set_num_threads(1);
  std::vector<float> alone(Mmax * N);  // each row computed on its own, one thread
  const float* b = with_bias ? bf.data() : nullptr;
  for (int r = 0; r < Mmax; ++r) cpu::sgemm_skinny_nt(1, N, K, &Af[r * K], K, Bf.data(), K, b, &alone[r * N], N);
  check_close("sgemm_skinny_nt, one row at a time, vs float64" + tag, scaled_error(alone, want), 1e-4);
  bool same = true;
  std::string where;
  for (int threads : {1, 2, 3})
    for (int M = 1; M <= Mmax; ++M)
      for (int r0 : {0, Mmax - M}) {  // rows [r0, r0 + M): first and last rows of the tiles move
        revenant::set_num_threads(threads);
        std::vector<float> got(M * N);
        cpu::sgemm_skinny_nt(M, N, K, &Af[r0 * K], K, Bf.data(), K, b, got.data(), N);
        const bool eq = std::equal(got.begin(), got.end(), alone.begin() + r0 * N);
        if (!eq && where.empty())
          where = "first difference at " + std::to_string(M) + " rows from row " + std::to_string(r0) + " on " +
                  std::to_string(threads) + " threads";
        same &= eq;
      }
  revenant::set_num_threads(keep);
  check(same, "sgemm_skinny_nt: every row bit-identical alone and among 1..21 rows, on 1, 2 and 3 threads" + tag, where);
}

}  // namespace

void run_op_tests() {
  std::printf("== ops (cpu reference)\n");
  gradient_checks();
  attention_decode_check();
  rope_reference_check();
  rope_llama3_reference_check();
  adamw_check();
  adamw_probe_check();
  exp_check();
  sampling_check();
  sampling_inverse_cdf_check();
  gemm_check();
  skinny_product_check(2001, true);
  skinny_product_check(2000, true);
  skinny_product_check(2000, false);
  run_lm_head_tests();
}

}  // namespace rvtest
