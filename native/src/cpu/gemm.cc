// Blocked single-precision matrix product (the no-BLAS path), plus the BLAS dispatch.
//
// Layout: for each K chunk of KC, B is packed into NR-wide column panels and A into MR-tall row
// panels (zero-padded at the edges), then an MR x NR register-tile micro-kernel walks k in
// order. Every output element is therefore computed by the same instruction sequence wherever it
// sits (edge tiles included) and whichever thread runs it: results do not depend on threads.
// The micro-kernel uses GCC/Clang vector extensions, which become AVX-512, AVX2 or NEON code.
#include "cpu/gemm.h"

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "core/thread_pool.h"

#ifdef REVENANT_HAVE_BLAS
#include <cblas.h>
#endif

namespace revenant::cpu {
namespace {

#if defined(__AVX512F__)
constexpr int VW = 16;
#elif defined(__AVX__)
constexpr int VW = 8;
#else
constexpr int VW = 4;
#endif
typedef float vfloat __attribute__((vector_size(VW * sizeof(float))));

constexpr int MR = 6;        // rows per register tile: 6 x 2 vector accumulators fit any ISA
constexpr int NR = 2 * VW;   // columns per register tile
constexpr int KC = 128;      // K chunk: an A and a B panel stay in L1/L2
constexpr int MC = 8 * MR;   // rows per task

std::atomic<int> g_impl{static_cast<int>(GemmImpl::Auto)};

struct AlignedFloats {
  explicit AlignedFloats(std::size_t n) {
    const std::size_t bytes = ((n * sizeof(float) + 63) / 64) * 64 + 64;
    p = static_cast<float*>(std::aligned_alloc(64, bytes));
  }
  ~AlignedFloats() { std::free(p); }
  float* p;
};

inline float at(const float* X, int ld, bool trans, int r, int c) {
  return trans ? X[static_cast<long>(c) * ld + r] : X[static_cast<long>(r) * ld + c];
}

// A rows [i0, i0+MR) x k [k0, k0+kc) -> dst[k*MR + i]
void pack_a(float* dst, const float* A, int lda, bool trans, int M, int i0, int k0, int kc) {
  for (int k = 0; k < kc; ++k)
    for (int i = 0; i < MR; ++i)
      dst[k * MR + i] = (i0 + i < M) ? at(A, lda, trans, i0 + i, k0 + k) : 0.0f;
}

// B k [k0, k0+kc) x columns [j0, j0+NR) -> dst[k*NR + j]
void pack_b(float* dst, const float* B, int ldb, bool trans, int N, int j0, int k0, int kc) {
  if (!trans && j0 + NR <= N) {
    for (int k = 0; k < kc; ++k)
      std::memcpy(dst + k * NR, B + static_cast<long>(k0 + k) * ldb + j0, NR * sizeof(float));
    return;
  }
  if (trans && j0 + NR <= N) {  // read each stored row of B^T contiguously
    for (int j = 0; j < NR; ++j) {
      const float* src = B + static_cast<long>(j0 + j) * ldb + k0;
      for (int k = 0; k < kc; ++k) dst[k * NR + j] = src[k];
    }
    return;
  }
  for (int k = 0; k < kc; ++k)
    for (int j = 0; j < NR; ++j)
      dst[k * NR + j] = (j0 + j < N) ? at(B, ldb, trans, k0 + k, j0 + j) : 0.0f;
}

// acc[MR][NR] = sum over k of A(i, k) * B(k, j). A is read in place: A(i, k) = a[i*rs + k*ks]
// (rows of a packed edge block, of A, or of A^T all fit this form); B is a packed panel.
template <int RS_IS_ONE>
inline void micro_kernel(int kc, const float* __restrict a, long rs, long ks, const float* __restrict b,
                         vfloat (&c)[MR][2]) {
  for (int i = 0; i < MR; ++i) c[i][0] = c[i][1] = vfloat{};
  for (int k = 0; k < kc; ++k) {
    const vfloat b0 = *reinterpret_cast<const vfloat*>(b + k * NR);
    const vfloat b1 = *reinterpret_cast<const vfloat*>(b + k * NR + VW);
    const float* ak = a + k * ks;
    for (int i = 0; i < MR; ++i) {
      const vfloat ai = vfloat{} + ak[RS_IS_ONE ? i : i * rs];
      c[i][0] += ai * b0;
      c[i][1] += ai * b1;
    }
  }
}

// C tile (ni x nj valid) = (overwrite ? 0 : C) + acc: one float add per element on every path,
// so edge tiles round exactly like full ones.
inline void store_tile(const vfloat (&c)[MR][2], float* C, int ldc, int ni, int nj, bool overwrite) {
  if (ni == MR && nj == NR) {
    for (int i = 0; i < MR; ++i) {
      float* row = C + static_cast<long>(i) * ldc;
      vfloat r0 = vfloat{}, r1 = vfloat{};
      if (!overwrite) {
        std::memcpy(&r0, row, sizeof(vfloat));
        std::memcpy(&r1, row + VW, sizeof(vfloat));
      }
      r0 += c[i][0];
      r1 += c[i][1];
      std::memcpy(row, &r0, sizeof(vfloat));
      std::memcpy(row + VW, &r1, sizeof(vfloat));
    }
    return;
  }
  alignas(64) float tile[MR * NR];
  for (int i = 0; i < MR; ++i) {
    std::memcpy(tile + i * NR, &c[i][0], sizeof(vfloat));
    std::memcpy(tile + i * NR + VW, &c[i][1], sizeof(vfloat));
  }
  for (int i = 0; i < ni; ++i) {
    float* row = C + static_cast<long>(i) * ldc;
    for (int j = 0; j < nj; ++j) row[j] = (overwrite ? 0.0f : row[j]) + tile[i * NR + j];
  }
}

template <typename F>
void run_tasks(int n, double flops, F&& fn) {
  // Under ~4 MFLOP (tens of microseconds) waking the pool costs about as much as it saves.
  if (n <= 1 || pool_threads() == 1 || flops < 4e6) {
    for (int t = 0; t < n; ++t) fn(t);
  } else {
    parallel_for(n, fn);
  }
}

}  // namespace

void sgemm_own(bool trans_a, bool trans_b, int M, int N, int K, const float* A, int lda,
               const float* B, int ldb, bool accumulate, float* C, int ldc) {
  if (M <= 0 || N <= 0) return;
  if (K <= 0) {
    if (!accumulate)
      for (int i = 0; i < M; ++i) std::memset(C + static_cast<long>(i) * ldc, 0, N * sizeof(float));
    return;
  }
  const int npanels = (N + NR - 1) / NR;
  const int mblocks = (M + MC - 1) / MC;
  const double flops = 2.0 * M * N * K;
  const int kc_max = K < KC ? K : KC;
  AlignedFloats bpack(static_cast<std::size_t>(npanels) * NR * kc_max);
  // Rows of A are read in place; only a ragged last row block (M % MR) is packed, zero-padded.
  const int full_rows = M - M % MR;
  AlignedFloats edge(static_cast<std::size_t>(MR) * kc_max);
  const long rs = trans_a ? 1 : lda, ks = trans_a ? lda : 1;
  for (int k0 = 0; k0 < K; k0 += KC) {
    const int kc = K - k0 < KC ? K - k0 : KC;
    const bool overwrite = !accumulate && k0 == 0;
    run_tasks(npanels, flops, [&](int p) {
      pack_b(bpack.p + static_cast<long>(p) * NR * kc, B, ldb, trans_b, N, p * NR, k0, kc);
    });
    if (full_rows < M) pack_a(edge.p, A, lda, trans_a, M, full_rows, k0, kc);
    // One task per (row block, column panel); row-block-major so a thread keeps its A in cache.
    run_tasks(mblocks * npanels, flops, [&](int task) {
      const int mb = task / npanels, p = task % npanels;
      const int j0 = p * NR, nj = N - j0 < NR ? N - j0 : NR;
      const float* bp = bpack.p + static_cast<long>(p) * NR * kc;
      vfloat acc[MR][2];
      for (int i0 = mb * MC; i0 < M && i0 < (mb + 1) * MC; i0 += MR) {
        if (i0 < full_rows) {
          const float* a = A + i0 * rs + static_cast<long>(k0) * ks;
          if (trans_a) micro_kernel<1>(kc, a, rs, ks, bp, acc);
          else micro_kernel<0>(kc, a, rs, ks, bp, acc);
        } else {
          micro_kernel<1>(kc, edge.p, 1, MR, bp, acc);  // packed: A(i, k) = edge[k*MR + i]
        }
        const int ni = M - i0 < MR ? M - i0 : MR;
        store_tile(acc, C + static_cast<long>(i0) * ldc + j0, ldc, ni, nj, overwrite);
      }
    });
  }
}

bool blas_available() {
#ifdef REVENANT_HAVE_BLAS
  return true;
#else
  return false;
#endif
}

bool sgemm_blas(bool trans_a, bool trans_b, int M, int N, int K, const float* A, int lda,
                const float* B, int ldb, bool accumulate, float* C, int ldc) {
#ifdef REVENANT_HAVE_BLAS
  static const bool threads_set = [] {
    openblas_set_num_threads(pool_threads());
    return true;
  }();
  (void)threads_set;
  cblas_sgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans, trans_b ? CblasTrans : CblasNoTrans,
              M, N, K, 1.0f, A, lda, B, ldb, accumulate ? 1.0f : 0.0f, C, ldc);
  return true;
#else
  (void)trans_a; (void)trans_b; (void)M; (void)N; (void)K; (void)A; (void)lda; (void)B; (void)ldb;
  (void)accumulate; (void)C; (void)ldc;
  return false;
#endif
}

