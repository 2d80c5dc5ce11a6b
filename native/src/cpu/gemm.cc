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
constexpr int KC = 256;      // K chunk: an A and a B panel stay in L1/L2
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
  for (int k = 0; k < kc; ++k)
    for (int j = 0; j < NR; ++j)
      dst[k * NR + j] = (j0 + j < N) ? at(B, ldb, trans, k0 + k, j0 + j) : 0.0f;
}

void micro_kernel(int kc, const float* __restrict a, const float* __restrict b,
                  float* __restrict tile) {
  vfloat c[MR][2] = {};
  for (int k = 0; k < kc; ++k) {
    const vfloat b0 = *reinterpret_cast<const vfloat*>(b + k * NR);
    const vfloat b1 = *reinterpret_cast<const vfloat*>(b + k * NR + VW);
    for (int i = 0; i < MR; ++i) {
      const vfloat ai = vfloat{} + a[k * MR + i];
      c[i][0] += ai * b0;
      c[i][1] += ai * b1;
    }
  }
  for (int i = 0; i < MR; ++i) {
    std::memcpy(tile + i * NR, &c[i][0], sizeof(vfloat));
    std::memcpy(tile + i * NR + VW, &c[i][1], sizeof(vfloat));
  }
}

template <typename F>
void run_tasks(int n, double flops, F&& fn) {
  if (n <= 1 || pool_threads() == 1 || flops < 2e5) {
    for (int t = 0; t < n; ++t) fn(t);
  } else {
    parallel_for(n, fn);
  }
}

}  // namespace

void sgemm_own(bool trans_a, bool trans_b, int M, int N, int K, const float* A, int lda,
               const float* B, int ldb, bool accumulate, float* C, int ldc) {
  if (M <= 0 || N <= 0) return;
  if (!accumulate)
    for (int i = 0; i < M; ++i) std::memset(C + static_cast<long>(i) * ldc, 0, N * sizeof(float));
  if (K <= 0) return;
  const int npanels = (N + NR - 1) / NR;
  const int mblocks = (M + MC - 1) / MC;
  const double flops = 2.0 * M * N * K;
  AlignedFloats bpack(static_cast<std::size_t>(npanels) * NR * KC);
  AlignedFloats apack(static_cast<std::size_t>(mblocks) * MC * KC);
  for (int k0 = 0; k0 < K; k0 += KC) {
    const int kc = K - k0 < KC ? K - k0 : KC;
    run_tasks(npanels, flops, [&](int p) {
      pack_b(bpack.p + static_cast<long>(p) * NR * kc, B, ldb, trans_b, N, p * NR, k0, kc);
    });
    run_tasks(mblocks, flops, [&](int mb) {
      for (int i0 = mb * MC; i0 < M && i0 < (mb + 1) * MC; i0 += MR)
        pack_a(apack.p + static_cast<long>(i0) * kc, A, lda, trans_a, M, i0, k0, kc);
    });
    // One task per (row block, column panel); row-block-major so a thread keeps its A in cache.
    run_tasks(mblocks * npanels, flops, [&](int task) {
      const int mb = task / npanels, p = task % npanels;
      alignas(64) float tile[MR * NR];
      const int j0 = p * NR, nj = N - j0 < NR ? N - j0 : NR;
      for (int i0 = mb * MC; i0 < M && i0 < (mb + 1) * MC; i0 += MR) {
        micro_kernel(kc, apack.p + static_cast<long>(i0) * kc, bpack.p + static_cast<long>(p) * NR * kc, tile);
        const int ni = M - i0 < MR ? M - i0 : MR;
        for (int i = 0; i < ni; ++i) {
          float* c = C + static_cast<long>(i0 + i) * ldc + j0;
          for (int j = 0; j < nj; ++j) c[j] += tile[i * NR + j];
        }
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
