// residual: elementwise sum of two streams.
#include "cpu/ops.h"

namespace revenant::cpu {

template <typename T>
void residual_forward(T* out, const T* a, const T* b, int N) {
  for_chunks(N, double(N), [&](int begin, int end) {
    for (int i = begin; i < end; ++i) out[i] = a[i] + b[i];
  });
}

template <typename T>
void residual_backward(T* da, T* db, const T* dout, int N) {
  for_chunks(N, double(N) * 2, [&](int begin, int end) {
    for (int i = begin; i < end; ++i) {
      da[i] += dout[i];
      db[i] += dout[i];
    }
  });
}

template void residual_forward<float>(float*, const float*, const float*, int);
template void residual_forward<double>(double*, const double*, const double*, int);
template void residual_backward<float>(float*, float*, const float*, int);
template void residual_backward<double>(double*, double*, const double*, int);

}  // namespace revenant::cpu
