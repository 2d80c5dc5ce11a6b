// General matrix product for the CPU backend, row-major:
//   C[M,N] = (accumulate ? C : 0) + op(A)[M,K] @ op(B)[K,N]
// where op(A) = A^T when trans_a (A stored [K,M]), likewise for B.
// float goes to OpenBLAS when the build linked it, else to our blocked kernel; double (gradient
// checks only) uses a plain triple loop.
#pragma once

namespace revenant::cpu {

enum class GemmImpl { Auto, Own, Blas };

template <typename T>
void gemm(bool trans_a, bool trans_b, int M, int N, int K, const T* A, int lda, const T* B, int ldb,
          bool accumulate, T* C, int ldc);

// Our blocked, multithreaded kernel, callable directly (benchmarks, tests).
void sgemm_own(bool trans_a, bool trans_b, int M, int N, int K, const float* A, int lda,
               const float* B, int ldb, bool accumulate, float* C, int ldc);
// C[M,N] = (bias ? bias : 0) + A[M,K] @ B[N,K]^T for few rows M (decoding steps): B is read in its
// stored layout, once for all M rows, with no packing; each element's sum does not depend on M, on
// where it sits or on the thread count. Worth it up to about kSkinnyMaxRows rows.
void sgemm_skinny_nt(int M, int N, int K, const float* A, int lda, const float* B, int ldb, const float* bias, float* C,
                     int ldc);
constexpr int kSkinnyMaxRows = 64;
// OpenBLAS; returns false (and does nothing) when the build has no BLAS.
bool sgemm_blas(bool trans_a, bool trans_b, int M, int N, int K, const float* A, int lda,
                const float* B, int ldb, bool accumulate, float* C, int ldc);
bool blas_available();
// OpenBLAS with one thread of its own (our pool runs the row blocks); idempotent, no-op without BLAS.
void blas_single_threaded();

// Which float implementation gemm<float> uses (Auto = BLAS when linked). For benchmarks/tests.
void set_gemm_impl(GemmImpl impl);
GemmImpl gemm_impl();
const char* own_kernel_description();

}  // namespace revenant::cpu
