// lora: a low-rank adapter beside a frozen projection (LoRA). For the projection's input
// inp[N, C] and its output rows out[N, ld] (the adapter writes columns 0..OC-1 of each row, so it
// can target one of the packed q|k|v or gate|up blocks), with A [r, C] and B [OC, r]:
//   u = inp @ A^T            [N, r]
//   out += scale * u @ B^T
// The backward recomputes u (cheaper than keeping r floats per row per adapter per layer) and
// accumulates dA, dB and dinp (null: no input gradient wanted).
#include "core/dropout.h"
#include "cpu/ops.h"

namespace revenant::cpu {

namespace {

// u[n, :] = inp[n, :] @ A^T for every row.
template <typename T>
void lora_down(T* u, const T* inp, const T* A, int N, int C, int r) {
  for_chunks(N, double(N) * C * r, [&](int n0, int n1) {
    for (int n = n0; n < n1; ++n) {
      const T* x = inp + static_cast<long>(n) * C;
      for (int k = 0; k < r; ++k) {
        const T* a = A + static_cast<long>(k) * C;
        T s = 0;
        for (int c = 0; c < C; ++c) s += x[c] * a[c];
        u[static_cast<long>(n) * r + k] = s;
      }
    }
  });
}

}  // namespace

template <typename T>
void lora_forward(T* out, T* u, const T* inp, const T* A, const T* B, int N, int C, int OC, int ld, int r, float scale) {
  lora_down(u, inp, A, N, C, r);
  const T sc = static_cast<T>(scale);
  for_chunks(N, double(N) * OC * r, [&](int n0, int n1) {
    for (int n = n0; n < n1; ++n) {
      const T* un = u + static_cast<long>(n) * r;
      T* o = out + static_cast<long>(n) * ld;
      for (int j = 0; j < OC; ++j) {
        const T* b = B + static_cast<long>(j) * r;
        T s = 0;
        for (int k = 0; k < r; ++k) s += un[k] * b[k];
        o[j] += sc * s;
      }
    }
  });
}

template <typename T>
void lora_backward(T* dinp, T* dA, T* dB, T* u, T* du, const T* dout, const T* inp, const T* A, const T* B, int N, int C,
                   int OC, int ld, int r, float scale) {
  const T sc = static_cast<T>(scale);
  lora_down(u, inp, A, N, C, r);
  // du = scale * dout @ B, per row.
  for_chunks(N, double(N) * OC * r, [&](int n0, int n1) {
    for (int n = n0; n < n1; ++n) {
      const T* d = dout + static_cast<long>(n) * ld;
      for (int k = 0; k < r; ++k) {
        T s = 0;
        for (int j = 0; j < OC; ++j) s += d[j] * B[static_cast<long>(j) * r + k];
        du[static_cast<long>(n) * r + k] = sc * s;
      }
    }
  });
  // dB[j, k] += scale * sum_n dout[n, j] u[n, k]: each chunk owns rows j of dB, sums n in order.
  for_chunks(OC, double(N) * OC * r, [&](int j0, int j1) {
    for (int j = j0; j < j1; ++j)
      for (int k = 0; k < r; ++k) {
        T s = 0;
        for (int n = 0; n < N; ++n) s += dout[static_cast<long>(n) * ld + j] * u[static_cast<long>(n) * r + k];
        dB[static_cast<long>(j) * r + k] += sc * s;
      }
  });
  // dA[k, c] += sum_n du[n, k] inp[n, c]: each chunk owns columns c of dA.
  for_chunks(C, double(N) * C * r, [&](int c0, int c1) {
    for (int k = 0; k < r; ++k)
      for (int c = c0; c < c1; ++c) {
        T s = 0;
        for (int n = 0; n < N; ++n) s += du[static_cast<long>(n) * r + k] * inp[static_cast<long>(n) * C + c];
        dA[static_cast<long>(k) * C + c] += s;
      }
  });
  if (!dinp) return;
  // dinp[n, c] += sum_k du[n, k] A[k, c].
  for_chunks(N, double(N) * C * r, [&](int n0, int n1) {
    for (int n = n0; n < n1; ++n) {
      const T* dn = du + static_cast<long>(n) * r;
      T* g = dinp + static_cast<long>(n) * C;
      for (int c = 0; c < C; ++c) {
        T s = 0;
        for (int k = 0; k < r; ++k) s += dn[k] * A[static_cast<long>(k) * C + c];
        g[c] += s;
      }
    }
  });
}

template <typename T>
void lora_dropout_forward(T* out, const T* inp, int N, int C, float p, uint64_t seed, int stream) {
  const T keep_scale = static_cast<T>(1.0 / (1.0 - p));
  for_chunks(N, double(N) * C * 40, [&](int n0, int n1) {
    for (int n = n0; n < n1; ++n)
      for (int c = 0; c < C; ++c) {
        const long i = static_cast<long>(n) * C + c;
        out[i] = dropout_keep(seed, stream, n, c, p) ? inp[i] * keep_scale : T(0);
      }
  });
}

template <typename T>
void lora_dropout_backward(T* dinp, const T* dout, int N, int C, float p, uint64_t seed, int stream) {
  const T keep_scale = static_cast<T>(1.0 / (1.0 - p));
  for_chunks(N, double(N) * C * 40, [&](int n0, int n1) {
    for (int n = n0; n < n1; ++n)
      for (int c = 0; c < C; ++c) {
        const long i = static_cast<long>(n) * C + c;
        if (dropout_keep(seed, stream, n, c, p)) dinp[i] += dout[i] * keep_scale;
      }
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
