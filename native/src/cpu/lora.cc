// lora: a low-rank adapter beside a frozen projection (LoRA). For the projection's input
// inp[N, C] and its output rows out[N, ld] (the adapter writes columns 0..OC-1 of each row, so it
// can target one of the packed q|k|v or gate|up blocks), with A [r, C] and B [OC, r]:
//   u = inp @ A^T            [N, r]
//   out += scale * u @ B^T
// The backward recomputes u (cheaper than keeping r floats per row per adapter per layer) and
// accumulates dA, dB and dinp (null: no input gradient wanted). u and du are scratch: both are left
// scaled by `scale`.
#include "core/dropout.h"
#include "cpu/gemm.h"
#include "cpu/ops.h"

namespace revenant::cpu {

// Every product goes through gemm (cpu/gemm.h: OpenBLAS or our blocked kernel for float, a plain
// loop for double), as the frozen projection's own does: at a policy batch's tens of thousands of
// rows, rank-r products in scalar loops (strided column walks for dA and dB) cost several times the
// whole base model's products.
template <typename T>
void lora_forward(T* out, T* u, const T* inp, const T* A, const T* B, int N, int C, int OC, int ld, int r, float scale) {
  gemm<T>(false, true, N, r, C, inp, C, A, C, false, u, r);  // u = inp @ A^T
  const T sc = static_cast<T>(scale);
  for (long i = 0; i < static_cast<long>(N) * r; ++i) u[i] *= sc;
  gemm<T>(false, true, N, OC, r, u, r, B, r, true, out, ld);  // out += (scale u) @ B^T
}

template <typename T>
void lora_backward(T* dinp, T* dA, T* dB, T* u, T* du, const T* dout, const T* inp, const T* A, const T* B, int N, int C,
                   int OC, int ld, int r, float scale) {
  const T sc = static_cast<T>(scale);
  const long n = static_cast<long>(N) * r;
  gemm<T>(false, true, N, r, C, inp, C, A, C, false, u, r);      // u = inp @ A^T
  gemm<T>(false, false, N, r, OC, dout, ld, B, r, false, du, r);  // du = dout @ B
  for (long i = 0; i < n; ++i) {
    u[i] *= sc;
    du[i] *= sc;
  }
  gemm<T>(true, false, OC, r, N, dout, ld, u, r, true, dB, r);   // dB += dout^T @ (scale u)
  gemm<T>(true, false, r, C, N, du, r, inp, C, true, dA, C);     // dA += du^T @ inp
  if (dinp) gemm<T>(false, false, N, C, r, du, r, A, C, true, dinp, C);  // dinp += du @ A
}

// Calls f(i, keep) for each element i of an [N, C] array, keep being dropout's draw for it; rows
// in parallel.
template <typename F>
void for_each_draw(int N, int C, float p, uint64_t seed, int stream, F&& f) {
  for_chunks(N, double(N) * C * 40, [&](int n0, int n1) {
    for (int n = n0; n < n1; ++n)
      for (int c = 0; c < C; ++c) f(static_cast<long>(n) * C + c, dropout_keep(seed, stream, n, c, p));
  });
}

template <typename T>
void lora_dropout_forward(T* out, const T* inp, int N, int C, float p, uint64_t seed, int stream) {
  const T keep_scale = static_cast<T>(1.0 / (1.0 - p));
  for_each_draw(N, C, p, seed, stream, [&](long i, bool keep) { out[i] = keep ? inp[i] * keep_scale : T(0); });
}

template <typename T>
void lora_dropout_backward(T* dinp, const T* dout, int N, int C, float p, uint64_t seed, int stream) {
  const T keep_scale = static_cast<T>(1.0 / (1.0 - p));
  for_each_draw(N, C, p, seed, stream, [&](long i, bool keep) {
    if (keep) dinp[i] += dout[i] * keep_scale;
  });
}

template void lora_dropout_forward<float>(float*, const float*, int, int, float, uint64_t, int);
template void lora_dropout_forward<double>(double*, const double*, int, int, float, uint64_t, int);
template void lora_dropout_backward<float>(float*, const float*, int, int, float, uint64_t, int);
template void lora_dropout_backward<double>(double*, const double*, int, int, float, uint64_t, int);
template void lora_forward<float>(float*, float*, const float*, const float*, const float*, int, int, int, int, int, float);
template void lora_forward<double>(double*, double*, const double*, const double*, const double*, int, int, int, int, int, float);
template void lora_backward<float>(float*, float*, float*, float*, float*, const float*, const float*, const float*, const float*,
                                   int, int, int, int, int, float);
template void lora_backward<double>(double*, double*, double*, double*, double*, const double*, const double*, const double*,
                                    const double*, int, int, int, int, int, float);

}  // namespace revenant::cpu
