// CUDA backend against the CPU reference: every op on the same random inputs through the Backend
// interface, then a whole model. Skipped with the reason when no device is usable.
// Tolerances: both backends compute in float32 but sum in different orders (warp shuffles,
// tiles) and use different exp/tanh implementations (a few ulp), so results agree to ~1e-6
// relative per op; 1e-5 scaled error leaves margin without hiding a wrong kernel (which is off by
// O(1)). The whole model stacks ~30 ops, hence 1e-4 there.
// The whole model runs twice: on the fp32 kernels (REVENANT_CUDA_TENSOR_CORES=0) at the tolerances
// above, and on the default fast kernels (bf16 tensor-core GEMM, flash attention) at those of
// kFastModel below.
#include <cmath>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>

#include "core/backend.h"
#include "core/device_info.h"
#include "core/kv_cache.h"
#include "core/model.h"
#include "counting_backend.h"
#include "harness.h"
#include "model_helpers.h"

namespace rvtest {
using revenant::Backend;

#ifdef REVENANT_HAVE_CUDA
namespace {

// One tensor held by both backends, filled from the same host values.
template <typename T>
class Twin {
 public:
  Twin(Backend& a, Backend& b, const std::vector<T>& host) : a_(a), b_(b), n_(host.size()) {
    pa_ = static_cast<T*>(a.alloc(n_ * sizeof(T) + 1));
    pb_ = static_cast<T*>(b.alloc(n_ * sizeof(T) + 1));
    a.upload(pa_, host.data(), n_ * sizeof(T));
    b.upload(pb_, host.data(), n_ * sizeof(T));
  }
  Twin(Backend& a, Backend& b, std::size_t n) : Twin(a, b, std::vector<T>(n)) {}
  ~Twin() {
    a_.release(pa_);
    b_.release(pb_);
  }
  T* cpu() { return pa_; }
  T* gpu() { return pb_; }
  std::vector<T> host_cpu() { return fetch(a_, pa_); }
  std::vector<T> host_gpu() { return fetch(b_, pb_); }
  void compare(const std::string& name, double tol) { check_close(name + " cuda vs cpu", scaled_error(host_gpu(), host_cpu()), tol); }

