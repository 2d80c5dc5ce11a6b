// Blocked single-precision matrix product (the no-BLAS path), plus the BLAS dispatch.
//
// Layout: the output is cut into tiles (MC rows x NR columns); for each K chunk of KC, a tile's
// B panel is packed (zero-padded at the edge), A is read in place (only a ragged last block of
// rows is packed), and an MR x NR register-tile micro-kernel walks k in order. Every output element is therefore computed by the same instruction sequence wherever it
// sits (edge tiles included) and whichever thread runs it: results do not depend on threads.
// The micro-kernel uses GCC/Clang vector extensions, which become AVX-512, AVX2 or NEON code.
#include "cpu/gemm.h"

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <cstring>
#include <new>
#include <utility>
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
constexpr int KC = 128;      // K chunk: a B panel stays in L1
constexpr int MC = 8 * MR;   // rows per task

// REVENANT_GEMM=own|blas overrides the choice (Auto: BLAS when linked).
GemmImpl impl_from_env() {
  const char* e = std::getenv("REVENANT_GEMM");
  if (e && std::strcmp(e, "own") == 0) return GemmImpl::Own;
  if (e && std::strcmp(e, "blas") == 0) return GemmImpl::Blas;
  return GemmImpl::Auto;
}
std::atomic<int> g_impl{static_cast<int>(impl_from_env())};

// Packed-panel storage, 64-byte aligned for the micro-kernel's vector loads; grows, never shrinks.
struct PackBuffer {
  float* p = nullptr;
  std::size_t cap = 0;
  ~PackBuffer() { std::free(p); }
  float* ensure(std::size_t n) {
    if (n > cap) {
      std::free(p);
      p = static_cast<float*>(std::aligned_alloc(64, ((n * sizeof(float) + 63) / 64) * 64));
      if (!p) throw std::bad_alloc();
      cap = n;
    }
    return p;
  }
};

inline float at(const float* X, int ld, bool trans, int r, int c) {
  return trans ? X[static_cast<long>(c) * ld + r] : X[static_cast<long>(r) * ld + c];
}

// A rows [i0, i0+MR) x k [k0, k0+kc) -> dst[k*MR + i], zero rows past M.
void pack_a(float* dst, const float* A, int lda, bool trans, int M, int i0, int k0, int kc) {
  for (int k = 0; k < kc; ++k)
    for (int i = 0; i < MR; ++i)
      dst[k * MR + i] = (i0 + i < M) ? at(A, lda, trans, i0 + i, k0 + k) : 0.0f;
}

// B k [k0, k0+kc) x columns [j0, j0+nr) -> dst[k*nr + j], zero columns past N.
void pack_b(float* dst, const float* B, int ldb, bool trans, int N, int j0, int k0, int kc, int nr) {
  if (!trans && j0 + nr <= N) {
    for (int k = 0; k < kc; ++k)
      std::memcpy(dst + k * nr, B + static_cast<long>(k0 + k) * ldb + j0, nr * sizeof(float));
    return;
  }
  if (trans && j0 + nr <= N) {  // read each stored row of B^T contiguously
    for (int j = 0; j < nr; ++j) {
      const float* src = B + static_cast<long>(j0 + j) * ldb + k0;
      for (int k = 0; k < kc; ++k) dst[k * nr + j] = src[k];
    }
    return;
  }
  for (int k = 0; k < kc; ++k)
    for (int j = 0; j < nr; ++j)
      dst[k * nr + j] = (j0 + j < N) ? at(B, ldb, trans, k0 + k, j0 + j) : 0.0f;
}

// x in every lane, as one broadcast load. `vfloat{} + x` read as a scalar add of 0 (kept: it
// turns -0 into +0) and a broadcast from a register, which shares the FMA units' ports.
template <std::size_t... I>
inline vfloat splat_lanes(float x, std::index_sequence<I...>) {
  return vfloat{((void)I, x)...};
}
inline vfloat splat(float x) { return splat_lanes(x, std::make_index_sequence<VW>{}); }

