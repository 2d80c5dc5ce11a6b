// The compute backend interface: a short, fixed op list (tinygrad style) that the model is written
// against once. "cpu" (native/src/cpu) is the readable reference; "cuda" (native/src/cuda) mirrors
// it op by op under the same names. All pointers are in the backend's own memory (host for cpu,
// device for cuda); upload/download move data across. Shapes: N rows of C channels; B batch, T
// sequence length, NH heads, V vocabulary. Backward ops ACCUMULATE (+=) into their gradient
// outputs so a tensor used twice (a residual stream) gets both contributions; callers zero first.
#pragma once
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

namespace revenant {

class Backend {
 public:
  virtual ~Backend() = default;
  virtual std::string name() const = 0;

  // ---- memory ----
  virtual void* alloc(std::size_t bytes) = 0;  // zero-filled; throws on out-of-memory
  virtual void release(void* p) = 0;
  virtual void upload(void* dst, const void* host_src, std::size_t bytes) = 0;
  virtual void download(void* host_dst, const void* src, std::size_t bytes) = 0;
  virtual void zero(void* p, std::size_t bytes) = 0;
  virtual void copy(void* dst, const void* src, std::size_t bytes) = 0;
  virtual void synchronize() = 0;

  // ---- ops ----
  // out[b,t,:] = wte[tokens[b,t],:] + wpe[pos0 + t,:]; wpe (and dwpe) null: no position table.
  virtual void embedding_forward(float* out, const int* tokens, const float* wte, const float* wpe,
                                 int B, int T, int C, int pos0) = 0;
  virtual void embedding_backward(float* dwte, float* dwpe, const float* dout, const int* tokens,
                                  int B, int T, int C, int pos0) = 0;
  // out = (inp - mean) * rstd * w + b, per row; mean/rstd saved for backward.
  virtual void layernorm_forward(float* out, float* mean, float* rstd, const float* inp,
                                 const float* w, const float* b, int N, int C) = 0;
  virtual void layernorm_backward(float* dinp, float* dw, float* db, const float* dout,
                                  const float* inp, const float* w, const float* mean,
                                  const float* rstd, int N, int C) = 0;
  // out = inp * rstd * w, rstd = 1 / sqrt(mean(inp^2) + eps), per row; rstd saved for backward.
  virtual void rmsnorm_forward(float* out, float* rstd, const float* inp, const float* w, int N,
                               int C, float eps) = 0;
  virtual void rmsnorm_backward(float* dinp, float* dw, const float* dout, const float* inp,
                                const float* w, const float* rstd, int N, int C) = 0;
  // out[N,OC] = inp[N,C] @ w[OC,C]^T + bias[OC] (bias may be null).
  virtual void matmul_forward(float* out, const float* inp, const float* w, const float* bias,
                              int N, int C, int OC) = 0;
  // dinp may be null (no gradient wanted); dbias may be null (no bias).
  virtual void matmul_backward(float* dinp, float* dw, float* dbias, const float* dout,
                               const float* inp, const float* w, int N, int C, int OC) = 0;
  // Causal attention with NH query heads and NKV key/value heads (NH % NKV == 0; query head h
  // reads kv head h / (NH / NKV); NKV == NH is plain multi-head attention). Head size hs = C / NH.
  // qkv[B,T,C + 2*NKV*hs] rows are q | k | v -> out[B,T,C]; att[B,NH,T,T] saved softmax.
  virtual void attention_forward(float* out, float* att, const float* qkv, int B, int T, int C,
                                 int NH, int NKV) = 0;
  virtual void attention_backward(float* dqkv, const float* dout, const float* qkv,
                                  const float* att, int B, int T, int C, int NH, int NKV) = 0;
  // One decoding step with a KV cache: stores k,v of qkv[B, C + 2*NKV*hs] at position pos of
  // kcache/vcache[B,Tmax,NKV*hs], then attends the query over positions 0..pos.
  virtual void attention_decode(float* out, float* kcache, float* vcache, const float* qkv, int B,
                                int C, int NH, int NKV, int pos, int Tmax) = 0;
  // Rotary position embeddings (Hugging Face "rotate_half" pairs i, i + hd/2; angle
  // pos * theta^(-2i/hd)) applied IN PLACE to the first `heads` heads of width hd of each of the
  // B*T rows of x (rows `stride` floats apart; row (b,t) at position pos0 + t). The backward
  // rotates the gradient back in place: the one backward op that overwrites instead of adding,
  // since a rotation's input gradient is its output gradient turned back.
  virtual void rope_forward(float* x, int B, int T, int heads, int hd, int stride, int pos0,
                            float theta) = 0;
  virtual void rope_backward(float* dx, int B, int T, int heads, int hd, int stride, int pos0,
                             float theta) = 0;
  // SwiGLU: inp[N, 2I] rows are gate | up; out[N, I] = silu(gate) * up.
  virtual void swiglu_forward(float* out, const float* inp, int N, int I) = 0;
  virtual void swiglu_backward(float* dinp, const float* inp, const float* dout, int N, int I) = 0;
  virtual void gelu_forward(float* out, const float* inp, int N) = 0;
  virtual void gelu_backward(float* dinp, const float* inp, const float* dout, int N) = 0;
  virtual void residual_forward(float* out, const float* a, const float* b, int N) = 0;
  virtual void residual_backward(float* da, float* db, const float* dout, int N) = 0;
  // Per row of logits[N,V]: lp = log softmax(logits)[target] (0 when target < 0) and the
  // distribution's entropy.
  virtual void logprob_forward(float* lp, float* entropy, const float* logits, const int* targets,
                               int N, int V) = 0;
  // dlogits (overwritten) = gradient of sum_rows(dlp*lp + dent*entropy).
  virtual void logprob_backward(float* dlogits, const float* logits, const int* targets,
                                const float* dlp, const float* dent, int N, int V) = 0;
  // AdamW on n values; grads are multiplied by grad_scale first (global-norm clipping). No
  // backward: this is the update itself.
  virtual void adamw_update(float* params, const float* grads, float* m, float* v, std::size_t n,
                            float lr, float beta1, float beta2, float eps, float weight_decay,
                            int step, float grad_scale) = 0;
  // Samples one token per row from softmax(logits/temperature) (argmax when temperature == 0)
  // with uniform = Philox(seed, row, step). No backward: sampling is not differentiable.
  virtual void sampling_forward(int* out, const float* logits, int N, int V, float temperature,
                                uint64_t seed, int step) = 0;
  // Sum of squares, accumulated in double in a fixed order (deterministic gradient norm).
  virtual double sum_squares(const float* x, std::size_t n) = 0;
};

// "cpu", "cuda" or "auto" (cuda when a usable device exists, else cpu). Throws revenant::Error
// naming the reason when "cuda" is asked for and cannot be used.
std::unique_ptr<Backend> make_backend(const std::string& device);
std::unique_ptr<Backend> make_cpu_backend();
#ifdef REVENANT_HAVE_CUDA
std::unique_ptr<Backend> make_cuda_backend();
#endif

// A typed buffer in backend memory, freed with its owner.
template <typename T>
class DeviceBuffer {
 public:
  DeviceBuffer() = default;
  DeviceBuffer(Backend* be, std::size_t n) : be_(be), n_(n) {
    p_ = static_cast<T*>(be->alloc(n * sizeof(T) + 1));
  }
  ~DeviceBuffer() { reset(); }
  DeviceBuffer(DeviceBuffer&& o) noexcept { *this = std::move(o); }
  DeviceBuffer& operator=(DeviceBuffer&& o) noexcept {
    reset();
    be_ = o.be_; p_ = o.p_; n_ = o.n_;
    o.p_ = nullptr; o.n_ = 0;
    return *this;
  }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
  void reset() {
    if (p_) be_->release(p_);
    p_ = nullptr;
    n_ = 0;
  }
  T* get() const { return p_; }
  std::size_t size() const { return n_; }

 private:
  Backend* be_ = nullptr;
  T* p_ = nullptr;
  std::size_t n_ = 0;
};

}  // namespace revenant