 private:
  std::vector<T> fetch(Backend& be, T* p) {
    std::vector<T> h(n_);
    be.download(h.data(), p, n_ * sizeof(T));
    return h;
  }
  Backend &a_, &b_;
  std::size_t n_;
  T *pa_, *pb_;
};

using F = Twin<float>;
using I = Twin<int>;

std::vector<float> normals(Rng& r, std::size_t n, double s = 1.0) { return cast<float>(r.normals(n, s)); }

void compare_ops(Backend& c, Backend& g) {
  Rng r(2024);
  const int B = 3, T = 17, C = 48, NH = 4, V = 13, N = B * T, OC = 67;
  const double tol = 1e-5;
  std::vector<int> tok(N);
  for (auto& t : tok) t = r.below(V);
  std::vector<int> tgt = tok;
  tgt[5] = -1;
  I tokens(c, g, tok), targets(c, g, tgt);
  // embedding
  F wte(c, g, normals(r, V * C)), wpe(c, g, normals(r, T * C)), emb(c, g, N * C), dwte(c, g, V * C), dwpe(c, g, T * C);
  F dout(c, g, normals(r, N * C));
  for (auto* be : {&c, &g}) {
    const bool gpu = be == &g;
    be->embedding_forward(gpu ? emb.gpu() : emb.cpu(), gpu ? tokens.gpu() : tokens.cpu(), gpu ? wte.gpu() : wte.cpu(),
                          gpu ? wpe.gpu() : wpe.cpu(), B, T, C, 0);
    be->embedding_backward(gpu ? dwte.gpu() : dwte.cpu(), gpu ? dwpe.gpu() : dwpe.cpu(), gpu ? dout.gpu() : dout.cpu(),
                           gpu ? tokens.gpu() : tokens.cpu(), B, T, C, 0);
  }
  emb.compare("embedding_forward", tol);
  dwte.compare("embedding_backward dwte", tol);
  dwpe.compare("embedding_backward dwpe", tol);
  // layernorm
  F x(c, g, normals(r, N * C, 2.0)), w(c, g, normals(r, C)), bb(c, g, normals(r, C)), ln(c, g, N * C), mean(c, g, N),
      rstd(c, g, N), dx(c, g, N * C), dw(c, g, C), db(c, g, C);
  c.layernorm_forward(ln.cpu(), mean.cpu(), rstd.cpu(), x.cpu(), w.cpu(), bb.cpu(), N, C);
  g.layernorm_forward(ln.gpu(), mean.gpu(), rstd.gpu(), x.gpu(), w.gpu(), bb.gpu(), N, C);
  c.layernorm_backward(dx.cpu(), dw.cpu(), db.cpu(), dout.cpu(), x.cpu(), w.cpu(), mean.cpu(), rstd.cpu(), N, C);
  g.layernorm_backward(dx.gpu(), dw.gpu(), db.gpu(), dout.gpu(), x.gpu(), w.gpu(), mean.gpu(), rstd.gpu(), N, C);
  ln.compare("layernorm_forward", tol);
  dx.compare("layernorm_backward dinp", tol);
  dw.compare("layernorm_backward dw", tol);
  db.compare("layernorm_backward db", tol);
  // matmul
  F mw(c, g, normals(r, OC * C)), mb(c, g, normals(r, OC)), mo(c, g, N * OC), mdo(c, g, normals(r, N * OC)),
      mdx(c, g, N * C), mdw(c, g, OC * C), mdb(c, g, OC);
  c.matmul_forward(mo.cpu(), x.cpu(), mw.cpu(), mb.cpu(), N, C, OC);
  g.matmul_forward(mo.gpu(), x.gpu(), mw.gpu(), mb.gpu(), N, C, OC);
  c.matmul_backward(mdx.cpu(), mdw.cpu(), mdb.cpu(), mdo.cpu(), x.cpu(), mw.cpu(), N, C, OC);
  g.matmul_backward(mdx.gpu(), mdw.gpu(), mdb.gpu(), mdo.gpu(), x.gpu(), mw.gpu(), N, C, OC);
  mo.compare("matmul_forward", tol);
  mdx.compare("matmul_backward dinp", tol);
  mdw.compare("matmul_backward dw", tol);
  mdb.compare("matmul_backward dbias", tol);
  // lora: rank 5 writing columns 0..OC-1 of rows OC + 9 wide (a block of packed rows)
  {
    const int rk = 5, ld = OC + 9;
    F la(c, g, normals(r, rk * C)), lb(c, g, normals(r, OC * rk)), lo(c, g, normals(r, N * ld)), lu(c, g, N * rk),
        ldu(c, g, N * rk), ldo(c, g, normals(r, N * ld)), ldx(c, g, N * C), lda(c, g, rk * C), ldb(c, g, OC * rk);
    c.lora_forward(lo.cpu(), lu.cpu(), x.cpu(), la.cpu(), lb.cpu(), N, C, OC, ld, rk, 1.5f);
    g.lora_forward(lo.gpu(), lu.gpu(), x.gpu(), la.gpu(), lb.gpu(), N, C, OC, ld, rk, 1.5f);
    c.lora_backward(ldx.cpu(), lda.cpu(), ldb.cpu(), lu.cpu(), ldu.cpu(), ldo.cpu(), x.cpu(), la.cpu(), lb.cpu(), N, C, OC, ld, rk, 1.5f);
    g.lora_backward(ldx.gpu(), lda.gpu(), ldb.gpu(), lu.gpu(), ldu.gpu(), ldo.gpu(), x.gpu(), la.gpu(), lb.gpu(), N, C, OC, ld, rk, 1.5f);
    lo.compare("lora_forward", tol);
    ldx.compare("lora_backward dinp", tol);
    lda.compare("lora_backward dA", tol);
    ldb.compare("lora_backward dB", tol);
    // dropout: the same mask on both (one Philox draw per entry), so forward and backward agree exactly
    F dxo(c, g, N * C), dxg(c, g, N * C);
    c.lora_dropout_forward(dxo.cpu(), x.cpu(), N, C, 0.3f, 99, 4);
    g.lora_dropout_forward(dxo.gpu(), x.gpu(), N, C, 0.3f, 99, 4);
    c.lora_dropout_backward(dxg.cpu(), x.cpu(), N, C, 0.3f, 99, 4);
    g.lora_dropout_backward(dxg.gpu(), x.gpu(), N, C, 0.3f, 99, 4);
    dxo.compare("lora_dropout_forward", tol);
    dxg.compare("lora_dropout_backward", tol);
  }
  // attention, plain (NKV == NH) and grouped (NKV = 2 and 1 kv heads for 4 query heads)
  for (const int NKV : {NH, 2, 1}) {
    const int QKV = C + 2 * NKV * (C / NH);
    const std::string tag = NKV == NH ? "" : " (NKV " + std::to_string(NKV) + ")";
    F qkv(c, g, normals(r, N * QKV)), ao(c, g, N * C), att(c, g, B * NH * T * T), dqkv(c, g, N * QKV);
    c.attention_forward(ao.cpu(), att.cpu(), qkv.cpu(), B, T, C, NH, NKV);
    g.attention_forward(ao.gpu(), att.gpu(), qkv.gpu(), B, T, C, NH, NKV);
    c.attention_backward(dqkv.cpu(), dout.cpu(), qkv.cpu(), att.cpu(), B, T, C, NH, NKV);
    g.attention_backward(dqkv.gpu(), dout.gpu(), qkv.gpu(), att.gpu(), B, T, C, NH, NKV);
    ao.compare("attention_forward" + tag, tol);
    att.compare("attention_forward att" + tag, tol);
    dqkv.compare("attention_backward dqkv" + tag, tol);
    const int kvC = NKV * (C / NH);
    F kc(c, g, revenant::kv_cache_floats(B, T, kvC)), vc(c, g, revenant::kv_cache_floats(B, T, kvC)), dec(c, g, B * 2 * C);
    // A 2-position prefill, then steps: rows of batch row 0's first positions act as B rows of 2.
    c.attention_decode(dec.cpu(), kc.cpu(), vc.cpu(), qkv.cpu(), B, 2, C, NH, NKV, 0, T);
    g.attention_decode(dec.gpu(), kc.gpu(), vc.gpu(), qkv.gpu(), B, 2, C, NH, NKV, 0, T);
    dec.compare("attention_decode prefill" + tag, tol);
    for (int pos = 2; pos < 5; ++pos) {
      c.attention_decode(dec.cpu(), kc.cpu(), vc.cpu(), qkv.cpu() + pos * QKV, B, 1, C, NH, NKV, pos, T);
      g.attention_decode(dec.gpu(), kc.gpu(), vc.gpu(), qkv.gpu() + pos * QKV, B, 1, C, NH, NKV, pos, T);
    }
    dec.compare("attention_decode" + tag, tol);
    kc.compare("attention_decode kcache" + tag, 0.0);
  }
  // rmsnorm
  F rn(c, g, N * C), rr(c, g, N), rdx(c, g, N * C), rdw(c, g, C);
  c.rmsnorm_forward(rn.cpu(), rr.cpu(), x.cpu(), w.cpu(), N, C, 1e-5f);
  g.rmsnorm_forward(rn.gpu(), rr.gpu(), x.gpu(), w.gpu(), N, C, 1e-5f);
  c.rmsnorm_backward(rdx.cpu(), rdw.cpu(), dout.cpu(), x.cpu(), w.cpu(), rr.cpu(), N, C);
  g.rmsnorm_backward(rdx.gpu(), rdw.gpu(), dout.gpu(), x.gpu(), w.gpu(), rr.gpu(), N, C);
  rn.compare("rmsnorm_forward", tol);
  rdx.compare("rmsnorm_backward dinp", tol);
  rdw.compare("rmsnorm_backward dw", tol);
  // rope on the q and k heads of packed rows (NH 4, NKV 2, hd 12) from position 3, theta 10000:
  // angles up to ~20 rad, where float32 cos/sin of CPU libm and CUDA agree to a few ulp.
  {
    const int hd = C / NH, QKV = C + 2 * 2 * hd;
    F rx(c, g, normals(r, N * QKV)), rd(c, g, normals(r, N * QKV));
    c.rope_forward(rx.cpu(), B, T, NH + 2, hd, QKV, 3, 10000.0f);
    g.rope_forward(rx.gpu(), B, T, NH + 2, hd, QKV, 3, 10000.0f);
    c.rope_backward(rd.cpu(), B, T, NH + 2, hd, QKV, 3, 10000.0f);
    g.rope_backward(rd.gpu(), B, T, NH + 2, hd, QKV, 3, 10000.0f);
    rx.compare("rope_forward", tol);
    rd.compare("rope_backward", tol);
    // rope_llama3 on the same rows, original context 16: hd 12's pairs are kept, blended and divided.
    const revenant::RopeScaling sc{8.0f, 1.0f, 4.0f, 16.0f};
    F lx(c, g, normals(r, N * QKV)), ld(c, g, normals(r, N * QKV));
    c.rope_llama3_forward(lx.cpu(), B, T, NH + 2, hd, QKV, 3, 10000.0f, sc);
    g.rope_llama3_forward(lx.gpu(), B, T, NH + 2, hd, QKV, 3, 10000.0f, sc);
    c.rope_llama3_backward(ld.cpu(), B, T, NH + 2, hd, QKV, 3, 10000.0f, sc);
    g.rope_llama3_backward(ld.gpu(), B, T, NH + 2, hd, QKV, 3, 10000.0f, sc);
    lx.compare("rope_llama3_forward", tol);
    ld.compare("rope_llama3_backward", tol);
    // head_rmsnorm on the q heads (NH 4) and then the k heads (2) of the same packed rows; the
    // forward writes a copy of the rows so that v comes through, the backward works in place.
    F hx(c, g, normals(r, N * QKV, 2.0)), hw(c, g, normals(r, hd)), ho(c, g, N * QKV), hr(c, g, N * NH);
    F hd_(c, g, normals(r, N * QKV)), hdw(c, g, hd);
    for (auto* be : {&c, &g}) {
      const bool gpu = be == &g;
      const auto p = [&](F& t) { return gpu ? t.gpu() : t.cpu(); };
      be->head_rmsnorm_forward(p(ho), p(hr), p(hx), p(hw), N, NH, hd, QKV, 1e-6f);
      be->head_rmsnorm_backward(p(hd_), p(hdw), p(hx), p(hw), p(hr), N, NH, hd, QKV);
    }
    ho.compare("head_rmsnorm_forward", tol);
    hr.compare("head_rmsnorm_forward rstd", tol);
    hd_.compare("head_rmsnorm_backward dinp", tol);
    hdw.compare("head_rmsnorm_backward dw", tol);
  }
  // swiglu: rows of gate | up with I = C
  F si(c, g, normals(r, N * 2 * C, 2.0)), so(c, g, N * C), sd(c, g, N * 2 * C);
  c.swiglu_forward(so.cpu(), si.cpu(), N, C);
  g.swiglu_forward(so.gpu(), si.gpu(), N, C);
  c.swiglu_backward(sd.cpu(), si.cpu(), dout.cpu(), N, C);
  g.swiglu_backward(sd.gpu(), si.gpu(), dout.gpu(), N, C);
  so.compare("swiglu_forward", tol);
  sd.compare("swiglu_backward", tol);
  // embedding without a position table
  F emb0(c, g, N * C), dwte0(c, g, V * C);
  c.embedding_forward(emb0.cpu(), tokens.cpu(), wte.cpu(), nullptr, B, T, C, 0);
  g.embedding_forward(emb0.gpu(), tokens.gpu(), wte.gpu(), nullptr, B, T, C, 0);
  c.embedding_backward(dwte0.cpu(), nullptr, dout.cpu(), tokens.cpu(), B, T, C, 0);
  g.embedding_backward(dwte0.gpu(), nullptr, dout.gpu(), tokens.gpu(), B, T, C, 0);
  emb0.compare("embedding_forward (no position table)", 0.0);
  dwte0.compare("embedding_backward (no position table)", tol);
  // gelu, residual
  F gi(c, g, normals(r, N * C, 2.0)), go(c, g, N * C), gd(c, g, N * C), ro(c, g, N * C), ra(c, g, N * C), rb(c, g, N * C);
  c.gelu_forward(go.cpu(), gi.cpu(), N * C);
  g.gelu_forward(go.gpu(), gi.gpu(), N * C);
  c.gelu_backward(gd.cpu(), gi.cpu(), dout.cpu(), N * C);
  g.gelu_backward(gd.gpu(), gi.gpu(), dout.gpu(), N * C);
  c.residual_forward(ro.cpu(), gi.cpu(), x.cpu(), N * C);
  g.residual_forward(ro.gpu(), gi.gpu(), x.gpu(), N * C);
  c.residual_backward(ra.cpu(), rb.cpu(), dout.cpu(), N * C);
  g.residual_backward(ra.gpu(), rb.gpu(), dout.gpu(), N * C);
  go.compare("gelu_forward", tol);
  gd.compare("gelu_backward", tol);
  ro.compare("residual_forward", 0.0);
  ra.compare("residual_backward", 0.0);
  // logprob
  F logits(c, g, normals(r, N * V, 2.0)), lp(c, g, N), ent(c, g, N), dlp(c, g, normals(r, N)), dent(c, g, normals(r, N)),
      dlogits(c, g, N * V);
  c.logprob_forward(lp.cpu(), ent.cpu(), logits.cpu(), targets.cpu(), N, V);
  g.logprob_forward(lp.gpu(), ent.gpu(), logits.gpu(), targets.gpu(), N, V);
  c.logprob_backward(dlogits.cpu(), logits.cpu(), targets.cpu(), dlp.cpu(), dent.cpu(), N, V);
  g.logprob_backward(dlogits.gpu(), logits.gpu(), targets.gpu(), dlp.gpu(), dent.gpu(), N, V);
  lp.compare("logprob_forward lp", tol);
  ent.compare("logprob_forward entropy", tol);
  dlogits.compare("logprob_backward", tol);
  // adamw
  F p(c, g, normals(r, 1000)), gr(c, g, normals(r, 1000)), m(c, g, 1000), v(c, g, 1000), clip(c, g, std::vector<float>{0.7f});
  for (int step = 1; step <= 3; ++step) {
    c.adamw_update(p.cpu(), gr.cpu(), m.cpu(), v.cpu(), 1000, 1e-2f, 0.9f, 0.999f, 1e-8f, 0.1f, step, clip.cpu());
    g.adamw_update(p.gpu(), gr.gpu(), m.gpu(), v.gpu(), 1000, 1e-2f, 0.9f, 0.999f, 1e-8f, 0.1f, step, clip.gpu());
  }
  p.compare("adamw_update", tol);
  {  // the probe's verdict, on the state above and with one gradient whose square overflows float
    std::vector<float> huge = normals(r, 1000);
    huge[617] = 3e38f;
    F big(c, g, huge), unclipped(c, g, std::vector<float>{1.0f});
    Twin<double> fine(c, g, 1), bad(c, g, 1);
    c.adamw_probe(fine.cpu(), p.cpu(), gr.cpu(), m.cpu(), v.cpu(), 1000, 1e-2f, 0.9f, 0.999f, 1e-8f, 0.1f, 4, clip.cpu());
    g.adamw_probe(fine.gpu(), p.gpu(), gr.gpu(), m.gpu(), v.gpu(), 1000, 1e-2f, 0.9f, 0.999f, 1e-8f, 0.1f, 4, clip.gpu());
    c.adamw_probe(bad.cpu(), p.cpu(), big.cpu(), m.cpu(), v.cpu(), 1000, 1e-2f, 0.9f, 0.999f, 1e-8f, 0.1f, 4, unclipped.cpu());
    g.adamw_probe(bad.gpu(), p.gpu(), big.gpu(), m.gpu(), v.gpu(), 1000, 1e-2f, 0.9f, 0.999f, 1e-8f, 0.1f, 4, unclipped.gpu());
    const double fc = fine.host_cpu()[0], fg = fine.host_gpu()[0], bc = bad.host_cpu()[0], bg = bad.host_gpu()[0];
    check(fc == 0 && fg == 0 && !std::isfinite(bc) && !std::isfinite(bg),
          "adamw_probe cuda and cpu: 0 for a finite update, not finite when a moment overflows",
          "finite update: cpu " + std::to_string(fc) + ", cuda " + std::to_string(fg) + "; overflow: cpu " +
              std::to_string(bc) + ", cuda " + std::to_string(bg));
  }
  const double sc = c.sum_squares(p.cpu(), 1000), sg = g.sum_squares(p.gpu(), 1000);
  check_close("sum_squares cuda vs cpu", std::fabs(sc - sg) / sc, 1e-9);  // double accumulation
  // bf16_widen: exact on both (a bit shift), so bit for bit; every 16-bit pattern over 1000 + 17 values.
  std::vector<uint16_t> halves(1017);
  for (std::size_t i = 0; i < halves.size(); ++i) halves[i] = static_cast<uint16_t>(i * 64 + r.below(64));
  Twin<uint16_t> h16(c, g, halves);
  F widened(c, g, halves.size());
  c.bf16_widen(widened.cpu(), h16.cpu(), halves.size());
  g.bf16_widen(widened.gpu(), h16.gpu(), halves.size());
  const std::vector<float> wc = widened.host_cpu(), wg = widened.host_gpu();
  check(std::memcmp(wc.data(), wg.data(), wc.size() * sizeof(float)) == 0, "bf16_widen cuda vs cpu (bit for bit)", "");
  // bf16_embedding_forward: the gathered rows of a bfloat16 table (17 rows of C), widened: bit for
  // bit, and equal to the rows of the widened table.
  {
    std::vector<int> ids(N);
    for (auto& t : ids) t = r.below(17);
    I etok(c, g, ids);
    F emb(c, g, std::size_t(N) * C);
    c.bf16_embedding_forward(emb.cpu(), etok.cpu(), h16.cpu(), N, C);
    g.bf16_embedding_forward(emb.gpu(), etok.gpu(), h16.gpu(), N, C);
    const std::vector<float> ec = emb.host_cpu(), eg = emb.host_gpu();
    bool rows = true;
    for (int n = 0; n < N; ++n)
      rows = rows && std::memcmp(ec.data() + std::size_t(n) * C, wc.data() + std::size_t(ids[n]) * C, C * sizeof(float)) == 0;
    rows = rows && std::memcmp(ec.data(), eg.data(), ec.size() * sizeof(float)) == 0;  // NaN patterns too: bits, not ==
    check(rows, "bf16_embedding_forward cuda vs cpu (bit for bit), the widened table's rows", "");
  }
  // copy_columns: a [N, 7] block into columns 5..11 of rows 19 wide, the rest untouched.
  {
    const int ld = 19, cols = 7;
    F block(c, g, normals(r, std::size_t(N) * cols)), wider(c, g, normals(r, std::size_t(N) * ld));
    std::vector<float> want = wider.host_cpu();
    const std::vector<float> src = block.host_cpu();
    for (int n = 0; n < N; ++n)
      for (int j = 0; j < cols; ++j) want[std::size_t(n) * ld + 5 + j] = src[std::size_t(n) * cols + j];
    c.copy_columns(wider.cpu() + 5, ld, block.cpu(), N, cols);
    g.copy_columns(wider.gpu() + 5, ld, block.gpu(), N, cols);
    check(wider.host_cpu() == want && wider.host_gpu() == want, "copy_columns cuda and cpu: the block's columns, nothing else", "");
  }
  // sampling: greedy must agree exactly; at temperature 1 a draw can differ only when the uniform
  // lands within rounding of a bucket edge, so allow 1% of rows.
  I s_cpu(c, g, N), s_gpu(c, g, N);
  c.sampling_forward(s_cpu.cpu(), logits.cpu(), N, V, 0.0f, 7, 3);
  g.sampling_forward(s_gpu.gpu(), logits.gpu(), N, V, 0.0f, 7, 3);
  check(s_cpu.host_cpu() == s_gpu.host_gpu(), "sampling_forward greedy cuda vs cpu", "");
  c.sampling_forward(s_cpu.cpu(), logits.cpu(), N, V, 1.0f, 7, 3);
  g.sampling_forward(s_gpu.gpu(), logits.gpu(), N, V, 1.0f, 7, 3);
  const std::vector<int> a = s_cpu.host_cpu(), b = s_gpu.host_gpu();
  int differ = 0;
  for (int i = 0; i < N; ++i) differ += a[i] != b[i];
  check(differ <= N / 100, "sampling_forward temperature 1 cuda vs cpu", std::to_string(differ) + " of " + std::to_string(N) + " rows differ");
}

// The fused LM head over several chunks with padding rows and a temperature, and the sampling
// filter. The head's sums run over 5000 ids in another order (block trees against lanes): ~1e-6
// relative, so 2e-5 of each tensor's scale; the kept sets of top-k/top-p must be the same ids
// (random logits put no boundary within rounding), and `scaled` is one product per entry: exact.
void compare_lm_head(Backend& c, Backend& g) {
  Rng r(81);
  const int N = 70, C = 32, Vw = 5003, V = 5000, chunk = revenant::kLmHeadChunk;
  const float inv_temp = 1.0f / 1.3f;
  std::vector<int> tgt(N);
  for (int n = 0; n < N; ++n) tgt[n] = n % 7 == 3 ? -1 : r.below(V);
  F inp(c, g, normals(r, N * C)), w(c, g, normals(r, std::size_t(Vw) * C, 0.7)), lp(c, g, N), ent(c, g, N), lse(c, g, N),
      scratch(c, g, revenant::lm_head_scratch(N, chunk)), dlp(c, g, normals(r, N)), dent(c, g, normals(r, N, 0.1)),
      dinp(c, g, N * C), dw(c, g, std::size_t(Vw) * C);
  I targets(c, g, tgt);
  c.lm_head_forward(lp.cpu(), ent.cpu(), lse.cpu(), scratch.cpu(), inp.cpu(), w.cpu(), nullptr, nullptr, targets.cpu(), N, C, V, chunk, inv_temp);
  g.lm_head_forward(lp.gpu(), ent.gpu(), lse.gpu(), scratch.gpu(), inp.gpu(), w.gpu(), nullptr, nullptr, targets.gpu(), N, C, V, chunk, inv_temp);
  c.lm_head_backward(dinp.cpu(), dw.cpu(), scratch.cpu(), inp.cpu(), w.cpu(), nullptr, nullptr, targets.cpu(), lse.cpu(), ent.cpu(), dlp.cpu(),
                     dent.cpu(), N, C, V, chunk, inv_temp);
  g.lm_head_backward(dinp.gpu(), dw.gpu(), scratch.gpu(), inp.gpu(), w.gpu(), nullptr, nullptr, targets.gpu(), lse.gpu(), ent.gpu(), dlp.gpu(),
                     dent.gpu(), N, C, V, chunk, inv_temp);
  lp.compare("lm_head_forward lp", 2e-5);
  ent.compare("lm_head_forward entropy", 2e-5);
  lse.compare("lm_head_forward lse", 2e-5);
  dinp.compare("lm_head_backward dinp", 2e-5);
  dw.compare("lm_head_backward dw", 2e-5);
  // A bfloat16 head (a frozen LoRA base's): each chunk widened before its product must give what
  // the float32 head of the same values gives, bit for bit, on each backend (dw null: frozen).
  {
    const std::vector<float> wh = w.host_cpu();
    std::vector<uint16_t> narrow(wh.size());
    std::vector<float> values(wh.size());
    for (std::size_t i = 0; i < wh.size(); ++i) {
      uint32_t u;
      std::memcpy(&u, &wh[i], sizeof u);
      narrow[i] = static_cast<uint16_t>(u >> 16);
      u &= 0xffff0000u;
      std::memcpy(&values[i], &u, sizeof u);
    }
    Twin<uint16_t> w16(c, g, narrow);
    F wv(c, g, values), wide(c, g, std::size_t(chunk) * C);
    for (const bool on_gpu : {false, true}) {
      Backend& be = on_gpu ? g : c;
      const auto at = [&](auto& t) { return on_gpu ? t.gpu() : t.cpu(); };
      const auto host = [&](F& t) { return on_gpu ? t.host_gpu() : t.host_cpu(); };
      std::vector<std::vector<float>> runs[2];
      for (const bool held : {false, true}) {
        be.zero(at(dinp), std::size_t(N) * C * sizeof(float));
        be.lm_head_forward(at(lp), at(ent), at(lse), at(scratch), at(inp), held ? nullptr : at(wv), held ? at(w16) : nullptr,
                           held ? at(wide) : nullptr, at(targets), N, C, V, chunk, inv_temp);
        be.lm_head_backward(at(dinp), nullptr, at(scratch), at(inp), held ? nullptr : at(wv), held ? at(w16) : nullptr,
                            held ? at(wide) : nullptr, at(targets), at(lse), at(ent), at(dlp), at(dent), N, C, V, chunk,
                            inv_temp);
        runs[held] = {host(lp), host(ent), host(lse), host(dinp)};
      }
      check(runs[0] == runs[1], std::string("lm_head with a bfloat16 head equals the float32 head of its values bit for bit (") +
                                    (on_gpu ? "cuda)" : "cpu)"), "");
    }
  }
  const int M = 64, W = 3000;
  F logits(c, g, normals(r, std::size_t(M) * W, 2.0)), scaled(c, g, std::size_t(M) * W), filtered(c, g, std::size_t(M) * W);
  for (const auto& [k, p] : {std::pair{0, 0.9f}, std::pair{500, 1.0f}, std::pair{500, 0.8f}}) {
    c.sampling_filter_forward(scaled.cpu(), filtered.cpu(), logits.cpu(), M, W, 0.8f, k, p);
    g.sampling_filter_forward(scaled.gpu(), filtered.gpu(), logits.gpu(), M, W, 0.8f, k, p);
    const std::string tag = " (top_k " + std::to_string(k) + ", top_p " + std::to_string(p) + ")";
    scaled.compare("sampling_filter_forward scaled" + tag, 0.0);
    const std::vector<float> a = filtered.host_cpu(), b = filtered.host_gpu();
    int differ = 0;
    for (std::size_t i = 0; i < a.size(); ++i) differ += std::isinf(a[i]) != std::isinf(b[i]);
    check(differ == 0, "sampling_filter_forward keeps the same ids cuda vs cpu" + tag, std::to_string(differ) + " ids differ");
  }
}

// What the whole model is held to on one path of kernels.
struct ModelTolerance {
  const char* tag;      // appended to every check's name
  double out;           // log-probs and values (scaled error)
  double grad_norm;     // relative
  double weights;       // parameters after one AdamW step (scaled error), or see moved_apart
  double moved_apart;   // > 0: instead, the share of weights whose step differs by over lr / 10
  bool same_greedy;     // greedy tokens must be identical
};

// fp32 kernels: ~30 stacked ops at ~1e-6 each (header).
constexpr ModelTolerance kPlainModel{" [fp32 kernels]", 1e-4, 1e-4, 1e-4, 0, true};
// Tensor-core GEMM: every matmul rounds its operands to bf16 (unit roundoff u = 2^-8), so each
// product's output carries a relative error of ~sqrt(2/3) u ~ 3e-3 (cuda_tc_tests.cc, header);
// 2 layers of 4 products (qkv, proj, fc, fcproj) plus the LM head give independent errors of that
// size, ~sqrt(9) * 3e-3 ~ 1e-2 on the logits, which reach the log-probs about unchanged (a log-prob
// is a logit minus a log-sum-exp of logits); 3e-2 is 3 standard deviations. The gradient norm sums
// squares of gradients that carry the same bf16 error through the backward's twice as many products:
// 3e-2 too. AdamW's first step moves a weight by lr * g / (|g| + eps), about +-lr whatever the
// gradient's size, so where bf16 noise flips the sign of a gradient near 0 that weight's step
// differs by up to 2 lr = 2e-3, the most any weight can differ (a max-norm check cannot tell more):
// instead, at most 2% of the weights may step more than lr / 10 apart (the few whose gradient is
// within the noise of 0). Greedy tokens may legitimately differ where two logits are within the
// bf16 error, so generation is checked through its log-probs (3e-2) and, when the tokens differ,
// by scoring the CUDA model's tokens on the CPU (see compare_greedy).
constexpr ModelTolerance kFastModel{" [tensor cores + flash]", 3e-2, 3e-2, 0, 0.02, false};

// The parameters after one AdamW step on both backends, from the same `before`, against `tol`.
void compare_step(const std::string& name, const std::vector<float>& gpu, const std::vector<float>& cpu,
                  const std::vector<float>& before, const ModelTolerance& tol) {
  if (tol.moved_apart <= 0) return check_close(name, scaled_error(gpu, cpu), tol.weights);
  const double lr = revenant::OptimConfig{}.lr;
  std::size_t apart = 0;
  double worst = 0;
  for (std::size_t i = 0; i < cpu.size() && i < gpu.size() && i < before.size(); ++i) {
    const double d = std::fabs((double(gpu[i]) - before[i]) - (double(cpu[i]) - before[i]));
    apart += d > lr / 10;
    worst = std::fmax(worst, d);
  }
  const double share = gpu.size() == cpu.size() && cpu.size() == before.size() ? double(apart) / cpu.size() : 1.0;
  char detail[96];
  std::snprintf(detail, sizeof detail, " (largest difference %.3g, at most 2 lr = %.3g)", worst, 2 * lr);
  check_close(name + ": share of weights whose step differs by over lr/10" + detail, share, tol.moved_apart);
}

// Greedy decoding takes the same path on both while no two logits are within rounding; where the
// tolerance allows tokens to differ (bf16) and they do, the CUDA model's own tokens, scored by the
// CPU model, must have the log-probs the CUDA model reported.
void compare_greedy(revenant::Model& mc, revenant::Model& mg, const std::string& what, const std::string& tag,
                    const ModelTolerance& tol) {
  using namespace revenant;
  GenerateOptions opt;
  opt.max_new_tokens = 6;
  opt.temperature = 0.0f;
  const std::vector<std::vector<int>> prompts{{1, 2, 3}, {4}};
  const GenerateResult gc = mc.generate(prompts, opt), gg = mg.generate(prompts, opt);
  if (tol.same_greedy || gc.tokens == gg.tokens) {
    check(gc.tokens == gg.tokens, what + " greedy generate cuda vs cpu" + tag, "");
    check_close(what + " generate logprobs cuda vs cpu" + tag, scaled_error(gg.logprobs, gc.logprobs), tol.out);
    return;
  }
  std::vector<float> reported, rescored;
  for (std::size_t row = 0; row < prompts.size(); ++row) {
    const std::vector<float> lp = mc.logprobs(finished_row(prompts[row], gg, row));
    for (int i = 0; i < gg.lengths[row]; ++i) {
      rescored.push_back(lp[prompts[row].size() + i]);
      reported.push_back(gg.logprobs[row * gg.max_new_tokens + i]);
    }
  }
  check_close(what + " generate (greedy tokens differ at a near tie): log-probs of its tokens vs cpu" + tag,
              scaled_error(reported, rescored), tol.out);
}

void compare_model(const std::string& label, const revenant::ModelConfig& cfg, bool fast) {
  using namespace revenant;
  const ModelTolerance& tol = fast ? kFastModel : kPlainModel;
  const std::string tag = label + tol.tag;
  Model mc(cfg, make_cpu_backend()), mg(cfg, make_cuda_backend(0, fast));
  Rng r(6);
  PolicyBatch pb;
  fill_tokens(pb, 4, 24, cfg.vocab, 0, r);
  const std::vector<float> lc = mc.logprobs(pb), lg = mg.logprobs(pb);
  check_close("model logprobs cuda vs cpu" + tag, scaled_error(lg, lc), tol.out);
  check_close("model values cuda vs cpu" + tag, scaled_error(mg.values(pb), mc.values(pb)), tol.out);
  fill_advantages(pb, r);
  pb.old_logprobs = lc;
  const std::vector<float> before = mc.get_state().params;
  const PolicyStats sc = mc.policy_step(pb, PolicyLossConfig{}, OptimConfig{});
  const PolicyStats sg = mg.policy_step(pb, PolicyLossConfig{}, OptimConfig{});
  check_close("model policy_step grad norm cuda vs cpu" + tag, std::fabs(sc.grad_norm - sg.grad_norm) / sc.grad_norm,
              tol.grad_norm);
  compare_step("model weights after policy_step cuda vs cpu" + tag, mg.get_state().params, mc.get_state().params,
               before, tol);
  compare_greedy(mc, mg, "model", tag, tol);
}

// A LoRA model (no value head: LoRA trains policies) with adapters drawn at random, so B is not 0;
// with bf16_base its projection matrices, embedding and LM head are held as bfloat16 and widened
// before each product (the head chunk by chunk) or lookup.
void compare_lora_model(bool fast, bool bf16_base) {
  using namespace revenant;
  const ModelTolerance& tol = fast ? kFastModel : kPlainModel;
  ModelConfig cfg;
  cfg.arch = Arch::Llama;
  cfg.seed = 4;
  cfg.kv_heads = 2;
  cfg.intermediate = 96;
  cfg.lora.rank = 4;
  cfg.lora.bf16_base = bf16_base;
  const std::string label = std::string(tol.tag) + (bf16_base ? " [bf16 base]" : "");
  Model mc(cfg, make_cpu_backend()), mg(cfg, make_cuda_backend(0, fast));
  Rng r(7);
  ModelState s = mc.get_state();
  for (auto& p : s.params) p = static_cast<float>(0.1 * r.normal());
  mc.set_state(s);
  mg.set_state(s);
  check(mc.base_bytes() == mg.base_bytes(), "lora model base bytes cuda vs cpu" + label, std::to_string(mg.base_bytes()));
  PolicyBatch pb;
  fill_tokens(pb, 4, 16, cfg.vocab, 0, r);
  const std::vector<float> lc = mc.logprobs(pb), lg = mg.logprobs(pb);
  check_close("lora model logprobs cuda vs cpu" + label, scaled_error(lg, lc), tol.out);
  check_close("lora model base logprobs (adapters off) cuda vs cpu" + label,
              scaled_error(mg.logprobs(pb, false), mc.logprobs(pb, false)), tol.out);
  fill_advantages(pb, r);
  pb.old_logprobs = lc;
  const std::vector<float> before = mc.get_state().params;
  const PolicyStats sc = mc.policy_step(pb, PolicyLossConfig{}, OptimConfig{});
  const PolicyStats sg = mg.policy_step(pb, PolicyLossConfig{}, OptimConfig{});
  check_close("lora model policy_step grad norm cuda vs cpu" + label,
              std::fabs(sc.grad_norm - sg.grad_norm) / sc.grad_norm, tol.grad_norm);
  compare_step("lora model adapters after policy_step cuda vs cpu" + label, mg.get_state().params,
               mc.get_state().params, before, tol);
  compare_greedy(mc, mg, "lora model", label, tol);
}

void compare_models(bool fast) {
  revenant::ModelConfig cfg;
  cfg.value_head = true;
  cfg.seed = 4;
  compare_model("", cfg, fast);
  revenant::ModelConfig llama = cfg;  // GQA 4/2 with q/k/v biases, then tied with one kv head
  llama.arch = revenant::Arch::Llama;
  llama.kv_heads = 2;
  llama.intermediate = 96;
  llama.attention_bias = true;
  compare_model(" [llama, GQA 4/2, q/k/v bias]", llama, fast);
  llama.kv_heads = 1;
  llama.attention_bias = false;
  llama.tied_embeddings = true;
  compare_model(" [llama, tied, 1 kv head]", llama, fast);
  revenant::ModelConfig qwen3 = llama;  // q/k norms, 4 heads of 24 on width 64 (attention width 96)
  qwen3.tied_embeddings = false;
  qwen3.kv_heads = 2;
  qwen3.head_dim = 24;
  qwen3.qk_norm = true;
  compare_model(" [qwen3, q/k norms, head_dim 24]", qwen3, fast);
  revenant::ModelConfig llama3 = llama;  // Llama 3 rope scaling with a short original context
  llama3.rope_llama3 = true;
  llama3.rope_scaling = revenant::RopeScaling{8.0f, 1.0f, 4.0f, 64.0f};
  compare_model(" [llama3 rope scaling, tied]", llama3, fast);
  compare_lora_model(fast, false);
  compare_lora_model(fast, true);
}

// The T x T attention buffer is never allocated when flash attention runs: the same update step on
// the fast kernels and on the fp32 kernels, every allocation counted where the allocator hands it
// out. The fp32 path holds a [B,NH,T,T] softmax per layer; the fast path holds exactly
// L * B*NH*(T*T - 2T) floats less (each layer's att is B*NH*T*2 floats: log-sum-exp and delta), at
// rest and at its peak, and allocates no buffer as large as one softmax. At T = 128 the softmax
// (B*NH*T*T) is twice the largest other activation (B*T * 4C), so the largest-buffer check can fail.
void flash_scratch_test() {
  using namespace revenant;
  ModelConfig cfg;
  cfg.seed = 4;
  cfg.context = 128;
  const int B = 2, T = 128;
  const std::size_t softmax = std::size_t(B) * cfg.heads * T * T * sizeof(float);
  Rng r(12);
  PolicyBatch pb;
  fill_tokens(pb, B, T, cfg.vocab, 0, r);
  fill_advantages(pb, r);
  std::size_t live[2], peak[2], largest[2];
  for (const bool fast : {false, true}) {
    auto owned = std::make_unique<CountingBackend>(make_cuda_backend(0, fast));
    CountingBackend* be = owned.get();
    Model m(cfg, std::move(owned));
    const std::size_t held = be->live_;  // weights, gradients, AdamW moments
    be->peak_ = held;
    be->largest_ = 0;
    pb.old_logprobs = m.logprobs(pb);  // allocates the activations of this shape
    largest[fast] = be->largest_;
    m.policy_step(pb, PolicyLossConfig{}, OptimConfig{});  // and the gradients, moments and scratch
    live[fast] = be->live_ - held;
    peak[fast] = be->peak_ - held;
  }
  const std::size_t saved = std::size_t(cfg.layers) * B * cfg.heads * (std::size_t(T) * T - 2 * T) * sizeof(float);
  const std::string detail = "activations " + std::to_string(live[1]) + " bytes flash, " + std::to_string(live[0]) +
                             " fp32; expected " + std::to_string(saved) + " fewer";
  check(live[0] - live[1] == saved && peak[0] - peak[1] == saved,
        "flash attention: the model holds B*NH*T*2 floats of attention per layer, not B*NH*T*T", detail);
  check(largest[0] >= softmax && largest[1] < softmax,
        "flash attention: no activation as large as one [B,NH,T,T] softmax is allocated",
        "largest buffer " + std::to_string(largest[1]) + " bytes flash, " + std::to_string(largest[0]) +
            " fp32; softmax " + std::to_string(softmax));
  const ModelConfig rc = resolve_config(cfg);
  check(activation_cost(rc, B, T).bytes - activation_cost(rc, B, T, std::size_t(B) * cfg.heads * T * 2).bytes == saved,
        "flash attention: activation_cost counts the smaller buffer", "");
}

}  // namespace
#endif

void run_cuda_tests() {
  if (!cuda_section("cuda vs cpu").usable) return;
#ifdef REVENANT_HAVE_CUDA
  auto cpu = revenant::make_cpu_backend();
  // The ops on the fp32 kernels (the tensor-core GEMM and flash attention are checked op by op in
  // cuda_tc_tests.cc, against their own bounds); the whole model on both paths.
  auto gpu = revenant::make_cuda_backend(0, false);
  unit("cuda ops", [&] { compare_ops(*cpu, *gpu); });
  unit("cuda lm head", [&] { compare_lm_head(*cpu, *gpu); });
  unit("cuda models (fp32 kernels)", [] { compare_models(false); });
  unit("cuda models (fast kernels)", [] { compare_models(true); });
  unit("flash attention scratch", flash_scratch_test);
#endif
}

}  // namespace rvtest
