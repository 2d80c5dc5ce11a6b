// CPU reference ops: the readable specification every other backend is checked against.
// Templated on the element type: float is what the model runs, double is what the gradient
// checks use as ground truth. One file per op (<op>.cc), same names as native/src/cuda/<op>.cu.
// Backward ops accumulate (+=) into gradients, as documented in core/backend.h.
#pragma once
#include <cstddef>
#include <cstdint>

namespace revenant::cpu {

template <typename T>
void embedding_forward(T* out, const int* tokens, const T* wte, const T* wpe, int B, int Tn, int C,
                       int pos0);
template <typename T>
void embedding_backward(T* dwte, T* dwpe, const T* dout, const int* tokens, int B, int Tn, int C,
                        int pos0);
template <typename T>
void layernorm_forward(T* out, T* mean, T* rstd, const T* inp, const T* w, const T* b, int N, int C);
template <typename T>
void layernorm_backward(T* dinp, T* dw, T* db, const T* dout, const T* inp, const T* w,
                        const T* mean, const T* rstd, int N, int C);
template <typename T>
void matmul_forward(T* out, const T* inp, const T* w, const T* bias, int N, int C, int OC);
template <typename T>
void matmul_backward(T* dinp, T* dw, T* dbias, const T* dout, const T* inp, const T* w, int N,
                     int C, int OC);
// Attention over a packed qkv tensor whose rows are [q: NH heads | k: NKV heads | v: NKV heads],
// each head hs = C / NH wide (row stride C + 2 * NKV * hs). Query head h reads kv head
// h / (NH / NKV) (grouped-query attention; NKV == NH is plain multi-head attention).
template <typename T>
void attention_forward(T* out, T* att, const T* qkv, int B, int Tn, int C, int NH, int NKV);
template <typename T>
void attention_backward(T* dqkv, const T* dout, const T* qkv, const T* att, int B, int Tn, int C,
                        int NH, int NKV);
template <typename T>
void attention_decode(T* out, T* kcache, T* vcache, const T* qkv, int B, int C, int NH, int NKV,
                      int pos, int Tmax);
template <typename T>
void rmsnorm_forward(T* out, T* rstd, const T* inp, const T* w, int N, int C, float eps);
template <typename T>
void rmsnorm_backward(T* dinp, T* dw, const T* dout, const T* inp, const T* w, const T* rstd, int N,
                      int C);
// Rotary embeddings, in place on `heads` heads of width hd at the start of each row (stride
// apart); row (b, t) is at position pos0 + t. Backward rotates a gradient back, also in place.
template <typename T>
void rope_forward(T* x, int B, int Tn, int heads, int hd, int stride, int pos0, float theta);
template <typename T>
void rope_backward(T* dx, int B, int Tn, int heads, int hd, int stride, int pos0, float theta);
template <typename T>
void swiglu_forward(T* out, const T* inp, int N, int I);
template <typename T>
void swiglu_backward(T* dinp, const T* inp, const T* dout, int N, int I);
template <typename T>
void gelu_forward(T* out, const T* inp, int N);
template <typename T>
void gelu_backward(T* dinp, const T* inp, const T* dout, int N);
template <typename T>
void residual_forward(T* out, const T* a, const T* b, int N);
template <typename T>
void residual_backward(T* da, T* db, const T* dout, int N);
template <typename T>
void logprob_forward(T* lp, T* entropy, const T* logits, const int* targets, int N, int V);
template <typename T>
void logprob_backward(T* dlogits, const T* logits, const int* targets, const T* dlp, const T* dent,
                      int N, int V);
void adamw_update(float* params, const float* grads, float* m, float* v, std::size_t n, float lr,
                  float beta1, float beta2, float eps, float weight_decay, int step,
                  float grad_scale);
void sampling_forward(int* out, const float* logits, int N, int V, float temperature,
                      uint64_t seed, int step);
double sum_squares(const float* x, std::size_t n);

// Splits [0, n) into about `parts` contiguous chunks and runs fn(begin, end) on the pool when the
// work is worth it (work = rough flop count of the whole loop).
void parallel_chunks(int n, double work, void (*)(int, int, void*), void* ctx);

template <typename F>
void for_chunks(int n, double work, F&& fn) {
  parallel_chunks(
      n, work, [](int b, int e, void* c) { (*static_cast<F*>(c))(b, e); }, &fn);
}

}  // namespace revenant::cpu
