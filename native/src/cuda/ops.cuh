// CUDA ops: the same op names and signatures as native/src/cpu/ops.h, float only, device pointers.
// Each launcher checks its launch and throws revenant::Error with the op, file and line.
// Reductions use a fixed thread-to-data mapping, so results are run-to-run deterministic.
#pragma once
#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>
#include <string>

#include "core/error.h"

#define RV_CUDA_CHECK(call, op)                                                                   \
  do {                                                                                            \
    const cudaError_t rv_err_ = (call);                                                           \
    if (rv_err_ != cudaSuccess)                                                                   \
      throw ::revenant::Error((op), __FILE__, __LINE__,                                           \
                              std::string(cudaGetErrorName(rv_err_)) + ": " + cudaGetErrorString(rv_err_)); \
  } while (0)

// After a kernel launch: catches bad launch configurations at the op that caused them.
#define RV_CUDA_LAUNCHED(op) RV_CUDA_CHECK(cudaGetLastError(), op)

namespace revenant::cuda {

inline int blocks_for(long n, int threads) { return static_cast<int>((n + threads - 1) / threads); }

void embedding_forward(float* out, const int* tokens, const float* wte, const float* wpe, int B, int T, int C, int pos0);
void embedding_backward(float* dwte, float* dwpe, const float* dout, const int* tokens, int B, int T, int C, int pos0);
void layernorm_forward(float* out, float* mean, float* rstd, const float* inp, const float* w, const float* b, int N, int C);
void layernorm_backward(float* dinp, float* dw, float* db, const float* dout, const float* inp, const float* w,
                        const float* mean, const float* rstd, int N, int C);
void matmul_forward(float* out, const float* inp, const float* w, const float* bias, int N, int C, int OC);
void matmul_backward(float* dinp, float* dw, float* dbias, const float* dout, const float* inp, const float* w, int N,
                     int C, int OC);
void rmsnorm_forward(float* out, float* rstd, const float* inp, const float* w, int N, int C, float eps);
void rmsnorm_backward(float* dinp, float* dw, const float* dout, const float* inp, const float* w, const float* rstd,
                      int N, int C);
void attention_forward(float* out, float* att, const float* qkv, int B, int T, int C, int NH, int NKV);
void attention_backward(float* dqkv, const float* dout, const float* qkv, const float* att, int B, int T, int C, int NH,
                        int NKV);
void attention_decode(float* out, float* kcache, float* vcache, const float* qkv, int B, int C, int NH, int NKV, int pos,
                      int Tmax);
void rope_forward(float* x, int B, int T, int heads, int hd, int stride, int pos0, float theta);
void rope_backward(float* dx, int B, int T, int heads, int hd, int stride, int pos0, float theta);
void swiglu_forward(float* out, const float* inp, int N, int I);
void swiglu_backward(float* dinp, const float* inp, const float* dout, int N, int I);
void gelu_forward(float* out, const float* inp, int N);
void gelu_backward(float* dinp, const float* inp, const float* dout, int N);
void residual_forward(float* out, const float* a, const float* b, int N);
void residual_backward(float* da, float* db, const float* dout, int N);
void logprob_forward(float* lp, float* entropy, const float* logits, const int* targets, int N, int V);
void logprob_backward(float* dlogits, const float* logits, const int* targets, const float* dlp, const float* dent, int N,
                      int V);
void adamw_update(float* params, const float* grads, float* m, float* v, std::size_t n, float lr, float beta1, float beta2,
                  float eps, float weight_decay, int step, float grad_scale);
void sampling_forward(int* out, const float* logits, int N, int V, float temperature, uint64_t seed, int step);
double sum_squares(const float* x, std::size_t n);

}  // namespace revenant::cuda