// acc[MR][NV] = sum over k of A(i, k) * B(k, j), NV vectors (NV*VW columns) wide. A is read in
// place: A(i, k) = a[i*rs + k*ks] (rows of A, of A^T, or of a packed edge block all fit); B is a
// packed panel. NV = 1 serves matrices narrower than one vector pair (the LM head).
template <int NV, bool RS_IS_ONE>
inline void micro_kernel(int kc, const float* __restrict a, long rs, long ks, const float* __restrict b,
                         vfloat (&c)[MR][NV]) {
  for (int i = 0; i < MR; ++i)
    for (int v = 0; v < NV; ++v) c[i][v] = vfloat{};
  for (int k = 0; k < kc; ++k) {
    vfloat bv[NV];
    for (int v = 0; v < NV; ++v) bv[v] = *reinterpret_cast<const vfloat*>(b + (k * NV + v) * VW);
    const float* ak = a + k * ks;
    for (int i = 0; i < MR; ++i) {
      const vfloat ai = splat(ak[RS_IS_ONE ? i : i * rs]);
      for (int v = 0; v < NV; ++v) c[i][v] += ai * bv[v];
    }
  }
}

// C tile (ni x nj valid) = (overwrite ? 0 : C) + acc: one float add per element on every path,
// so edge tiles round exactly like full ones.
template <int NV>
inline void store_tile(const vfloat (&c)[MR][NV], float* C, int ldc, int ni, int nj, bool overwrite) {
  constexpr int NR = NV * VW;
  if (ni == MR && nj == NR) {
    for (int i = 0; i < MR; ++i) {
      float* row = C + static_cast<long>(i) * ldc;
      for (int v = 0; v < NV; ++v) {
        vfloat r = vfloat{};
        if (!overwrite) std::memcpy(&r, row + v * VW, sizeof(vfloat));
        r += c[i][v];
        std::memcpy(row + v * VW, &r, sizeof(vfloat));
      }
    }
    return;
  }
  alignas(64) float tile[MR * NR];
  for (int i = 0; i < MR; ++i)
    for (int v = 0; v < NV; ++v) std::memcpy(tile + i * NR + v * VW, &c[i][v], sizeof(vfloat));
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

// Contiguous ranges of [0, n) on the pool, a few per thread, when the product is worth waking it.
template <typename F>
void run_ranges(int n, double flops, F&& fn) {
  const int threads = pool_threads();
  if (n <= 1 || threads == 1 || flops < 4e6) {
    fn(0, n);
    return;
  }
  const int parts = std::min(n, 4 * threads);
  parallel_for(parts, [&](int p) { fn(static_cast<int>(static_cast<long>(n) * p / parts), static_cast<int>(static_cast<long>(n) * (p + 1) / parts)); });
}

// Two parallel loops: pack all of B (every K chunk of every column panel) once, then compute
// the output tiles (row block x column panel), each task walking the K chunks in order. Two
// fork/joins per product, whatever K is: on small, busy machines waking threads per chunk would
// dominate.
template <int NV>
void sgemm_tiles(bool trans_a, bool trans_b, int M, int N, int K, const float* A, int lda, const float* B,
                 int ldb, bool accumulate, float* C, int ldc) {
  constexpr int NR = NV * VW;
  const int npanels = (N + NR - 1) / NR;
  const int nchunks = (K + KC - 1) / KC;
  const int mblocks = (M + MC - 1) / MC;
  const double flops = 2.0 * M * N * K;
  // Panel p, chunk q starts at (p * K + q * KC) * NR: chunks of one panel are contiguous.
  thread_local PackBuffer bpack;  // per calling thread: models may compute concurrently
  float* packed = bpack.ensure(static_cast<std::size_t>(npanels) * K * NR);
  run_tasks(npanels * nchunks, flops, [&](int t) {
    const int p = t / nchunks, k0 = (t % nchunks) * KC, kc = K - k0 < KC ? K - k0 : KC;
    pack_b(packed + (static_cast<long>(p) * K + k0) * NR, B, ldb, trans_b, N, p * NR, k0, kc, NR);
  });
  const int full_rows = M - M % MR;  // rows past this are packed, zero-padded, per chunk
  const long rs = trans_a ? 1 : lda, ks = trans_a ? lda : 1;
  run_tasks(mblocks * npanels, flops, [&](int task) {
    const int mb = task / npanels, p = task % npanels;
    const int j0 = p * NR, nj = N - j0 < NR ? N - j0 : NR;
    alignas(64) float edge[KC * MR];
    vfloat acc[MR][NV];
    for (int k0 = 0; k0 < K; k0 += KC) {
      const int kc = K - k0 < KC ? K - k0 : KC;
      const bool overwrite = !accumulate && k0 == 0;
      const float* bp = packed + (static_cast<long>(p) * K + k0) * NR;
      for (int i0 = mb * MC; i0 < M && i0 < (mb + 1) * MC; i0 += MR) {
        if (i0 < full_rows) {
          const float* a = A + i0 * rs + static_cast<long>(k0) * ks;
          if (trans_a) micro_kernel<NV, true>(kc, a, rs, ks, bp, acc);
          else micro_kernel<NV, false>(kc, a, rs, ks, bp, acc);
        } else {
          pack_a(edge, A, lda, trans_a, M, i0, k0, kc);
          micro_kernel<NV, true>(kc, edge, 1, MR, bp, acc);  // packed: A(i, k) = edge[k*MR + i]
        }
        const int ni = M - i0 < MR ? M - i0 : MR;
        store_tile<NV>(acc, C + static_cast<long>(i0) * ldc + j0, ldc, ni, nj, overwrite);
      }
    }
  });
}

// ---- few rows (decoding): out = bias + A @ B^T with B in its stored [N, K] layout ----
//
// Eight lanes (256 bits): a register tile holds R rows of A against 4 rows of B as 4R vectors of
// partial sums, reduced with shuffles eight sums at a time; 256-bit FMAs run at full rate on every
// AVX2 and AVX-512 core. Every element's sum runs over the same lanes in the same order in every
// tile shape, so it does not depend on M, on where its row sits or on the thread count.
typedef float v8 __attribute__((vector_size(8 * sizeof(float))));

// s[j] = sum of a[j]'s lanes, as ((l0 + l1) + (l2 + l3)) + ((l4 + l5) + (l6 + l7)) for every j.
inline v8 lane_sums(const v8 (&a)[8]) {
  v8 b[4], c[2];
  for (int i = 0; i < 4; ++i)
    b[i] = __builtin_shufflevector(a[2 * i], a[2 * i + 1], 0, 8, 2, 10, 4, 12, 6, 14) +
           __builtin_shufflevector(a[2 * i], a[2 * i + 1], 1, 9, 3, 11, 5, 13, 7, 15);
  for (int i = 0; i < 2; ++i)
    c[i] = __builtin_shufflevector(b[2 * i], b[2 * i + 1], 0, 1, 8, 9, 4, 5, 12, 13) +
           __builtin_shufflevector(b[2 * i], b[2 * i + 1], 2, 3, 10, 11, 6, 7, 14, 15);
  return __builtin_shufflevector(c[0], c[1], 0, 1, 2, 3, 8, 9, 10, 11) +
         __builtin_shufflevector(c[0], c[1], 4, 5, 6, 7, 12, 13, 14, 15);
}

// The same tree for one vector, in scalar code (edge columns).
inline float lane_sum(v8 a) { return ((a[0] + a[1]) + (a[2] + a[3])) + ((a[4] + a[5]) + (a[6] + a[7])); }

// After the lane sum: the k past the last whole vector, then the bias. One function for both
// tile shapes, so an element rounds the same wherever it sits.
inline float finish(float s, int k0, int K, const float* a, const float* b, const float* bias) {
  for (int k = k0; k < K; ++k) s += a[k] * b[k];
  return (bias ? *bias : 0.0f) + s;
}

// Loads b into a register once: left alone, the compiler folds the load into every FMA that
// reads b, which doubles the loads per FMA and makes the loop load-bound.
inline void keep_in_register(v8& b) {
#if defined(__AVX512F__)
  asm("" : "+v"(b));
#elif defined(__AVX__)
  asm("" : "+x"(b));
#else
  (void)b;
#endif
}

// Rows of A per register tile: R rows x 4 outputs take 4R accumulators, R registers of A and one
// of B, which is 31 of AVX-512's 32 vector registers at R = 6 and all 16 of AVX2's at R = 3.
#if defined(__AVX512F__)
constexpr int kTileRows = 6;
#else
constexpr int kTileRows = 3;
#endif

// Blocks of 4 rows of B a tile fetches ahead of the block it computes.
constexpr int kAhead = 2;

// R rows of A against 4 rows of B (columns o..o+3 of C). Meanwhile it fetches rows p0..p1 of
// `next` (4 rows of B at the same stride, kAhead blocks on) into L2: streaming B from memory is
// the cost of a decoding step, and the hardware prefetcher alone does not keep four row streams
// ahead. Spreading the fetch over every tile of a block keeps memory busy throughout rather than
// in one burst, and fetching into L2 (not L1) leaves L1 to the rows of A the tiles reuse.
template <int R>
inline void skinny_tile4(int K, const float* A, long lda, const float* B, long ldb, const float* bias, float* C, long ldc,
                         const float* next, int p0, int p1) {
  v8 acc[R][4];
  for (int r = 0; r < R; ++r)
    for (int o = 0; o < 4; ++o) acc[r][o] = v8{};
  int k = 0;
  for (; k + 8 <= K; k += 8) {
    if (next && k % 16 == 0)  // one 64-byte line per row every other step
      for (int o = p0; o < p1; ++o) __builtin_prefetch(next + o * ldb + k, 0, 2);
    v8 a[R];
    for (int r = 0; r < R; ++r) {
      std::memcpy(&a[r], A + r * lda + k, sizeof(v8));
      keep_in_register(a[r]);
    }
    for (int o = 0; o < 4; ++o) {
      v8 b;
      std::memcpy(&b, B + o * ldb + k, sizeof(v8));
      keep_in_register(b);
      for (int r = 0; r < R; ++r) acc[r][o] += a[r] * b;
    }
  }
  // Two rows' four sums per reduction (an odd last row is reduced beside itself).
  for (int r = 0; r < R; r += 2) {
    const int r2 = r + 1 < R ? r + 1 : r;
    const v8 group[8] = {acc[r][0], acc[r][1], acc[r][2], acc[r][3], acc[r2][0], acc[r2][1], acc[r2][2], acc[r2][3]};
    const v8 s = lane_sums(group);
    if (k == K) {  // no tail: finish's bias + sum, four outputs per vector add
      typedef float v4 __attribute__((vector_size(4 * sizeof(float))));
      v4 b = v4{};
      if (bias) std::memcpy(&b, bias, sizeof(v4));
      for (int i = 0; i < (r2 > r ? 2 : 1); ++i) {
        const v4 out = b + (i == 0 ? __builtin_shufflevector(s, s, 0, 1, 2, 3) : __builtin_shufflevector(s, s, 4, 5, 6, 7));
        std::memcpy(C + (r + i) * ldc, &out, sizeof(v4));
      }
      continue;
    }
    for (int i = 0; i < (r2 > r ? 2 : 1); ++i)
      for (int o = 0; o < 4; ++o) {
        const int row = r + i;
        C[row * ldc + o] = finish(s[4 * i + o], k, K, A + row * lda, B + o * ldb, bias ? bias + o : nullptr);
      }
  }
}

// All M rows against one row of B (the last N % 4 columns).
inline void skinny_column(int M, int K, const float* A, long lda, const float* B, const float* bias, float* C, long ldc) {
  for (int r = 0; r < M; ++r) {
    v8 acc = v8{};
    int k = 0;
    for (; k + 8 <= K; k += 8) {
      v8 a, b;
      std::memcpy(&a, A + r * lda + k, sizeof(v8));
      std::memcpy(&b, B + k, sizeof(v8));
      acc += a * b;
    }
    C[r * ldc] = finish(lane_sum(acc), k, K, A + r * lda, B, bias);
  }
}

template <int R>
inline void tile_of(int rows, int K, const float* A, long lda, const float* B, long ldb, const float* bias, float* C,
                    long ldc, const float* next, int p0, int p1) {
  if constexpr (R > 1) {
    if (rows < R) return tile_of<R - 1>(rows, K, A, lda, B, ldb, bias, C, ldc, next, p0, p1);
  }
  skinny_tile4<R>(K, A, lda, B, ldb, bias, C, ldc, next, p0, p1);
}

// All M rows against 4 rows of B, which stay in cache while the rows of A go by in tiles; each
// tile also fetches its share of `next`, the 4 rows of B the caller takes up after these (null:
// none).
inline void skinny_columns4(int M, int K, const float* A, long lda, const float* B, long ldb, const float* bias, float* C,
                            long ldc, const float* next) {
  const int tiles = (M + kTileRows - 1) / kTileRows;
  for (int t = 0, r = 0; r < M; ++t, r += kTileRows)
    tile_of<kTileRows>(std::min(kTileRows, M - r), K, A + r * lda, lda, B, ldb, bias, C + r * ldc, ldc, next,
                       4 * t / tiles, 4 * (t + 1) / tiles);
}

}  // namespace

