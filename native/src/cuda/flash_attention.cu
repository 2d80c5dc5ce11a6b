// Flash attention (flash_attention.cuh), fp32 on the CUDA cores.
//
// Geometry: a block is 8 warps, each owning one row (a query in the forward and the dQ pass, a
// key in the dK/dV pass), so the 8 rows share every tile the block stages in shared memory. Tiles
// of the other side hold 32 rows, one per lane: lane j computes the score of row j of the tile
// for its warp's row, the warp reduces max and sum with butterfly shuffles, and the weighted sums
// over the tile run with each lane owning head / 32 channels (j broadcast by shuffle, in order).
//
// Memory: O(T) per (batch, head): the saved statistic is lse (and delta in the backward), never
// the T x T probabilities.
//
// Determinism: every sum has one owner and a fixed order. Butterfly reductions give all lanes the
// same bits (each pairwise add is commutative), dQ of a query is summed by its warp over key
// tiles in order, and dK/dV of a key by its warp over the group's query heads and query tiles in
// order; nothing is accumulated with atomics.
#include "cuda/flash_attention.cuh"
#include "cuda/ops.cuh"

namespace revenant::cuda {

namespace {

constexpr int WARPS = 8;                         // rows per block, one per warp
constexpr int KT = 32;                           // rows per staged tile, one per lane
constexpr int DPL = kFlashMaxHeadSize / 32;      // channels per lane
constexpr unsigned kFull = 0xffffffffu;

// Column offsets of one row of the packed qkv tensor (as attention.cu).
struct Heads {
  int C, NH, NKV, hs, kvC, stride;
  __host__ __device__ Heads(int C_, int NH_, int NKV_)
      : C(C_), NH(NH_), NKV(NKV_), hs(C_ / NH_), kvC(NKV_ * (C_ / NH_)), stride(C_ + 2 * NKV_ * (C_ / NH_)) {}
  __device__ int group(int h) const { return h / (NH / NKV); }
  __device__ int q(int h) const { return h * hs; }
  __device__ int k(int g) const { return C + g * hs; }
  __device__ int v(int g) const { return C + kvC + g * hs; }
};

// Which (batch, block of WARPS rows) a block handles: batches share grid.x with the row blocks,
// since grid.y and grid.z stop at 65535.
struct BlockRows {
  int b, r0;
  __device__ BlockRows(int T) {
    const int tiles = (T + WARPS - 1) / WARPS;
    b = blockIdx.x / tiles;
    r0 = (blockIdx.x % tiles) * WARPS;
  }
};

__device__ float warp_sum(float x) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) x += __shfl_xor_sync(kFull, x, o);
  return x;
}

__device__ float warp_max(float x) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) x = fmaxf(x, __shfl_xor_sync(kFull, x, o));
  return x;
}

__device__ float dot(const float* a, const float* b, int n) {
  float s = 0;
  for (int i = 0; i < n; ++i) s += a[i] * b[i];
  return s;
}

// Copies `rows` rows of hs values, starting at row r0 of src (rows `pitch` floats apart), into a
// shared tile of row pitch ld; rows at or past T read as 0. The whole block takes part.
__device__ void load_rows(float* tile, int ld, const float* src, long pitch, int r0, int rows, int T, int hs) {
  for (int e = threadIdx.x; e < rows * hs; e += blockDim.x) {
    const int r = e / hs, d = e % hs;
    tile[r * ld + d] = r0 + r < T ? src[(r0 + r) * pitch + d] : 0.0f;
  }
}

// Adds this lane's channels of a head row (channel lane + 32 i is x[i]) into dst.
__device__ void add_row(float* dst, const float (&x)[DPL], int hs) {
  const int lane = threadIdx.x % 32;
#pragma unroll
  for (int i = 0; i < DPL; ++i)
    if (lane + 32 * i < hs) dst[lane + 32 * i] += x[i];
}

// x += w * row for this lane's channels of a shared row.
__device__ void axpy_row(float (&x)[DPL], float w, const float* row, int hs) {
  const int lane = threadIdx.x % 32;
#pragma unroll
  for (int i = 0; i < DPL; ++i)
    if (lane + 32 * i < hs) x[i] += w * row[lane + 32 * i];
}

