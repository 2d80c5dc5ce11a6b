// matmul: fully connected layer out = inp @ w^T + bias, with w stored [OC, C] (PyTorch layout).
#include <type_traits>

#include "cpu/gemm.h"
#include "cpu/ops.h"

namespace revenant::cpu {

template <typename T>
void matmul_forward(T* out, const T* inp, const T* w, const T* bias, int N, int C, int OC) {
  if constexpr (std::is_same_v<T, float>) {
    // A few rows (a decoding step): the product is the cost of reading w, so stream it once, unpacked.
    if (N <= kSkinnyMaxRows) {
      sgemm_skinny_nt(N, OC, C, inp, C, w, C, bias, out, OC);
      return;
    }
  }
  if (bias) {
    for_chunks(N, double(N) * OC, [&](int begin, int end) {
      for (int n = begin; n < end; ++n)
        for (int o = 0; o < OC; ++o) out[static_cast<long>(n) * OC + o] = bias[o];
    });
  }
  gemm<T>(false, true, N, OC, C, inp, C, w, C, bias != nullptr, out, OC);
}

template <typename T>
void matmul_backward(T* dinp, T* dw, T* dbias, const T* dout, const T* inp, const T* w, int N,
                     int C, int OC) {
  if (dinp) gemm<T>(false, false, N, C, OC, dout, OC, w, C, true, dinp, C);  // dout @ w
  if (dw) gemm<T>(true, false, OC, C, N, dout, OC, inp, C, true, dw, C);     // dout^T @ inp (null: frozen)
  if (dbias) {
    for_chunks(OC, double(N) * OC, [&](int o0, int o1) {
      for (int n = 0; n < N; ++n) {
        const T* d = dout + static_cast<long>(n) * OC;
        for (int o = o0; o < o1; ++o) dbias[o] += d[o];
      }
    });
  }
}

template void matmul_forward<float>(float*, const float*, const float*, const float*, int, int, int);
template void matmul_forward<double>(double*, const double*, const double*, const double*, int, int, int);
template void matmul_backward<float>(float*, float*, float*, const float*, const float*, const float*, int, int, int);
template void matmul_backward<double>(double*, double*, double*, const double*, const double*, const double*, int, int, int);

}  // namespace revenant::cpu