void sgemm_skinny_nt(int M, int N, int K, const float* A, int lda, const float* B, int ldb, const float* bias, float* C,
                     int ldc) {
  const int blocks = (N + 3) / 4;
  run_ranges(blocks, 2.0 * M * N * K, [&](int b0, int b1) {
    for (int blk = b0; blk < b1; ++blk) {
      const int o = blk * 4;
      if (o + 4 <= N) {
        const float* next = blk + kAhead < b1 && o + 4 * kAhead + 4 <= N ? B + static_cast<long>(o + 4 * kAhead) * ldb : nullptr;
        skinny_columns4(M, K, A, lda, B + static_cast<long>(o) * ldb, ldb, bias ? bias + o : nullptr, C + o, ldc, next);
        continue;
      }
      for (int j = o; j < N; ++j)
        skinny_column(M, K, A, lda, B + static_cast<long>(j) * ldb, bias ? bias + j : nullptr, C + j, ldc);
    }
  });
}

void sgemm_own(bool trans_a, bool trans_b, int M, int N, int K, const float* A, int lda,
               const float* B, int ldb, bool accumulate, float* C, int ldc) {
  if (M <= 0 || N <= 0) return;
  if (K <= 0) {
    if (!accumulate)
      for (int i = 0; i < M; ++i) std::memset(C + static_cast<long>(i) * ldc, 0, N * sizeof(float));
    return;
  }
  // The tile width is a function of N alone, so a given element is always computed the same way.
  if (N <= VW) sgemm_tiles<1>(trans_a, trans_b, M, N, K, A, lda, B, ldb, accumulate, C, ldc);
  else sgemm_tiles<2>(trans_a, trans_b, M, N, K, A, lda, B, ldb, accumulate, C, ldc);
}