__global__ void __launch_bounds__(32 * WARPS)
    flash_forward_kernel(float* out, float* lse, const float* qkv, int T, int C, int NH, int NKV) {
  extern __shared__ float smem[];
  const Heads L(C, NH, NKV);
  const int hs = L.hs, warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const BlockRows br(T);
  const int h = blockIdx.y, g = L.group(h), t = br.r0 + warp, last = min(T - 1, br.r0 + WARPS - 1);
  float* ks = smem;                  // [KT][hs + 1]: lane j reads row j; the pad spreads banks
  float* vs = ks + KT * (hs + 1);    // [KT][hs]: read one row at a time across lanes
  float* qs = vs + KT * hs;          // [WARPS][hs]
  const float* base = qkv + static_cast<long>(br.b) * T * L.stride;
  const float scale = rsqrtf(static_cast<float>(hs));
  load_rows(qs, hs, base + L.q(h), L.stride, br.r0, WARPS, T, hs);
  float m = -INFINITY, l = 0, o[DPL] = {};
  for (int k0 = 0; k0 <= last; k0 += KT) {
    __syncthreads();  // the previous tile is consumed (first time: the q rows are stored)
    load_rows(ks, hs + 1, base + L.k(g), L.stride, k0, KT, T, hs);
    load_rows(vs, hs, base + L.v(g), L.stride, k0, KT, T, hs);
    __syncthreads();
    if (t >= T || k0 > t) continue;  // this warp's query sees none of these keys
    const bool seen = k0 + lane <= t;
    const float s = seen ? dot(qs + warp * hs, ks + lane * (hs + 1), hs) * scale : -INFINITY;
    const float m_new = fmaxf(m, warp_max(s));  // finite: key k0 <= t is in the tile
    const float p = seen ? expf(s - m_new) : 0.0f;
    const float corr = expf(m - m_new);  // rescales what earlier tiles summed; 0 on the first
    l = l * corr + warp_sum(p);
#pragma unroll
    for (int i = 0; i < DPL; ++i) o[i] *= corr;
    const int n = min(KT, t - k0 + 1);
    for (int j = 0; j < n; ++j) axpy_row(o, __shfl_sync(kFull, p, j), vs + j * hs, hs);
    m = m_new;
  }
  if (t >= T) return;
  float* dst = out + (static_cast<long>(br.b) * T + t) * C + h * hs;
#pragma unroll
  for (int i = 0; i < DPL; ++i)
    if (lane + 32 * i < hs) dst[lane + 32 * i] = o[i] / l;
  if (lane == 0) lse[(static_cast<long>(br.b) * NH + h) * T + t] = m + logf(l);
}

// dQ of each query, after delta = sum_j p_j (dout . v_j) (= dout . out) in a first pass over the
// keys; delta is saved for the dK/dV pass.
__global__ void __launch_bounds__(32 * WARPS) flash_dq_kernel(float* dqkv, float* delta, const float* dout,
                                                              const float* qkv, const float* lse, int T, int C,
                                                              int NH, int NKV) {
  extern __shared__ float smem[];
  const Heads L(C, NH, NKV);
  const int hs = L.hs, warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const BlockRows br(T);
  const int h = blockIdx.y, g = L.group(h), t = br.r0 + warp, last = min(T - 1, br.r0 + WARPS - 1);
  float* ks = smem;                 // [KT][hs + 1]
  float* vs = ks + KT * (hs + 1);   // [KT][hs + 1]: lane j reads row j here too
  float* qs = vs + KT * (hs + 1);   // [WARPS][hs]
  float* dos = qs + WARPS * hs;     // [WARPS][hs]: dout rows
  const long row0 = static_cast<long>(br.b) * T;
  const float* base = qkv + row0 * L.stride;
  const long stat = (static_cast<long>(br.b) * NH + h) * T + t;
  const float scale = rsqrtf(static_cast<float>(hs));
  load_rows(qs, hs, base + L.q(h), L.stride, br.r0, WARPS, T, hs);
  load_rows(dos, hs, dout + row0 * C + h * hs, C, br.r0, WARPS, T, hs);
  const float lse_t = t < T ? lse[stat] : 0.0f;
  const float *q = qs + warp * hs, *d = dos + warp * hs;

  float part = 0;  // this lane's share of delta
  for (int k0 = 0; k0 <= last; k0 += KT) {
    __syncthreads();
    load_rows(ks, hs + 1, base + L.k(g), L.stride, k0, KT, T, hs);
    load_rows(vs, hs + 1, base + L.v(g), L.stride, k0, KT, T, hs);
    __syncthreads();
    if (t < T && k0 + lane <= t)
      part += expf(dot(q, ks + lane * (hs + 1), hs) * scale - lse_t) * dot(d, vs + lane * (hs + 1), hs);
  }
  const float dlt = warp_sum(part);
  if (t < T && lane == 0) delta[stat] = dlt;

  float dq[DPL] = {};
  for (int k0 = 0; k0 <= last; k0 += KT) {
    __syncthreads();
    load_rows(ks, hs + 1, base + L.k(g), L.stride, k0, KT, T, hs);
    load_rows(vs, hs + 1, base + L.v(g), L.stride, k0, KT, T, hs);
    __syncthreads();
    if (t >= T || k0 > t) continue;
    float ds = 0;  // dscore_j = p_j (dout . v_j - delta) / sqrt(hs)
    if (k0 + lane <= t) {
      const float p = expf(dot(q, ks + lane * (hs + 1), hs) * scale - lse_t);
      ds = p * (dot(d, vs + lane * (hs + 1), hs) - dlt) * scale;
    }
    const int n = min(KT, t - k0 + 1);
    for (int j = 0; j < n; ++j) axpy_row(dq, __shfl_sync(kFull, ds, j), ks + j * (hs + 1), hs);
  }
  if (t < T) add_row(dqkv + (row0 + t) * L.stride + L.q(h), dq, hs);
}

