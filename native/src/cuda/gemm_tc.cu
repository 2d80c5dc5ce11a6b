// Tensor-core GEMM (gemm_tc.cuh): a 128x128 output tile per block of 8 warps, K in steps of 32.
//
// Tiling: the 8 warps form a 2x4 grid, each warp owning a 64x32 sub-tile, i.e. 4x2 accumulator
// fragments of 16x16; per 16-wide k slice a warp loads 4 A and 2 B fragments for 8 MMAs, so shared
// memory traffic per MMA stays low. The operand tiles are fp32 in global memory and bf16 in shared
// memory, so cp.async (a plain copy) cannot stage them; instead the next k-step is loaded into
// registers while the tensor cores work on the current one, then rounded and stored into the
// other of two shared buffers (register double buffering, one barrier per k-step).
//
// Edges: loads outside [M, K] / [K, N] read as 0, so a ragged tile is padded with zeros in shared
// memory and adds nothing; stores outside [M, N] are skipped. Any M, N, K works.
//
// Determinism: each output is accumulated by one warp over k in a fixed order, no split-K, no
// atomics.
#include <cuda_bf16.h>
#include <mma.h>

#include <atomic>
#include <string>

#include "core/launch.h"
#include "cuda/gemm_tc.cuh"
#include "cuda/ops.cuh"

namespace revenant::cuda {

namespace {

constexpr int BM = 128, BN = 128;        // block tile
constexpr int WARPS_M = 2, WARPS_N = 4;  // warp grid inside a block
constexpr int THREADS = 32 * WARPS_M * WARPS_N;

// Element (r, c) of a logical matrix is p[r * s_row + c * s_col]: one description for a matrix
// and its transpose.
struct Operand {
  const float* p;
  long s_row, s_col;
};

// What is done to each output: C = (accumulate ? C : 0) + gelu?(x + bias?).
struct Epilogue {
  const float* bias;
  bool gelu, accumulate;
};

// The kernel needs bf16 WMMA (sm_80+). Older architectures compile an empty kernel that the host
// never launches (tensor_cores_supported() is false there).
#if !defined(__CUDA_ARCH__) || __CUDA_ARCH__ >= 800

constexpr int BK = 32;                             // k-step
constexpr float kGeluScale = 0.7978845608028654f;  // sqrt(2 / pi), as gelu.cu

// One R x S operand tile in registers, THREADS threads holding R * S / THREADS values each.
// Consecutive threads walk the operand's contiguous dimension, so each warp's loads coalesce
// whether or not the operand is transposed.
template <int R, int S>
struct TileRegs {
  static constexpr int kPerThread = R * S / THREADS;
  float v[kPerThread];