bool blas_available() {
#ifdef REVENANT_HAVE_BLAS
  return true;
#else
  return false;
#endif
}

void blas_single_threaded() {
#ifdef REVENANT_HAVE_BLAS
  static const bool once = [] {
    openblas_set_num_threads(1);
    return true;
  }();
  (void)once;
#endif
}

bool sgemm_blas(bool trans_a, bool trans_b, int M, int N, int K, const float* A, int lda,
                const float* B, int ldb, bool accumulate, float* C, int ldc) {
#ifdef REVENANT_HAVE_BLAS
  // OpenBLAS runs single-threaded inside our pool: its own threads would oversubscribe the cores
  // next to ours, and how it splits work depends on its thread count, which changed results
  // between 1 and 2 threads. Fixed blocks of rows (never a function of the thread count) make
  // every output element come from the same call, whichever thread runs it.
  blas_single_threaded();
  // Blocks of a size fixed by M alone: about 4 of them (so 2 or 4 threads balance), of 64 to 512
  // rows. Each block's call packs the whole of op(B) again: blocks of 64 rows spent a fifth of a
  // training step's products re-packing the weights, and 4 blocks rather than 8 made a 20M-parameter
  // policy step 4% faster on 2 threads.
  const int kRows = std::clamp((M / 4 + 63) / 64 * 64, 64, 512);
  const int blocks = (M + kRows - 1) / kRows;
  run_tasks(blocks, 2.0 * M * N * K, [&](int b) {
    const int i0 = b * kRows, rows = std::min(kRows, M - i0);
    const float* a = trans_a ? A + i0 : A + static_cast<long>(i0) * lda;
    cblas_sgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans, trans_b ? CblasTrans : CblasNoTrans,
                rows, N, K, 1.0f, a, lda, B, ldb, accumulate ? 1.0f : 0.0f, C + static_cast<long>(i0) * ldc, ldc);
  });
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
  return "6x32 (6x16 when N <= 16) AVX-512 register tile";
#elif defined(__AVX__)
  return "6x16 (6x8 when N <= 8) AVX2 register tile";
#else
  return "6x8 (6x4 when N <= 4) 128-bit vector register tile";
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