// dK and dV of each key (a block: 8 keys of one kv head), summed over the query heads of its group
// and the queries at or after it, tile by tile in order.
__global__ void __launch_bounds__(32 * WARPS) flash_dkdv_kernel(float* dqkv, const float* dout, const float* qkv,
                                                                const float* lse, const float* delta, int T, int C,
                                                                int NH, int NKV) {
  extern __shared__ float smem[];
  const Heads L(C, NH, NKV);
  const int hs = L.hs, warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const BlockRows br(T);
  const int g = blockIdx.y, j = br.r0 + warp, per_group = NH / NKV;
  float* kr = smem;                 // [WARPS][hs]: this block's keys, read broadcast
  float* vr = kr + WARPS * hs;      // [WARPS][hs]
  float* qs = vr + WARPS * hs;      // [KT][hs + 1]: lane i reads query row i
  float* dos = qs + KT * (hs + 1);  // [KT][hs + 1]: dout rows
  float* ls = dos + KT * (hs + 1);  // [KT] lse
  float* dl = ls + KT;              // [KT] delta
  const long row0 = static_cast<long>(br.b) * T;
  const float* base = qkv + row0 * L.stride;
  const float scale = rsqrtf(static_cast<float>(hs));
  load_rows(kr, hs, base + L.k(g), L.stride, br.r0, WARPS, T, hs);
  load_rows(vr, hs, base + L.v(g), L.stride, br.r0, WARPS, T, hs);
  float dk[DPL] = {}, dv[DPL] = {};
  for (int h = g * per_group; h < (g + 1) * per_group; ++h) {
    const long stat0 = (static_cast<long>(br.b) * NH + h) * T;
    for (int q0 = br.r0; q0 < T; q0 += KT) {  // queries before the block's first key see none of its keys
      __syncthreads();
      load_rows(qs, hs + 1, base + L.q(h), L.stride, q0, KT, T, hs);
      load_rows(dos, hs + 1, dout + row0 * C + h * hs, C, q0, KT, T, hs);
      if (threadIdx.x < KT) {
        const int tq = q0 + threadIdx.x;
        ls[threadIdx.x] = tq < T ? lse[stat0 + tq] : 0.0f;
        dl[threadIdx.x] = tq < T ? delta[stat0 + tq] : 0.0f;
      }
      __syncthreads();
      if (j >= T) continue;
      const int tq = q0 + lane;
      float p = 0, ds = 0;
      if (tq < T && tq >= j) {
        p = expf(dot(qs + lane * (hs + 1), kr + warp * hs, hs) * scale - ls[lane]);
        ds = p * (dot(dos + lane * (hs + 1), vr + warp * hs, hs) - dl[lane]) * scale;
      }
      const int first = max(0, j - q0), n = min(KT, T - q0);
      for (int i = first; i < n; ++i) {
        axpy_row(dv, __shfl_sync(kFull, p, i), dos + i * (hs + 1), hs);
        axpy_row(dk, __shfl_sync(kFull, ds, i), qs + i * (hs + 1), hs);
      }
    }
  }
  if (j >= T) return;
  add_row(dqkv + (row0 + j) * L.stride + L.k(g), dk, hs);
  add_row(dqkv + (row0 + j) * L.stride + L.v(g), dv, hs);
}

dim3 grid_for(int B, int T, int heads) { return dim3(B * ((T + WARPS - 1) / WARPS), heads); }

}  // namespace

bool flash_attention_supports(int C, int NH) { return NH > 0 && C % NH == 0 && C / NH <= kFlashMaxHeadSize; }

void flash_attention_forward(float* out, float* lse, const float* qkv, int B, int T, int C, int NH, int NKV) {
  RV_CHECK(flash_attention_supports(C, NH), "flash_attention_forward", "head size above 128");
  const int hs = C / NH;
  const std::size_t smem = sizeof(float) * (KT * (hs + 1) + KT * hs + WARPS * hs);
  RV_LAUNCH(flash_forward_kernel, grid_for(B, T, NH), 32 * WARPS, smem)(out, lse, qkv, T, C, NH, NKV);
  RV_CUDA_LAUNCHED("flash_attention_forward");
}

void flash_attention_backward(float* dqkv, float* delta, const float* dout, const float* qkv, const float* lse, int B,
                              int T, int C, int NH, int NKV) {
  RV_CHECK(flash_attention_supports(C, NH), "flash_attention_backward", "head size above 128");
  const int hs = C / NH;
  const std::size_t smem_dq = sizeof(float) * (2 * KT * (hs + 1) + 2 * WARPS * hs);
  RV_LAUNCH(flash_dq_kernel, grid_for(B, T, NH), 32 * WARPS, smem_dq)(dqkv, delta, dout, qkv, lse, T, C, NH, NKV);
  RV_CUDA_LAUNCHED("flash_attention_backward");
  const std::size_t smem_kv = sizeof(float) * (2 * WARPS * hs + 2 * KT * (hs + 1) + 2 * KT);
  RV_LAUNCH(flash_dkdv_kernel, grid_for(B, T, NKV), 32 * WARPS, smem_kv)(dqkv, dout, qkv, lse, delta, T, C, NH, NKV);
  RV_CUDA_LAUNCHED("flash_attention_backward");
}

}  // namespace revenant::cuda