  __device__ static void coords(const Operand& o, int e, int& r, int& c) {
    if (o.s_col == 1) {
      r = e / S;
      c = e % S;
    } else {
      r = e % R;
      c = e / R;
    }
  }
  __device__ void load(const Operand& o, int r0, int c0, int rows, int cols) {
#pragma unroll
    for (int i = 0; i < kPerThread; ++i) {
      int r, c;
      coords(o, threadIdx.x + i * THREADS, r, c);
      const int gr = r0 + r, gc = c0 + c;
      v[i] = (gr < rows && gc < cols) ? o.p[gr * o.s_row + gc * o.s_col] : 0.0f;
    }
  }
  __device__ void store(__nv_bfloat16* tile, int ld, const Operand& o) const {
#pragma unroll
    for (int i = 0; i < kPerThread; ++i) {
      int r, c;
      coords(o, threadIdx.x + i * THREADS, r, c);
      tile[r * ld + c] = __float2bfloat16_rn(v[i]);
    }
  }
};

__device__ void apply(const Epilogue& ep, float* C, int ldc, int row, int col, float x) {
  if (ep.bias) x += ep.bias[col];
  if (ep.gelu) x = 0.5f * x * (1.0f + tanhf(kGeluScale * (x + 0.044715f * x * x * x)));
  float& c = C[static_cast<long>(row) * ldc + col];
  c = ep.accumulate ? c + x : x;
}

__global__ void __launch_bounds__(THREADS)
    gemm_tc_kernel(int M, int N, int K, Operand A, Operand B, float* C, int ldc, Epilogue ep) {
  using namespace nvcuda;
  constexpr int WM = BM / WARPS_M, WN = BN / WARPS_N;  // 64 x 32 per warp
  constexpr int FM = WM / 16, FN = WN / 16;            // 4 x 2 fragments per warp
  // Row pitches of the bf16 tiles: 8 extra elements (16 bytes) shift successive rows across
  // banks, and keep the pitch a multiple of 8 elements and 16-row steps 32-byte aligned, as WMMA
  // requires.
  constexpr int LDA = BK + 8, LDB = BN + 8;
  __shared__ __align__(128) __nv_bfloat16 as[2][BM * LDA];
  __shared__ __align__(128) __nv_bfloat16 bs[2][BK * LDB];
  __shared__ __align__(128) float stage[WARPS_M * WARPS_N][16 * 16];

  const int m0 = blockIdx.y * BM, n0 = blockIdx.x * BN;
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int wm = warp / WARPS_N, wn = warp % WARPS_N;

  wmma::fragment<wmma::accumulator, 16, 16, 16, float> acc[FM][FN];
#pragma unroll
  for (int i = 0; i < FM; ++i)
#pragma unroll
    for (int j = 0; j < FN; ++j) wmma::fill_fragment(acc[i][j], 0.0f);

  TileRegs<BM, BK> ra;
  TileRegs<BK, BN> rb;
  ra.load(A, m0, 0, M, K);
  rb.load(B, 0, n0, K, N);
  ra.store(as[0], LDA, A);
  rb.store(bs[0], LDB, B);
  __syncthreads();

  const int steps = (K + BK - 1) / BK;
  for (int s = 0; s < steps; ++s) {
    const int cur = s & 1;
    const bool more = s + 1 < steps;
    if (more) {  // issued now, consumed after the MMAs: the global latency hides behind them
      ra.load(A, m0, (s + 1) * BK, M, K);
      rb.load(B, (s + 1) * BK, n0, K, N);
    }
#pragma unroll
    for (int kk = 0; kk < BK; kk += 16) {
      wmma::fragment<wmma::matrix_a, 16, 16, 16, __nv_bfloat16, wmma::row_major> fa[FM];
      wmma::fragment<wmma::matrix_b, 16, 16, 16, __nv_bfloat16, wmma::row_major> fb[FN];
#pragma unroll
      for (int i = 0; i < FM; ++i) wmma::load_matrix_sync(fa[i], as[cur] + (wm * WM + i * 16) * LDA + kk, LDA);
#pragma unroll
      for (int j = 0; j < FN; ++j) wmma::load_matrix_sync(fb[j], bs[cur] + kk * LDB + wn * WN + j * 16, LDB);
#pragma unroll
      for (int i = 0; i < FM; ++i)
#pragma unroll
        for (int j = 0; j < FN; ++j) wmma::mma_sync(acc[i][j], fa[i], fb[j], acc[i][j]);
    }
    // The other buffer was last read in step s - 1, which the barrier ending it has closed.
    if (more) {
      ra.store(as[cur ^ 1], LDA, A);
      rb.store(bs[cur ^ 1], LDB, B);
    }
    __syncthreads();
  }

  // Fragments have no defined element layout, so each goes through a per-warp 16x16 staging
  // tile, from which the lanes write the elements inside [M, N].
  float* st = stage[warp];
#pragma unroll
  for (int i = 0; i < FM; ++i)
#pragma unroll
    for (int j = 0; j < FN; ++j) {
      wmma::store_matrix_sync(st, acc[i][j], 16, wmma::mem_row_major);
      __syncwarp();
      const int r0 = m0 + wm * WM + i * 16, c0 = n0 + wn * WN + j * 16;
      for (int e = lane; e < 16 * 16; e += 32) {
        const int row = r0 + e / 16, col = c0 + e % 16;
        if (row < M && col < N) apply(ep, C, ldc, row, col, st[e]);
      }
      __syncwarp();
    }
}

#else

__global__ void __launch_bounds__(THREADS) gemm_tc_kernel(int, int, int, Operand, Operand, float*, int, Epilogue) {}

#endif

// One thread per output channel sums the rows in order (fp32, as matmul.cu).
__global__ void bias_backward_tc_kernel(float* dbias, const float* dout, int N, int OC) {
  const int o = blockIdx.x * blockDim.x + threadIdx.x;
  if (o >= OC) return;
  float s = 0;
  for (int n = 0; n < N; ++n) s += dout[static_cast<long>(n) * OC + o];
  dbias[o] += s;
}

// Compute capability major per device, 0 until asked (no device reports 0); devices past the
// table are asked every time.
constexpr int kMaxDevices = 64;
std::atomic<int> g_major[kMaxDevices];

int compute_major(int device) {
  int major = device < kMaxDevices ? g_major[device].load() : 0;
  if (major == 0) {
    RV_CUDA_CHECK(cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, device), "tensor_cores_supported");
    if (device < kMaxDevices) g_major[device].store(major);
  }
  return major;
}

}  // namespace

bool tensor_cores_supported() {
  int device = 0;
  RV_CUDA_CHECK(cudaGetDevice(&device), "tensor_cores_supported");
  return compute_major(device) >= 8;
}

void gemm_tc(float* C, const float* A, bool trans_a, const float* B, bool trans_b, int M, int N, int K,
             bool accumulate, const float* bias, bool gelu, const char* op) {
  RV_CHECK(tensor_cores_supported(), op, "bf16 tensor-core kernels need compute capability 8.0 or newer");
  const Operand a = trans_a ? Operand{A, 1, M} : Operand{A, K, 1};
  const Operand b = trans_b ? Operand{B, 1, K} : Operand{B, N, 1};
  const Epilogue ep{bias, gelu, accumulate};
  // Row tiles go on grid.y, which stops at 65535 blocks: a taller product runs as row slices.
  for (const RowSlice& s : grid_row_slices(M, BM)) {
    const Operand as{a.p + s.begin * a.s_row, a.s_row, a.s_col};
    const dim3 grid(blocks_for(N, BN), blocks_for(s.rows, BM));
    RV_LAUNCH(gemm_tc_kernel, grid, THREADS)(s.rows, N, K, as, b, C + s.begin * N, N, ep);
    RV_CUDA_LAUNCHED(op);
  }
}

void matmul_forward_tc(float* out, const float* inp, const float* w, const float* bias, int N, int C, int OC) {
  gemm_tc(out, inp, false, w, true, N, OC, C, false, bias, false, "matmul_forward");  // inp @ w^T + bias
}

void matmul_backward_tc(float* dinp, float* dw, float* dbias, const float* dout, const float* inp, const float* w,
                        int N, int C, int OC) {
  if (dinp) gemm_tc(dinp, dout, false, w, false, N, C, OC, true, nullptr, false, "matmul_backward");  // dout @ w
  if (dw) gemm_tc(dw, dout, true, inp, false, OC, C, N, true, nullptr, false, "matmul_backward");      // dout^T @ inp
  if (dbias) {
    RV_LAUNCH(bias_backward_tc_kernel, blocks_for(OC, 64), 64)(dbias, dout, N, OC);
    RV_CUDA_LAUNCHED("matmul_backward");
  }
}

}  // namespace revenant::cuda
