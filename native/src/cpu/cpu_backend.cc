// The CPU backend: host memory and the reference ops of native/src/cpu at float precision.
#include <cstdlib>
#include <cstring>
#include <new>

#include "core/backend.h"
#include "core/error.h"
#include "cpu/ops.h"

namespace revenant {
namespace {

class CpuBackend final : public Backend {
 public:
  std::string name() const override { return "cpu"; }

  void* alloc(std::size_t bytes) override {
    void* p = std::calloc(1, bytes == 0 ? 1 : bytes);
    RV_CHECK(p != nullptr, "alloc", "out of host memory allocating " + std::to_string(bytes) + " bytes");
    return p;
  }
  void release(void* p) override { std::free(p); }
  void upload(void* dst, const void* src, std::size_t bytes) override { std::memcpy(dst, src, bytes); }
  void download(void* dst, const void* src, std::size_t bytes) override { std::memcpy(dst, src, bytes); }
  void zero(void* p, std::size_t bytes) override { std::memset(p, 0, bytes); }
  void copy(void* dst, const void* src, std::size_t bytes) override { std::memmove(dst, src, bytes); }
  void synchronize() override {}

  void embedding_forward(float* out, const int* tokens, const float* wte, const float* wpe, int B,
                         int T, int C, int pos0) override {
    cpu::embedding_forward(out, tokens, wte, wpe, B, T, C, pos0);
  }
  void embedding_backward(float* dwte, float* dwpe, const float* dout, const int* tokens, int B,
                          int T, int C, int pos0) override {
    cpu::embedding_backward(dwte, dwpe, dout, tokens, B, T, C, pos0);
  }
  void layernorm_forward(float* out, float* mean, float* rstd, const float* inp, const float* w,
                         const float* b, int N, int C) override {
    cpu::layernorm_forward(out, mean, rstd, inp, w, b, N, C);
  }
  void layernorm_backward(float* dinp, float* dw, float* db, const float* dout, const float* inp,
                          const float* w, const float* mean, const float* rstd, int N,
                          int C) override {
    cpu::layernorm_backward(dinp, dw, db, dout, inp, w, mean, rstd, N, C);
  }
  void matmul_forward(float* out, const float* inp, const float* w, const float* bias, int N, int C,
                      int OC) override {
    cpu::matmul_forward(out, inp, w, bias, N, C, OC);
  }
  void matmul_backward(float* dinp, float* dw, float* dbias, const float* dout, const float* inp,
                       const float* w, int N, int C, int OC) override {
    cpu::matmul_backward(dinp, dw, dbias, dout, inp, w, N, C, OC);
  }
  void rmsnorm_forward(float* out, float* rstd, const float* inp, const float* w, int N, int C,
                       float eps) override {
    cpu::rmsnorm_forward(out, rstd, inp, w, N, C, eps);
  }
  void rmsnorm_backward(float* dinp, float* dw, const float* dout, const float* inp, const float* w,
                        const float* rstd, int N, int C) override {
    cpu::rmsnorm_backward(dinp, dw, dout, inp, w, rstd, N, C);
  }
  void attention_forward(float* out, float* att, const float* qkv, int B, int T, int C, int NH,
                         int NKV) override {
    cpu::attention_forward(out, att, qkv, B, T, C, NH, NKV);
  }
  void attention_backward(float* dqkv, const float* dout, const float* qkv, const float* att, int B,
                          int T, int C, int NH, int NKV) override {
    cpu::attention_backward(dqkv, dout, qkv, att, B, T, C, NH, NKV);
  }
  void attention_decode(float* out, float* kcache, float* vcache, const float* qkv, int B, int C,
                        int NH, int NKV, int pos, int Tmax) override {
    cpu::attention_decode(out, kcache, vcache, qkv, B, C, NH, NKV, pos, Tmax);
  }
  void rope_forward(float* x, int B, int T, int heads, int hd, int stride, int pos0,
                    float theta) override {
    cpu::rope_forward(x, B, T, heads, hd, stride, pos0, theta);
  }
  void rope_backward(float* dx, int B, int T, int heads, int hd, int stride, int pos0,
                     float theta) override {
    cpu::rope_backward(dx, B, T, heads, hd, stride, pos0, theta);
  }
  void swiglu_forward(float* out, const float* inp, int N, int I) override {
    cpu::swiglu_forward(out, inp, N, I);
  }
  void swiglu_backward(float* dinp, const float* inp, const float* dout, int N, int I) override {
    cpu::swiglu_backward(dinp, inp, dout, N, I);
  }
  void gelu_forward(float* out, const float* inp, int N) override { cpu::gelu_forward(out, inp, N); }
  void gelu_backward(float* dinp, const float* inp, const float* dout, int N) override {
    cpu::gelu_backward(dinp, inp, dout, N);
  }
  void residual_forward(float* out, const float* a, const float* b, int N) override {
    cpu::residual_forward(out, a, b, N);
  }
  void residual_backward(float* da, float* db, const float* dout, int N) override {
    cpu::residual_backward(da, db, dout, N);
  }
  void logprob_forward(float* lp, float* entropy, const float* logits, const int* targets, int N,
                       int V) override {
    cpu::logprob_forward(lp, entropy, logits, targets, N, V);
  }
  void logprob_backward(float* dlogits, const float* logits, const int* targets, const float* dlp,
                        const float* dent, int N, int V) override {
    cpu::logprob_backward(dlogits, logits, targets, dlp, dent, N, V);
  }
  void adamw_update(float* params, const float* grads, float* m, float* v, std::size_t n, float lr,
                    float beta1, float beta2, float eps, float weight_decay, int step,
                    float grad_scale) override {
    cpu::adamw_update(params, grads, m, v, n, lr, beta1, beta2, eps, weight_decay, step, grad_scale);
  }
  void sampling_forward(int* out, const float* logits, int N, int V, float temperature,
                        uint64_t seed, int step) override {
    cpu::sampling_forward(out, logits, N, V, temperature, seed, step);
  }
  double sum_squares(const float* x, std::size_t n) override { return cpu::sum_squares(x, n); }
};

}  // namespace

std::unique_ptr<Backend> make_cpu_backend() { return std::make_unique<CpuBackend>(); }

}  // namespace revenant