void set_gemm_impl(GemmImpl impl) { g_impl.store(static_cast<int>(impl)); }
GemmImpl gemm_impl() { return static_cast<GemmImpl>(g_impl.load()); }

const char* own_kernel_description() {
#if defined(__AVX512F__)
  return "6x32 AVX-512 register tile";
#elif defined(__AVX__)
  return "6x16 AVX2 register tile";
#else
  return "6x8 128-bit vector register tile";
#endif
}

template <>
void gemm<float>(bool trans_a, bool trans_b, int M, int N, int K, const float* A, int lda,
                 const float* B, int ldb, bool accumulate, float* C, int ldc) {
  const GemmImpl impl = gemm_impl();
  if (impl != GemmImpl::Own && sgemm_blas(trans_a, trans_b, M, N, K, A, lda, B, ldb, accumulate, C, ldc))
    return;
  sgemm_own(trans_a, trans_b, M, N, K, A, lda, B, ldb, accumulate, C, ldc);
}

template <>
void gemm<double>(bool trans_a, bool trans_b, int M, int N, int K, const double* A, int lda,
                  const double* B, int ldb, bool accumulate, double* C, int ldc) {
  for (int i = 0; i < M; ++i)
    for (int j = 0; j < N; ++j) {
      double s = 0;
      for (int k = 0; k < K; ++k) {
        const double a = trans_a ? A[static_cast<long>(k) * lda + i] : A[static_cast<long>(i) * lda + k];
        const double b = trans_b ? B[static_cast<long>(j) * ldb + k] : B[static_cast<long>(k) * ldb + j];
        s += a * b;
      }
      double& c = C[static_cast<long>(i) * ldc + j];
      c = accumulate ? c + s : s;
    }
}

}  // namespace revenant::cpu
