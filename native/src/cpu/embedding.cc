// embedding: token plus position embeddings; wpe null means no position table (Llama, whose
// positions come from rotary embeddings inside attention).
#include "cpu/ops.h"

namespace revenant::cpu {

template <typename T>
void embedding_forward(T* out, const int* tokens, const T* wte, const T* wpe, int B, int Tn, int C,
                       int pos0) {
  for_chunks(B * Tn, double(B) * Tn * C, [&](int begin, int end) {
    for (int bt = begin; bt < end; ++bt) {
      const T* te = wte + static_cast<long>(tokens[bt]) * C;
      T* o = out + static_cast<long>(bt) * C;
      if (!wpe) {
        for (int c = 0; c < C; ++c) o[c] = te[c];
        continue;
      }
      const T* pe = wpe + static_cast<long>(pos0 + bt % Tn) * C;
      for (int c = 0; c < C; ++c) o[c] = te[c] + pe[c];
    }
  });
}

// Several positions can share a token, so rows of dwte are shared: split by channel instead and
// walk positions in order inside each chunk (deterministic, race-free).
template <typename T>
void embedding_backward(T* dwte, T* dwpe, const T* dout, const int* tokens, int B, int Tn, int C,
                        int pos0) {
  for_chunks(C, double(B) * Tn * C * 2, [&](int c0, int c1) {
    for (int bt = 0; bt < B * Tn; ++bt) {
      const T* d = dout + static_cast<long>(bt) * C;
      T* te = dwte + static_cast<long>(tokens[bt]) * C;
      for (int c = c0; c < c1; ++c) te[c] += d[c];
      if (!dwpe) continue;
      T* pe = dwpe + static_cast<long>(pos0 + bt % Tn) * C;
      for (int c = c0; c < c1; ++c) pe[c] += d[c];
    }
  });
}

template void embedding_forward<float>(float*, const int*, const float*, const float*, int, int, int, int);
template void embedding_forward<double>(double*, const int*, const double*, const double*, int, int, int, int);
template void embedding_backward<float>(float*, float*, const float*, const int*, int, int, int, int);
template void embedding_backward<double>(double*, double*, const double*, const int*, int, int, int, int);

}  // namespace revenant::cpu
